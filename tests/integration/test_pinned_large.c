/* Large objects with references, whose references a concurrent backend may update page by
 * page after the pause (compact/update_pages.c): which of them it may make fault. Three
 * reference arrays of 256 KiB: `plain` from ugc_alloc, `allocated_pinned` from
 * ugc_alloc_pinned, `pinned` from ugc_alloc + ugc_pin. Only `plain` may be handed off: the
 * other two are buffers for system calls and are updated in the pause with either delivery
 * (a hand-off could fail their system calls, or drop a write). Checked per
 * cycle by the count of update pages, exact; each cycle also hands each array to write(2)
 * right after the collection returns (no EFAULT for the two pinned ones, on any backend),
 * compares what the kernel read with the array, and checks digests and the verifier. Run on
 * every backend by tests/matrix.cmake. Public API only. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

#define REFS 32768 /* 256 KiB of references: above the 64 KiB of a deferred update */
#define TARGETS 4096
#define CYCLES 30

enum { PLAIN, ALLOCATED_PINNED, PINNED, ARRAYS };
static const char *const array_names[ARRAYS] = {"plain", "allocated_pinned", "pinned"};
static void **arrays[ARRAYS];
static void *targets[TARGETS];

/* Pages of the array whose header is just before `payload` (the object is its own mapping). */
static uint64_t pages_of(const void *payload) {
  (void)payload;
  return (REFS * sizeof(void *) + 16 + 4095) / 4096;
}

int main(void) {
  ugc_config config = fixture_config((size_t)64 << 20, (size_t)16 << 20);
  ugc_heap *heap = itest_heap_create(&config);
  ugc_mutator *m = fixture_attach(heap);
  ugc_type_id leaf = fixture_leaf_type(heap, "leaf");
  ugc_type_id refs = fixture_type(heap, "refs", UGC_LAYOUT_REF_ARRAY, 0, NULL, 0);
  for (int i = 0; i < TARGETS; i++) {
    ugc_global_root_add(heap, &targets[i]);
    targets[i] = ugc_alloc(m, leaf, 24);
    memset(targets[i], i & 0xFF, 24);
  }
  for (int a = 0; a < ARRAYS; a++) {
    ugc_global_root_add(heap, (void **)&arrays[a]);
    arrays[a] = a == ALLOCATED_PINNED ? ugc_alloc_pinned(m, refs, REFS * sizeof(void *))
                                      : ugc_alloc(m, refs, REFS * sizeof(void *));
    REQUIRE(arrays[a]);
    for (int r = 0; r < REFS; r++)
      arrays[a][r] = targets[(r * 7 + a) % TARGETS];
  }
  ugc_pin(m, arrays[PINNED]);
  bool may_fault = ugc_heap_syscalls_may_fault(heap, NULL, 0);
  const char *backend = ugc_heap_backend(heap);
  bool concurrent = strcmp(backend, "stw") != 0;
  uint64_t expected_per_cycle = concurrent ? pages_of(arrays[PLAIN]) : 0;
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  static char kernel_view[REFS * sizeof(void *)];
  unsigned long efaults[ARRAYS] = {0}, mismatches = 0, cycles_off = 0;
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  uint64_t updated_before = stats.compaction.update_pages_by_gc +
                            stats.compaction.update_pages_by_mutator +
                            stats.compaction.update_pages_in_pause;
  for (int cycle = 0; cycle < CYCLES; cycle++) {
    /* New targets for a third of the slots, garbage between them: the old ones move. */
    for (int i = cycle % 3; i < TARGETS; i += 3) {
      ugc_alloc(m, leaf, 40);
      targets[i] = ugc_alloc(m, leaf, 24);
      memset(targets[i], i & 0xFF, 24);
    }
    uint64_t before = ugc_graph_digest(m);
    ugc_collect(m, UGC_COLLECT_FULL);
    /* Right after the pause, before the GC threads got far: the kernel reads each array. */
    for (int a = ARRAYS - 1; a >= 0; a--) {
      ssize_t put = 0;
      size_t done = 0;
      while (done < sizeof kernel_view) {
        size_t chunk = sizeof kernel_view - done < 65536 ? sizeof kernel_view - done : 65536;
        put = write(pipe_fds[1], (char *)arrays[a] + done, chunk);
        if (put < 0)
          break;
        REQUIRE(read(pipe_fds[0], kernel_view + done, (size_t)put) == put);
        done += (size_t)put;
      }
      if (put < 0) {
        REQUIRE(errno == EFAULT);
        efaults[a]++;
        continue;
      }
      if (memcmp(kernel_view, arrays[a], sizeof kernel_view) != 0)
        mismatches++;
    }
    ugc_collect(m, UGC_COLLECT_FINISH);
    CHECK_EQ_U64(ugc_graph_digest(m), before);
    ugc_error error;
    CHECK(ugc_verify(m, &error) == 0);
    ugc_stats_get(heap, &stats);
    uint64_t updated = stats.compaction.update_pages_by_gc +
                       stats.compaction.update_pages_by_mutator +
                       stats.compaction.update_pages_in_pause;
    if (updated - updated_before != expected_per_cycle) {
      fprintf(stderr, "cycle %d: %llu update pages, expected %llu\n", cycle,
              (unsigned long long)(updated - updated_before),
              (unsigned long long)expected_per_cycle);
      cycles_off++;
    }
    updated_before = updated;
  }
  printf("pinned_large: backend %s, system calls %s fault: %llu update pages per cycle "
         "expected (%s), %lu cycles off; EFAULT plain %lu, allocated_pinned %lu, pinned %lu; "
         "%lu kernel reads differing\n",
         backend, may_fault ? "may" : "never", (unsigned long long)expected_per_cycle,
         concurrent ? array_names[PLAIN] : "none", cycles_off, efaults[PLAIN],
         efaults[ALLOCATED_PINNED], efaults[PINNED], mismatches);
  CHECK_EQ_U64(cycles_off, 0);
  CHECK_EQ_U64(efaults[ALLOCATED_PINNED], 0);
  CHECK_EQ_U64(efaults[PINNED], 0);
  if (!may_fault)
    CHECK_EQ_U64(efaults[PLAIN], 0);
  CHECK_EQ_U64(mismatches, 0);
  ugc_unpin(m, arrays[PINNED]);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
