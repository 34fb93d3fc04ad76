/* The move backend builds whole 2 MiB chunks of slid pages into drained 2 MiB regions of
 * from-space and moves each with one UFFDIO_MOVE (compact/concurrent.c, "whole huge pages";
 * backend/move.c, the pool's regions). A 64 MiB heap of leaf blobs of which three in four
 * die is compacted to 16 MiB, all slid: pages_recycled_huge must be above 0 (in whole
 * chunks), the moved chunks must still be transparent huge pages in the heap (when the
 * kernel backed the filled heap with huge pages), and the graph digest and the verifier
 * must hold. A second compaction slides half of the survivors while the mutator reads
 * every blob from the top down: it faults on pages of chunks being built (it waits, helps
 * or builds a page itself; the chunk then goes as smaller MOVEs), and every value must
 * read back. Skipped when the kernel lacks UFFDIO_MOVE or transparent huge pages are off. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

#define BLOB_BYTES 328u /* 336 with the header: objects straddle page and chunk ends */
#define BLOBS 200000u   /* 64 MiB of blobs */
#define HUGE_BYTES ((uint64_t)2 << 20)

#include "huge_blobs.h"

int main(void) {
  char setting[128];
  ugc_heap *heap =
      blob_heap_or_skip((size_t)256 << 20, (size_t)128 << 20, NULL, setting, sizeof setting);
  ugc_mutator *m = fixture_attach(heap);
  ugc_scope scope = ugc_scope_open(m);
  void **roots = NULL;
  ugc_root(m, (void **)&roots);
  fill_blobs(m, &roots);
  uint64_t filled_huge = anon_huge_bytes_at((uintptr_t)roots[BLOBS / 2]);
  uint64_t filled_bytes = (uint64_t)BLOBS * (BLOB_BYTES + 8);
  printf("THP %s; the filled heap's AnonHugePages: %" PRIu64 " of %" PRIu64 " MiB\n", setting,
         filled_huge >> 20, filled_bytes >> 20);

  for (unsigned i = 0; i < BLOBS; i++) /* three in four die: everything slides */
    if (i % 4)
      ugc_write(m, roots, &roots[i], NULL);
  ugc_compaction_stats d;
  collect_checked(heap, m, roots, false, &d);
  uint64_t huge_after = anon_huge_bytes_at((uintptr_t)roots[0]);
  printf("compaction 1, three in four dead: %" PRIu64 " pages, %" PRIu64 " in place, %" PRIu64
         " recycled, %" PRIu64 " of them in whole 2 MiB chunks, %" PRIu64
         " fresh; AnonHugePages after %" PRIu64 " MiB\n",
         d.pages_total, d.pages_in_place, d.pages_recycled, d.pages_recycled_huge, d.pages_fresh,
         huge_after >> 20);
  CHECK(d.pages_in_place * 2 < d.pages_total);
  CHECK(d.pages_recycled_huge <= d.pages_recycled);
  CHECK(d.pages_recycled_huge % (HUGE_BYTES / 4096) == 0);
  /* With one compaction thread (the default here) the first chunk's pages drain from-space
   * in order, and regions are free from the second chunk on. With more (the [4gc] variant)
   * all of them may take chunks before any region is free, and a descheduled one holds the
   * watermark back: nothing to require then. */
  if (getenv("UFFDGC_GC_THREADS")) {
    printf("note: UFFDGC_GC_THREADS set: whole chunks not required\n");
  } else {
    CHECK(d.pages_recycled_huge > 0);
    /* A chunk moved whole out of a huge page stays one: at least one when nearly all of the
     * filled heap was huge pages (the regions recycled come from it). */
    if (filled_huge * 10 >= filled_bytes * 9)
      CHECK(huge_after >= HUGE_BYTES);
    else
      printf("note: the filled heap was not mostly huge pages: AnonHugePages not checked\n");
  }
  read_blobs_down(roots);

  for (unsigned i = 0; i < BLOBS; i += 8) /* half of the rest dies; the mutator reads */
    ugc_write(m, roots, &roots[i], NULL);
  collect_checked(heap, m, roots, true, &d);
  printf("compaction 2, the mutator reading: %" PRIu64 " pages, %" PRIu64 " recycled, %" PRIu64
         " of them in whole 2 MiB chunks, %" PRIu64 " built by the mutator, %" PRIu64 " helped\n",
         d.pages_total, d.pages_recycled, d.pages_recycled_huge, d.pages_by_mutator,
         d.pages_helped);
  CHECK(d.pages_recycled_huge <= d.pages_recycled);
  read_blobs_down(roots);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
