/* latency: how long small, fixed units of mutator work take while the collector runs.
 *
 * A live graph of nodes (about a third of the heap) hangs off one table; every node's left
 * edge points at a random node. One unit = chase 32 left edges from a random node, summing
 * a field, then allocate: a replacement node spliced into the graph (the old one becomes
 * garbage) and a short string. Every unit is timed with CLOCK_MONOTONIC; a unit that hits a
 * pause, a stall on an uncompacted page or the allocation slow path shows up in the tail. */
#include <time.h>

#include "shim.h"

enum { CHASE = 32, UNITS_PER_SCALE = 200000 };

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void build_graph(shim *s, barray **table, uint64_t *rng) {
  uint64_t n = (*table)->len;
  for (uint64_t i = 0; i < n; i++) {
    bnode *node = shim_node(s, NULL, NULL);
    node->i = (int64_t)i;
    shim_write(s, *table, &(*table)->items[i], node);
    shim_tick(s);
  }
  for (uint64_t i = 0; i < n; i++) {
    bnode *node = (bnode *)(*table)->items[i];
    shim_write(s, node, (void **)&node->left, (*table)->items[bench_rand(rng) % n]);
  }
}

/* One unit of work; returns the checksum so the chase is not optimised away. */
static int64_t unit(shim *s, barray **table, uint64_t *rng) {
  uint64_t n = (*table)->len;
  bnode *p = (bnode *)(*table)->items[bench_rand(rng) % n];
  int64_t sum = 0;
  for (int k = 0; k < CHASE && p; k++) {
    sum += p->i;
    p = p->left;
  }
  uint64_t victim = bench_rand(rng) % n;
  bnode *fresh = shim_node(s, NULL, NULL);
  bnode *old = (bnode *)(*table)->items[victim];
  fresh->i = old->i;
  shim_write(s, fresh, (void **)&fresh->left, old->left);
  shim_write(s, *table, &(*table)->items[victim], fresh);
  /* Edges into the old node keep it alive a while: point one of them at the new node. */
  bnode *from = (bnode *)(*table)->items[bench_rand(rng) % n];
  shim_write(s, from, (void **)&from->left, fresh);
  char *text = (char *)shim_leaf(s, 32 + bench_rand(rng) % 96);
  text[0] = (char)sum;
  return sum;
}

int latency_run(bench_ctx *ctx);

int latency_run(bench_ctx *ctx) {
  shim s;
  shim_attach(&s, ctx);
  uint64_t rng = 0xD1B54A32D192ED03ull;
  /* A node takes 40 bytes with its header, plus a table slot. */
  uint64_t nodes = ctx->heap_max / 3 / 48;
  uint64_t units = (uint64_t)UNITS_PER_SCALE * (ctx->scale ? ctx->scale : 1);
  int64_t sink = 0;
  SHIM_SCOPE_BEGIN(&s);
  barray *table = shim_array(&s, nodes);
  SHIM_ROOT(&s, table);
  build_graph(&s, &table, &rng);
  if (ctx->verify)
    shim_collect(&s);
  for (uint64_t u = 0; u < units; u++) {
    uint64_t start = now_ns();
    sink += unit(&s, &table, &rng);
    shim_safepoint(&s); /* a pause reached here belongs to this unit */
    bench_hist_add(ctx->unit_hist, now_ns() - start);
    /* Sampling memory is the bench's own cost: outside the timed unit. */
    if ((u & 4095) == 4095)
      shim_sample_tick(&s);
  }
  if (ctx->verify)
    shim_collect(&s);
  SHIM_SCOPE_END(&s);
  shim_detach(&s);
  /* Keeps the chase from being optimised away; the value itself means nothing. */
  __asm__ volatile("" : : "r"(sink));
  return 0;
}
