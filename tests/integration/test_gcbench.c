/* GCBench's shape on a small heap: a long-lived tree and array, then many temporary trees
 * built top-down and bottom-up, so the heap fills and collects many times on its own.
 * Tracing goes to a temporary file (config.trace_file, with UFFDGC_TRACE=1 set as well):
 * there must be exactly one "uffdgc: cycle" line per collection, with its sizing part on
 * every cycle that marked concurrently. Public API only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

typedef struct node {
  struct node *left, *right;
  int64_t i, j;
} node;

enum { STRETCH = 16, LONG_LIVED = 14, ARRAY = 100000, MIN_DEPTH = 4, MAX_DEPTH = 14 };

static ugc_mutator *m;
static ugc_type_id t_node, t_doubles;

static uint64_t tree_size(int depth) {
  return (2ull << depth) - 1;
}

static node *new_node(node *left, node *right) {
  ugc_scope scope = ugc_scope_open(m);
  ugc_root(m, &left);
  ugc_root(m, &right);
  node *n = (node *)ugc_alloc(m, t_node, sizeof(node));
  ugc_scope_close(m, scope);
  REQUIRE(n != NULL);
  ugc_write(m, n, (void **)&n->left, left);
  ugc_write(m, n, (void **)&n->right, right);
  return n;
}

static void populate(int depth, node *n) {
  if (depth <= 0)
    return;
  ugc_scope scope = ugc_scope_open(m);
  ugc_root(m, &n);
  node *child = new_node(NULL, NULL);
  ugc_write(m, n, (void **)&n->left, child);
  child = new_node(NULL, NULL);
  ugc_write(m, n, (void **)&n->right, child);
  populate(depth - 1, n->left);
  populate(depth - 1, n->right);
  ugc_scope_close(m, scope);
}

static node *make_tree(int depth) {
  if (depth <= 0)
    return new_node(NULL, NULL);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, node *, left, make_tree(depth - 1));
  node *right = make_tree(depth - 1);
  node *result = new_node(left, right);
  ugc_scope_close(m, scope);
  return result;
}

static uint64_t count(const node *n) {
  return n ? 1 + count(n->left) + count(n->right) : 0;
}

int main(void) {
  setenv("UFFDGC_TRACE", "1", 1);
  FILE *trace = tmpfile();
  REQUIRE(trace != NULL);
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = 24u << 20;
  config.heap_initial = 4u << 20;
  config.trace = true;
  config.trace_file = trace;
  ugc_heap *heap = itest_heap_create(&config);
  ugc_error error;
  memset(&error, 0, sizeof error);
  static const uint32_t refs[] = {0, 8};
  ugc_type_desc node_desc = {.name = "Node",
                             .layout = UGC_LAYOUT_FIXED,
                             .fixed_size = sizeof(node),
                             .ref_offsets = refs,
                             .ref_count = 2};
  ugc_type_desc doubles_desc = {.name = "double[]", .layout = UGC_LAYOUT_LEAF};
  REQUIRE((t_node = ugc_type_register(heap, &node_desc, &error)) != 0);
  REQUIRE((t_doubles = ugc_type_register(heap, &doubles_desc, &error)) != 0);
  m = ugc_thread_attach(heap, &error);
  REQUIRE(m != NULL);

  ugc_scope scope = ugc_scope_open(m);
  make_tree(STRETCH);
  UGC_LOCAL(m, node *, long_lived, new_node(NULL, NULL));
  populate(LONG_LIVED, long_lived);
  UGC_LOCAL(m, double *, array, (double *)ugc_alloc(m, t_doubles, ARRAY * sizeof(double)));
  REQUIRE(array != NULL);
  for (int i = 0; i < ARRAY / 2; i++)
    array[i] = 1.0 / (i + 1);
  for (int depth = MIN_DEPTH; depth <= MAX_DEPTH; depth += 2) {
    uint64_t iterations = 2 * tree_size(STRETCH) / tree_size(depth);
    for (uint64_t i = 0; i < iterations; i++) {
      node *temp = new_node(NULL, NULL);
      populate(depth, temp);
    }
    for (uint64_t i = 0; i < iterations; i++)
      make_tree(depth);
  }
  CHECK_EQ_U64(count(long_lived), tree_size(LONG_LIVED));
  CHECK(array[1000] == 1.0 / 1001);
  uint64_t before = ugc_graph_digest(m);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_collect(m, UGC_COLLECT_FINISH);
  CHECK_EQ_U64(ugc_graph_digest(m), before);
  CHECK(ugc_verify(m, &error) == 0);
  CHECK_EQ_U64(count(long_lived), tree_size(LONG_LIVED));
  ugc_scope_close(m, scope);

  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);

  fflush(trace);
  rewind(trace);
  char line[1024];
  uint64_t cycle_lines = 0, other_lines = 0, sizing_lines = 0;
  while (fgets(line, sizeof line, trace)) {
    if (strncmp(line, "uffdgc: cycle", 13) == 0) {
      sizing_lines += strstr(line, " sizing(next-trigger=") != NULL;
      if (cycle_lines++ == 0)
        printf("first trace line: %s", line);
    } else {
      other_lines++;
    }
  }
  fclose(trace);
  printf("gcbench: backend %s, %llu cycles, %llu trace lines (%llu other lines), max pause "
         "%.3f ms\n",
         itest_backend(), (unsigned long long)stats.cycles, (unsigned long long)cycle_lines,
         (unsigned long long)other_lines, stats.pause.max_ns / 1e6);
  CHECK(stats.cycles >= 4); /* the small heap must have collected on its own */
  CHECK_EQ_U64(cycle_lines, stats.cycles);
  /* Cycles that marked concurrently also give the next trigger, headroom and reach. */
  CHECK_EQ_U64(sizing_lines, stats.mark_concurrent_cycles);
  TEST_DONE();
}
