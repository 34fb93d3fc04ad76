/* Moving-space memory kept between cycles: the from-space pages a compaction drained, moved
 * back into the allocation area when allocation reaches them instead of being released and
 * faulted in (and cleared) again.
 *
 * After a compaction, from-space still holds the old heap's pages. The next cycle allocates
 * into [new top, sizing target) of the heap; the from-space pages at the same offsets are
 * kept (the rest of from-space is released at once, in one call per side). When allocation
 * first reaches a 2 MiB chunk of that range, the chunk's from-space twin is moved into the
 * heap with UFFDIO_MOVE (the chunk registered for the move only). Same offset, and both
 * spaces 1 GiB-aligned, so a huge page moves as one PMD entry. Moved memory holds old
 * objects: allocation zeroes what it hands out of it (ugc_moving_space.recycled_low). */
#ifndef UGC_BACKEND_RETAIN_H
#define UGC_BACKEND_RETAIN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "uffd/uffd.h"

#define UGC_RETAIN_CHUNK ((uintptr_t)2 << 20) /* one huge page */

typedef struct ugc_retained {
  pthread_mutex_t lock;
  _Atomic uintptr_t next; /* heap address of the next kept chunk; 0 when nothing is kept */
  uintptr_t end;          /* end of the kept range (heap address) */
  intptr_t from_delta;    /* from-space address minus heap address */
} ugc_retained;

/* What one ugc_retained_take did, for the statistics. */
typedef struct ugc_retain_counts {
  uint64_t moved_bytes, move_calls, released_bytes, release_calls;
} ugc_retain_counts;

void ugc_retained_init(ugc_retained *r);
void ugc_retained_destroy(ugc_retained *r);

/* Keeps the from-space twins of heap range [low, high) (low 2 MiB-aligned, high a page
 * boundary) for allocation to take. */
void ugc_retained_keep(ugc_retained *r, uintptr_t low, uintptr_t high, intptr_t from_delta);

/* Forgets what is kept; with `release` its from-space pages go back to the kernel (without,
 * the caller is about to replace from-space as a whole). */
void ugc_retained_drop(ugc_retained *r, bool release);

/* Whether anything is kept (a relaxed load: the fast path of every allocation refill). */
static inline bool ugc_retained_pending(ugc_retained *r) {
  return atomic_load_explicit(&r->next, memory_order_relaxed) != 0;
}

/* Allocation hands out [start, end) (start = the old top: nothing at or above it has been
 * handed out since the compaction). Moves the kept chunks that [start, end) reaches into
 * the heap with `uffd` and widens [*low, *high), the heap's recycled range, over them.
 * Kept chunks below start (allocation passed them before they were kept) are released. A
 * chunk that cannot be moved ends the retention: the rest is released, and allocation
 * faults in fresh pages as without it. Caller holds the heap lock. */
void ugc_retained_take(ugc_retained *r, ugc_uffd *uffd, uintptr_t start, uintptr_t end,
                       uintptr_t *low, uintptr_t *high, ugc_retain_counts *counts);

#endif
