/* binarytrees: the Benchmarks Game program. `scale` sets the maximum depth (12 + scale).
 * A stretch tree of depth max+1, one long-lived tree of depth max, and for depths 4, 6, ...
 * 2^(max - depth + 4) trees built bottom-up and checked by counting their nodes. */
#include "trees.h"

enum { MIN_DEPTH = 4 };

int binarytrees_run(bench_ctx *ctx);

int binarytrees_run(bench_ctx *ctx) {
  shim s;
  shim_attach(&s, ctx);
  int max_depth = 14 + (int)ctx->scale;
  if (max_depth > 24)
    max_depth = 24;
  int failed = 0;

  bnode *stretch = tree_make(&s, max_depth + 1);
  failed |= tree_count(stretch) != tree_size(max_depth + 1);

  SHIM_SCOPE_BEGIN(&s);
  bnode *long_lived = tree_make(&s, max_depth);
  SHIM_ROOT(&s, long_lived);
  for (int depth = MIN_DEPTH; depth <= max_depth; depth += 2) {
    uint64_t trees = 1ull << (max_depth - depth + MIN_DEPTH), check = 0;
    for (uint64_t i = 0; i < trees; i++) {
      check += tree_count(tree_make(&s, depth));
      shim_tick(&s);
    }
    failed |= check != trees * tree_size(depth);
    if (ctx->verify)
      shim_collect(&s);
  }
  failed |= tree_count(long_lived) != tree_size(max_depth);
  SHIM_SCOPE_END(&s);

  shim_detach(&s);
  if (failed)
    bench_fail(ctx, "a tree had the wrong number of nodes");
  return 0;
}
