/* Marking on the heap, called directly (world stopped, as the collector does):
 * - a small graph is marked by the collecting thread alone: the helpers are not woken;
 * - a wide tree and a long reference array (cut into pieces) bring the helpers in, and the
 *   live byte and object counts stay exact with 1, 2 and 4 GC threads;
 * - outside verify mode, a value that looks like a reference but has no object header
 *   behind it is counted as bad and leaves no mark bit behind. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "mark/mark.h"
#include "runtime/heap.h"
#include "fixture.h"

typedef struct node {
  void *left, *right;
  uint64_t value;
} node;

typedef struct table {
  uint64_t length; /* then the references */
} table;

static ugc_type_id node_type, table_type;
static const size_t node_total = 8 + sizeof(node);

static void *tree(ugc_mutator *m, int depth) {
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, void *, left, depth ? tree(m, depth - 1) : NULL);
  UGC_LOCAL(m, void *, right, depth ? tree(m, depth - 1) : NULL);
  node *n = ugc_alloc(m, node_type, sizeof(node));
  n->left = left;
  n->right = right;
  ugc_scope_close(m, scope);
  return n;
}

/* Marks the heap as a collection would, then drops the marks again. Returns whether the
 * word at `probe` (if not 0) had its live bit set. */
static bool mark_now(ugc_heap *heap, ugc_mutator *m, ugc_mark_totals *totals, uintptr_t probe) {
  ugc_world_stop(heap, m, false);
  pthread_mutex_lock(&heap->lock);
  heap->backend->compact_wait(heap);
  ugc_tlabs_retire_all(heap);
  ugc_moving_space_clear_bitmap(&heap->moving);
  ugc_mark_heap(heap, totals);
  bool probed = probe && ugc_live_bit(&heap->moving, probe);
  /* Every marked moving object has all its words' bits; nothing else is marked. */
  ugc_moving_space_clear_bitmap(&heap->moving);
  ugc_large_sweep(&heap->large); /* clears the marks (nothing dead here) */
  pthread_mutex_unlock(&heap->lock);
  ugc_world_resume(heap, m, false);
  return probed;
}

static ugc_heap *make_heap(unsigned threads) {
  ugc_config config = fixture_config(256 << 20, 256 << 20);
  config.gc_threads = threads;
  config.verify = false;
  ugc_heap *heap = fixture_heap(&config);
  REQUIRE(heap);
  uint32_t refs[] = {0, 8};
  node_type = fixture_type(heap, "node", UGC_LAYOUT_FIXED, sizeof(node), refs, 2);
  table_type = fixture_type(heap, "table", UGC_LAYOUT_REF_ARRAY, 8, NULL, 0);
  REQUIRE(node_type && table_type);
  return heap;
}

static void run(unsigned threads) {
  ugc_heap *heap = make_heap(threads);
  ugc_error error;
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  ugc_scope scope = ugc_scope_open(m);
  ugc_mark_totals totals;

  /* Small: 2^7 - 1 nodes. */
  UGC_LOCAL(m, void *, small, tree(m, 6));
  mark_now(heap, m, &totals, 0);
  CHECK_EQ_U64(totals.objects, 127);
  CHECK_EQ_U64(totals.moving_bytes, 127 * node_total);
  CHECK(!totals.shared);

  /* A wide tree: 2^17 - 1 more nodes, traced depth-first, so the stack stays short. */
  UGC_LOCAL(m, void *, wide, tree(m, 16));
  mark_now(heap, m, &totals, 0);
  CHECK_EQ_U64(totals.objects, 127 + 131071);
  CHECK_EQ_U64(totals.moving_bytes, (127 + 131071) * node_total);
  CHECK(totals.shared == (threads > 1));
  CHECK_EQ_U64(totals.bad_refs, 0);

  /* A long array (large object, cut into pieces) of distinct nodes, some referenced
   * twice, plus NULLs and non-heap values. */
  const size_t length = 300000;
  size_t table_bytes = 8 + 8 * length;
  UGC_LOCAL(m, table *, big, ugc_alloc(m, table_type, table_bytes));
  big->length = length;
  size_t fresh = 0;
  for (size_t i = 0; i < length; i++) {
    void **slots = (void **)(big + 1);
    if (i % 7 == 3) {
      slots[i] = NULL;
    } else if (i % 7 == 5) {
      slots[i] = slots[i - 1]; /* shared */
    } else if (i % 7 == 6) {
      slots[i] = (void *)&error; /* outside the heap */
    } else {
      slots[i] = ugc_alloc(m, node_type, sizeof(node));
      fresh++;
    }
  }
  mark_now(heap, m, &totals, 0);
  CHECK_EQ_U64(totals.objects, 127 + 131071 + fresh + 1);
  CHECK_EQ_U64(totals.moving_bytes, (127 + 131071 + fresh) * node_total);
  CHECK_EQ_U64(totals.large_bytes, ugc_alloc_size(table_bytes));
  CHECK(totals.shared == (threads > 1));
  CHECK_EQ_U64(totals.bad_refs, 0);

  /* A bad value: the address of a garbage word whose "header" has an unknown type. */
  node *garbage = ugc_alloc(m, node_type, sizeof(node));
  garbage->value = (uint64_t)0x7777 << 32;
  ((node *)small)->left = &garbage->value + 1;                    /* header word = garbage->value */
  CHECK(!mark_now(heap, m, &totals, (uintptr_t)&garbage->value)); /* no bit left behind */
  CHECK_EQ_U64(totals.bad_refs, 1);
  CHECK_EQ_U64(totals.objects, 127 + 131071 + fresh + 1 - 63); /* left subtree lost */
  ((node *)small)->left = NULL;

  /* And it survives a real collection (nothing depends on the bad value). */
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  CHECK_EQ_U64(stats.heap_used_bytes, (64 + 131071 + fresh) * node_total);
  printf("threads=%u ok\n", threads);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
}

int main(void) {
  unsetenv("UFFDGC_GC_THREADS"); /* the thread counts below are the point of the test */
  unsetenv("UFFDGC_VERIFY");
  run(1);
  run(2);
  run(4);
  TEST_DONE();
}
