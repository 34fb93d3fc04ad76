/* cold: a large live set that is rarely touched, next to a churning part.
 *
 * About 40% of the heap is cold data: 2-8 KiB strings filled with a pattern, allocated
 * interleaved with garbage so they do not sit in one dense block and must be slid. The
 * churning part builds temporary trees and replaces entries of a medium-lived ring. The cold
 * data is read only rarely (one block every 64 rounds) and checked at the end. A concurrent
 * compactor should move the cold pages cheaply (whole-page slides, recycled pages); a
 * mutator should almost never stall on them. */
#include <string.h>

#include "trees.h"

enum { RING = 1024, ROUNDS_PER_SCALE = 3000, TREE_DEPTH = 10 };

static size_t cold_bytes(uint64_t i) {
  return 2048 + (size_t)(i * 2654435761u % 6144);
}

static bool cold_ok(const char *block, uint64_t i) {
  size_t n = cold_bytes(i);
  return block[0] == (char)i && block[n / 2] == (char)(i >> 3) && block[n - 1] == (char)~i;
}

int cold_run(bench_ctx *ctx);

int cold_run(bench_ctx *ctx) {
  shim s;
  shim_attach(&s, ctx);
  uint64_t rng = 0xA0761D6478BD642Full;
  uint64_t blocks = ctx->heap_max * 2 / 5 / 5200;
  unsigned rounds = ROUNDS_PER_SCALE * (ctx->scale ? ctx->scale : 1);
  uint64_t bad = 0;
  SHIM_SCOPE_BEGIN(&s);
  barray *cold = shim_array(&s, blocks), *ring = NULL;
  SHIM_ROOT(&s, cold);
  SHIM_ROOT(&s, ring);
  for (uint64_t i = 0; i < blocks; i++) {
    char *block = (char *)shim_leaf(&s, cold_bytes(i));
    size_t n = cold_bytes(i);
    memset(block, (char)i, n / 2);
    memset(block + n / 2, (char)(i >> 3), n - n / 2);
    block[n - 1] = (char)~i;
    shim_write(&s, cold, &cold->items[i], block);
    shim_leaf(&s, 64 + bench_rand(&rng) % 1024); /* garbage between cold blocks */
    shim_tick(&s);
  }
  ring = shim_array(&s, RING);
  for (unsigned round = 0; round < rounds; round++) {
    tree_make(&s, TREE_DEPTH);
    for (int k = 0; k < 64; k++) {
      void *entry = shim_leaf(&s, 256 + bench_rand(&rng) % 768);
      shim_write(&s, ring, &ring->items[bench_rand(&rng) % RING], entry);
    }
    if (round % 64 == 0) {
      uint64_t i = bench_rand(&rng) % blocks;
      bad += !cold_ok((const char *)cold->items[i], i);
    }
    shim_tick(&s);
    if (ctx->verify && round % 256 == 255)
      shim_collect(&s);
  }
  for (uint64_t i = 0; i < blocks; i++)
    bad += !cold_ok((const char *)cold->items[i], i);
  SHIM_SCOPE_END(&s);
  shim_detach(&s);
  if (bad)
    bench_fail(ctx, "%llu cold block(s) corrupted", (unsigned long long)bad);
  return 0;
}
