/* The move backend keeps transparent huge pages whole: a heap where every object is live is
 * one dense prefix, so each 2 MiB-aligned chunk of it is updated in place and moved with one
 * UFFDIO_MOVE of 2 MiB (compact/concurrent.c, "whole huge pages"), and the kernel moves its
 * PMD instead of splitting the huge page. Checked through the heap mapping's AnonHugePages
 * (/proc/self/smaps) before and after each of two compactions, with pages_moved_huge > 0 and
 * the graph digest and the verifier around each collection. A third compaction runs while
 * the mutator reads every blob from the top down: it faults on pages of chunks that a GC
 * thread is building or holds pending, and the chunks it breaks into go as smaller runs.
 * Objects allocated in TLABs never cross a 2 MiB boundary; objects slid by a compaction do.
 * So every other blob then dies, a compaction slides the rest, MADV_COLLAPSE makes the heap
 * huge pages again, and a last compaction (all dense) must still move whole chunks: each
 * waits for the first page of the next one, which reads the straddling blob's header.
 * Fully live LEAF chunks like these would stay untouched (compact/untouched.c) and not be
 * moved at all: where fault injection is built in, plan.no_untouched keeps the subject;
 * elsewhere an untouched chunk counts as kept whole too.
 * Skipped when the kernel lacks UFFDIO_MOVE, when transparent huge pages are "never", and
 * when the kernel backed the freshly filled heap with too few huge pages to tell. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "fixture.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1 (uapi asm-generic/mman-common.h); older libc lacks it */
#endif

/* Leaf payload: 336 bytes with the header, which does not divide a page: objects straddle
 * the chunks' boundaries, so a chunk waits for the next one's first page before it moves. */
#define BLOB_BYTES 328u
#define BLOBS 38000u /* 12 MiB of blobs: at least five whole 2 MiB chunks */
#define HUGE_BYTES ((uint64_t)2 << 20)

#include "huge_blobs.h"

int main(void) {
  char setting[128];
  ugc_heap *heap = blob_heap_or_skip((size_t)64 << 20, (size_t)32 << 20, "plan.no_untouched",
                                     setting, sizeof setting);
  ugc_mutator *m = fixture_attach(heap);
  ugc_scope scope = ugc_scope_open(m);
  void **roots = NULL;
  ugc_root(m, (void **)&roots);
  fill_blobs(m, &roots);
  uintptr_t heap_address = (uintptr_t)roots[BLOBS / 2];
  uint64_t huge_before = anon_huge_bytes_at(heap_address);
  printf("THP %s; heap mapping's AnonHugePages before: %" PRIu64 " MiB\n", setting,
         huge_before >> 20);
  if (huge_before < 3 * HUGE_BYTES)
    SKIP("the kernel backed the filled heap with %" PRIu64 " huge pages (fewer than 3: "
         "fragmented memory or THP defrag settings); nothing to tell",
         huge_before / HUGE_BYTES);

  for (int cycle = 1; cycle <= 2; cycle++) {
    ugc_compaction_stats d;
    collect_checked(heap, m, roots, false, &d);
    uint64_t huge_after = anon_huge_bytes_at((uintptr_t)roots[BLOBS / 2]);
    printf("compaction %d: %" PRIu64 " pages, %" PRIu64 " in place, %" PRIu64
           " moved as whole huge pages, %" PRIu64 " MOVE calls; AnonHugePages %" PRIu64
           " MiB (before %" PRIu64 " MiB)\n",
           cycle, d.pages_total, d.pages_in_place, d.pages_moved_huge, d.move_ioctls,
           huge_after >> 20, huge_before >> 20);
    CHECK(d.pages_in_place * 10 >= d.pages_total * 9); /* every object live: all dense */
    CHECK(d.pages_moved_huge > 0);
    CHECK(d.pages_moved_huge <= d.pages_in_place);
    CHECK(d.pages_moved_huge % (HUGE_BYTES / 4096) == 0);
    /* Every huge page of the data stayed whole; the chunk holding the top of the data is
     * not a whole dense chunk (moved as smaller runs), and the one above it may have
     * held the allocation buffer's huge page: two at most may go. */
    CHECK(huge_after + 2 * HUGE_BYTES >= huge_before);
    CHECK(huge_after >= HUGE_BYTES);
    huge_before = huge_after;
  }
  ugc_compaction_stats d;
  collect_checked(heap, m, roots, true, &d);
  printf("compaction 3, the mutator reading: %" PRIu64 " pages, %" PRIu64 " in place, %" PRIu64
         " moved as whole huge pages, %" PRIu64 " built by the mutator\n",
         d.pages_total, d.pages_in_place, d.pages_moved_huge, d.pages_by_mutator);
  CHECK(d.pages_in_place * 10 >= d.pages_total * 9);
  CHECK(d.pages_moved_huge <= d.pages_in_place);
  read_blobs_down(roots);

  for (unsigned i = 1; i < BLOBS; i += 2) /* every other blob dies: the rest slides */
    ugc_write(m, roots, &roots[i], NULL);
  collect_checked(heap, m, roots, false, &d);
  printf("compaction 4, half dead: %" PRIu64 " pages, %" PRIu64 " in place, %" PRIu64 " recycled\n",
         d.pages_total, d.pages_in_place, d.pages_recycled);
  /* The survivors slid (how many went into recycled pages depends on how soon from-space
   * drains: with four GC threads on two CPUs, most can be fresh). */
  CHECK(d.pages_in_place * 2 < d.pages_total);
  uintptr_t low = UINTPTR_MAX, high = 0;
  for (unsigned i = 0; i < BLOBS; i += 2) {
    uintptr_t at = (uintptr_t)roots[i];
    low = at < low ? at : low;
    high = at + BLOB_BYTES > high ? at + BLOB_BYTES : high;
  }
  low = (low + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1);
  high &= ~(uintptr_t)(HUGE_BYTES - 1);
  REQUIRE(high > low);
  size_t straddling = 0; /* blobs across a 2 MiB boundary inside [low, high] */
  for (unsigned i = 0; i < BLOBS; i += 2) {
    uintptr_t at = (uintptr_t)roots[i];
    straddling += at / HUGE_BYTES != (at + BLOB_BYTES - 1) / HUGE_BYTES && at >= low && at < high;
  }
  int collapsed = madvise((void *)low, high - low, MADV_COLLAPSE) == 0 ? 0 : errno;
  huge_before = anon_huge_bytes_at((uintptr_t)roots[BLOBS / 2]);
  collect_checked(heap, m, roots, false, &d);
  uint64_t huge_after = anon_huge_bytes_at((uintptr_t)roots[BLOBS / 2]);
  printf("compaction 5, all dense again, %zu blobs straddling a 2 MiB boundary, "
         "MADV_COLLAPSE %s: %" PRIu64 " pages, %" PRIu64 " in place, %" PRIu64
         " moved as whole huge pages, %" PRIu64 " untouched; AnonHugePages %" PRIu64
         " MiB (before %" PRIu64 " MiB)\n",
         straddling, collapsed ? strerror(collapsed) : "done", d.pages_total, d.pages_in_place,
         d.pages_moved_huge, d.pages_untouched, huge_after >> 20, huge_before >> 20);
  CHECK(straddling > 0);
  CHECK(d.pages_in_place * 10 >= d.pages_total * 9);
  /* Every whole chunk of [low, high) went whole (or stayed), although a blob straddles out
   * of it. */
  CHECK(d.pages_moved_huge + d.pages_untouched >= (high - low) / 4096);
  if (!collapsed)
    CHECK(huge_after + HUGE_BYTES >= huge_before && huge_after >= HUGE_BYTES);
  else
    printf("note: MADV_COLLAPSE failed (%s): huge pages not checked here\n", strerror(collapsed));
  read_blobs_down(roots);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
