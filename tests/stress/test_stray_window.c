/* The stray-page window of the copy backend's hand-off: UFFDGC_INJECT=copy.stray_read reads
 * the first heap page between the mremap and the userfaultfd registration, which maps the
 * zero page there. If that page stayed visible after the pause, the mutator's first write
 * to the object living there would land in it, and the page's owner would later replace it
 * with the built page: the write lost. Each of 200 cycles writes that object right after
 * the collection returns and checks the value once the compaction is over; the digest and
 * the verifier run at the end. Backend from UFFDGC_BACKEND (default copy). */
#include <stdint.h>

#include "integration/itest.h"

typedef struct cell {
  struct cell *next;
  uint64_t value;
  uint64_t check; /* value ^ CHECK_KEY, written with it */
} cell;

#define CHECK_KEY 0x5a5a5a5a5a5a5a5aull
enum { CYCLES = 200, CELLS = 20000 };

int main(void) {
  setenv("UFFDGC_BACKEND", "copy", 0);
  setenv("UFFDGC_INJECT", "copy.stray_read", 1);
  ugc_config config = fixture_config((size_t)64 << 20, 0);
  ugc_heap *heap = itest_heap_create(&config);
  static const uint32_t refs[] = {offsetof(cell, next)};
  ugc_type_id type = fixture_type(heap, "cell", UGC_LAYOUT_FIXED, sizeof(cell), refs, 1);
  REQUIRE(type);
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  static cell *first; /* the first object of the heap: it lives in the first page */
  ugc_global_root_add(heap, (void **)&first);
  first = ugc_alloc(m, type, sizeof(cell));
  cell *tail = first;
  for (int i = 0; i < CELLS; i++) {
    ugc_alloc(m, type, sizeof(cell)); /* garbage */
    cell *c = ugc_alloc(m, type, sizeof(cell));
    c->value = (uint64_t)i;
    c->check = c->value ^ CHECK_KEY;
    ugc_write(m, tail, (void **)&tail->next, c);
    tail = c;
  }
  unsigned lost = 0;
  for (uint64_t cycle = 1; cycle <= CYCLES; cycle++) {
    ugc_collect(m, UGC_COLLECT_FULL);
    first->value = cycle; /* the first access after the pause */
    first->check = cycle ^ CHECK_KEY;
    ugc_collect(m, UGC_COLLECT_FINISH);
    if (first->value != cycle || first->check != (cycle ^ CHECK_KEY))
      lost++;
    for (int i = 0; i < 2000; i++) /* garbage: the next cycle moves objects again */
      ugc_alloc(m, type, sizeof(cell));
  }
  uint64_t chain = 0;
  for (cell *c = first->next; c; c = c->next)
    chain += c->check == (c->value ^ CHECK_KEY);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("backend=%s cycles=%d lost_writes=%u pages_by_mutator=%llu\n", ugc_heap_backend(heap),
         CYCLES, lost, (unsigned long long)stats.compaction.pages_by_mutator);
  CHECK_EQ_U64(lost, 0);
  CHECK_EQ_U64(chain, CELLS);
  CHECK_EQ_U64(ugc_verify(m, NULL), 0);
  uint64_t digest = ugc_graph_digest(m);
  ugc_collect(m, UGC_COLLECT_FULL);
  CHECK_EQ_U64(ugc_graph_digest(m), digest);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
