/* frag: fragmentation, the case where compaction gives memory back.
 *
 * Fills about 40% of the heap with objects of mixed sizes (strings, nodes, small arrays)
 * held by one table, then for 2 + scale rounds: drops a random 75% of them, collects,
 * allocates short-lived garbage and refills the table. It ends by dropping 90% for good.
 * RSS is sampled after every collection. A non-moving collector keeps most pages alive
 * (one survivor pins a page), a compacting one packs the survivors and returns the rest.
 * Written once for uffdgc and bdwgc. */
#include "shim.h"

/* Mean heap bytes per object of make_object (header included), to size the table. */
enum { AVERAGE_OBJECT = 280 };

/* One object of a random kind and size: mostly strings of 16-1024 bytes. */
static void *make_object(shim *s, uint64_t *rng) {
  uint64_t r = bench_rand(rng);
  switch (r % 8) {
  case 0:
    return shim_node(s, NULL, NULL);
  case 1:
    return shim_array(s, 1 + (r >> 8) % 8);
  default: {
    size_t bytes = 16 + (size_t)((r >> 8) % 256) * ((r >> 16) % 4 + 1);
    char *p = (char *)shim_leaf(s, bytes);
    p[0] = (char)r;
    return p;
  }
  }
}

static void refill(shim *s, barray **table, uint64_t *rng) {
  for (uint64_t i = 0; i < (*table)->len; i++) {
    if ((*table)->items[i])
      continue;
    void *obj = make_object(s, rng);
    shim_write(s, *table, &(*table)->items[i], obj); /* *table re-read: it may have moved */
    shim_tick(s);
  }
}

static void drop(shim *s, barray *table, uint64_t *rng, unsigned percent) {
  for (uint64_t i = 0; i < table->len; i++)
    if (bench_rand(rng) % 100 < percent)
      shim_write(s, table, &table->items[i], NULL);
}

#define frag_run BENCH_SYM(frag_run)
int frag_run(bench_ctx *ctx);

int frag_run(bench_ctx *ctx) {
  shim s;
  shim_attach(&s, ctx);
  uint64_t rng = 0x9E3779B97F4A7C15ull;
  size_t slots = ctx->heap_max * 2 / 5 / AVERAGE_OBJECT;
  SHIM_SCOPE_BEGIN(&s);
  barray *table = shim_array(&s, slots);
  SHIM_ROOT(&s, table);
  refill(&s, &table, &rng);
  shim_collect(&s);
  for (unsigned round = 0; round < 2 + ctx->scale; round++) {
    drop(&s, table, &rng, 75);
    shim_collect(&s);
    /* Garbage about the size of the live set: collections happen on their own too. */
    for (size_t i = 0; i < slots; i++) {
      make_object(&s, &rng);
      shim_tick(&s);
    }
    refill(&s, &table, &rng);
  }
  drop(&s, table, &rng, 90);
  shim_collect(&s);
  SHIM_SCOPE_END(&s);
  shim_detach(&s);
  return 0;
}
