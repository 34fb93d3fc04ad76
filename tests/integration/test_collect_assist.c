/* A thread that waits for the compaction in flight builds pages of it instead of sleeping:
 * ugc_collect (both kinds: no new cycle starts before that compaction ends, and FINISH
 * waits for it) and an allocation that found the heap full. The compaction GC threads
 * sleep 50 ms before their first page (fault injection compact.late_start), so the pages
 * are there for the waiting thread to take, and it must take some:
 * stats.compaction.pages_by_waiting_mutators grows, as a part of pages_by_gc, never of
 * pages_by_mutator (the fault path). The list is checked, and the verifier run, after every
 * collection. The stop-the-world backend compacts in the pause: nothing to take, 0. Run per
 * backend by the matrix (UFFDGC_BACKEND). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counted_list.h"

#define NODES 60000u

static uint64_t waiting_pages(ugc_heap *heap, ugc_stats *stats) {
  ugc_stats_get(heap, stats);
  return stats->compaction.pages_by_waiting_mutators;
}

/* Whether the last cycle's compaction ran while mutators ran (else nothing was left). */
static bool ran_concurrently(ugc_heap *heap, const ugc_stats *stats) {
  return strcmp(ugc_heap_backend(heap), "stw") != 0 &&
         stats->compaction.compactions_in_pause < stats->cycles;
}

int main(void) {
#ifdef UGC_NO_FAULT_INJECTION
  SKIP("needs fault injection (compact.late_start), compiled out of this build");
#else
  setenv("UFFDGC_INJECT", "compact.late_start", 1);
  ugc_config config = fixture_config(64u << 20, 0);
  ugc_heap *heap = itest_heap_create(&config);
  ugc_mutator *m = fixture_attach(heap);
  ugc_type_id t_node = counted_list_type(heap);
  ugc_scope scope = ugc_scope_open(m);
  counted_node *head = NULL;
  ugc_root(m, (void **)&head);
  counted_list_build(m, t_node, NODES, &head);
  ugc_stats stats;

  /* FINISH right after the pause: the GC thread is still asleep. */
  uint64_t before = waiting_pages(heap, &stats);
  counted_list_collect_and_check(m, &head, NODES); /* FULL, then FINISH */
  uint64_t after_finish = waiting_pages(heap, &stats);
  bool concurrent = ran_concurrently(heap, &stats);
  printf("%s: FINISH built %" PRIu64 " pages while waiting\n", ugc_heap_backend(heap),
         after_finish - before);
  if (concurrent)
    CHECK(after_finish > before);
  else
    CHECK_EQ_U64(after_finish, before);
  CHECK(stats.compaction.pages_by_waiting_mutators <= stats.compaction.pages_by_gc);

  /* FULL while the last compaction is in flight: the new cycle waits for it. */
  ugc_collect(m, UGC_COLLECT_FULL);
  before = waiting_pages(heap, &stats);
  ugc_collect(m, UGC_COLLECT_FULL);
  uint64_t after_full = waiting_pages(heap, &stats);
  concurrent = ran_concurrently(heap, &stats);
  printf("%s: FULL built %" PRIu64 " pages while waiting\n", ugc_heap_backend(heap),
         after_full - before);
  if (concurrent)
    CHECK(after_full > before);
  else
    CHECK_EQ_U64(after_full, before);
  counted_list_collect_and_check(m, &head, NODES);

  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
#endif
}
