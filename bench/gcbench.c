/* gcbench: the shape of Boehm's GCBench (after John Ellis and Pete Kovac).
 *
 * A stretch tree is built and dropped; a long-lived tree (depth 16) and a 500,000-element
 * double array stay live throughout; then, for depths 4, 6, ..., 16, as many temporary trees
 * as make up twice the stretch tree are built top-down (Populate) and as many bottom-up
 * (MakeTree). `scale` repeats the temporary-tree phase. Written once for uffdgc and bdwgc. */
#include "trees.h"

enum {
  STRETCH_DEPTH = 18,
  LONG_LIVED_DEPTH = 16,
  ARRAY_SIZE = 500000,
  MIN_DEPTH = 4,
  MAX_DEPTH = 16,
};

static unsigned iterations(int depth) {
  return (unsigned)(2 * tree_size(STRETCH_DEPTH) / tree_size(depth));
}

static void time_construction(shim *s, int depth) {
  unsigned n = iterations(depth);
  for (unsigned i = 0; i < n; i++) {
    bnode *temp = shim_node(s, NULL, NULL);
    tree_populate(s, depth, temp);
    shim_tick(s);
  }
  for (unsigned i = 0; i < n; i++) {
    tree_make(s, depth);
    shim_tick(s);
  }
}

#define gcbench_body BENCH_SYM(gcbench_body)
int gcbench_body(shim *s, unsigned scale);

/* The whole benchmark on one attached thread; mt runs it on several. 0 = results check. */
int gcbench_body(shim *s, unsigned scale) {
  int status = 0;
  SHIM_SCOPE_BEGIN(s);
  bnode *long_lived = NULL;
  double *array = NULL;
  SHIM_ROOT(s, long_lived);
  SHIM_ROOT(s, array);

  tree_make(s, STRETCH_DEPTH); /* stretch the heap, then drop it */

  long_lived = shim_node(s, NULL, NULL);
  tree_populate(s, LONG_LIVED_DEPTH, long_lived);
  array = (double *)shim_leaf(s, ARRAY_SIZE * sizeof(double));
  for (int i = 0; i < ARRAY_SIZE / 2; i++)
    array[i] = 1.0 / (i + 1);

  for (unsigned round = 0; round < (scale ? scale : 1); round++) {
    for (int depth = MIN_DEPTH; depth <= MAX_DEPTH; depth += 2) {
      time_construction(s, depth);
      if (s->ctx->verify)
        shim_collect(s); /* digest + verifier around an explicit collection */
    }
  }

  /* Keeps the long-lived data alive to the end, and checks it survived intact. */
  if (tree_count(long_lived) != tree_size(LONG_LIVED_DEPTH) || array[1000] != 1.0 / 1001)
    status = -1;
  SHIM_SCOPE_END(s);
  return status;
}

#define gcbench_run BENCH_SYM(gcbench_run)
int gcbench_run(bench_ctx *ctx);

int gcbench_run(bench_ctx *ctx) {
  shim s;
  shim_attach(&s, ctx);
  int status = gcbench_body(&s, ctx->scale);
  shim_detach(&s);
  if (status)
    bench_fail(ctx, "long-lived tree or array corrupted");
  return 0;
}
