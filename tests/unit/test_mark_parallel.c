/* Parallel marking: a very deep list (no recursion anywhere), a wide tree that the
 * workers share, and shared subgraphs reached from several places; live byte counts must
 * be exact and the graph unchanged, with 1 and with several GC threads. */
#include <string.h>

#include "fixture.h"

typedef struct tree {
  void *left, *right;
  uint64_t value;
} tree;

static ugc_type_id tree_type;

static void *build(ugc_mutator *m, int depth, uint64_t *counter) {
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, void *, left, depth ? build(m, depth - 1, counter) : NULL);
  UGC_LOCAL(m, void *, right, depth ? build(m, depth - 1, counter) : NULL);
  tree *t = ugc_alloc(m, tree_type, sizeof(tree));
  t->left = left;
  t->right = right;
  t->value = (*counter)++;
  ugc_scope_close(m, scope);
  return t;
}

static void run(unsigned threads) {
  ugc_config config = fixture_config(256 << 20, 256 << 20);
  config.gc_threads = threads;
  ugc_heap *heap = fixture_heap(&config);
  REQUIRE(heap);
  ugc_error error;
  uint32_t refs[] = {0, 8};
  tree_type = fixture_type(heap, "tree", UGC_LAYOUT_FIXED, sizeof(tree), refs, 2);
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, void *, deep, NULL);
  UGC_LOCAL(m, void *, wide, NULL);
  const size_t deep_count = 1000000;
  for (size_t i = 0; i < deep_count; i++) {
    tree *t = ugc_alloc(m, tree_type, sizeof(tree));
    t->left = deep;
    t->value = i;
    deep = t;
    if (i % 3 == 0)
      ugc_alloc(m, tree_type, sizeof(tree)); /* garbage */
  }
  uint64_t counter = 0;
  wide = build(m, 16, &counter); /* 2^17 - 1 nodes */
  /* Shared: every 1000th list node also points into the tree. */
  size_t i = 0;
  for (tree *t = deep; t; t = t->left, i++)
    if (i % 1000 == 0)
      t->right = wide;

  uint64_t digest = ugc_graph_digest(m);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  size_t object = 8 + sizeof(tree);
  CHECK_EQ_U64(stats.live_bytes_last, (deep_count + counter) * object);
  CHECK_EQ_U64(stats.heap_used_bytes, (deep_count + counter) * object);
  CHECK(ugc_graph_digest(m) == digest);
  CHECK(ugc_verify(m, &error) == 0);
  ugc_collect(m, UGC_COLLECT_FULL);
  CHECK(ugc_graph_digest(m) == digest);
  printf("threads=%u mark=%.2fms compact=%.2fms\n", threads, stats.pause_mark.max_ns / 1e6,
         stats.pause_compact.max_ns / 1e6);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
}

int main(void) {
  run(1);
  run(2);
  run(4);
  TEST_DONE();
}
