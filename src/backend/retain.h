/* Moving-space memory kept for allocation: the from-space pages a compaction drained, moved
 * into the allocation area when allocation reaches them instead of being released and
 * faulted in (and cleared) again. Two sources, both moved 2 MiB at a time with UFFDIO_MOVE:
 * what a compaction keeps for the next cycle (ugc_retained), and what GC threads drain while
 * the compaction still runs (ugc_drained, below).
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

/* ---- drained during a compaction --------------------------------------------------------
 * While a compaction runs, its GC threads drain from-space from the low end up: below the
 * watermark no build reads it any more. Mutators meanwhile allocate above the new top, into
 * heap memory nothing has mapped yet. Each 2 MiB chunk of the heap that allocation reaches
 * takes the lowest drained chunk of from-space instead of a fresh (zeroed) one:
 *
 *   from-space  [drained: next ... end)[draining ...]        heap  [to-space ...|top -> Y ...]
 *                  |                                                               ^
 *                  +------------------- UFFDIO_MOVE, one PMD for a huge page ------+
 *
 * Offsets differ, alignment does not (both spaces are 1 GiB-aligned). At most `cap` bytes
 * wait; older drained chunks beyond it are released. A heap chunk reached while none is
 * drained is faulted in fresh as before. The pool closes when the compaction completes,
 * before from-space is released as a whole.
 *
 * Before anything drains, the pool has a tail: memory the last cycle kept and moved into
 * the heap above the top but did not hand out, which the hand-off carried into from-space
 * above the old top, where no build reads. It is taken first. */
typedef struct ugc_drained {
  pthread_mutex_t lock;
  bool open;
  uintptr_t next, end;           /* drained from-space chunks [next, end) not taken yet */
  uintptr_t tail_next, tail_end; /* from-space chunks above the old top, free from the start */
  uintptr_t drained_to; /* end of the drained range given so far (a chunk's part may wait) */
  uintptr_t heap_next;  /* heap chunks below it were passed (taken, or faulted in fresh) */
  uintptr_t heap_limit; /* no heap chunk ends above it */
  size_t cap;
} ugc_drained;

void ugc_drained_init(ugc_drained *d);
void ugc_drained_destroy(ugc_drained *d);

/* Opens the pool for a compaction whose from-space starts at `from_start` (2 MiB-aligned):
 * drained chunks go to heap chunks in [heap_start, heap_limit), at most `cap` bytes wait.
 * From-space [tail_from, tail_to) (2 MiB-aligned, maybe empty) is free already. */
void ugc_drained_open(ugc_drained *d, uintptr_t from_start, uintptr_t heap_start,
                      uintptr_t heap_limit, size_t cap, uintptr_t tail_from, uintptr_t tail_to);

/* From-space [from, from + bytes) is drained (called in increasing order from from_start,
 * by one thread at a time). The pool keeps the whole chunks; what it does not keep (the pool
 * closed, beyond the cap) goes back to the kernel. */
void ugc_drained_add(ugc_drained *d, uintptr_t from, size_t bytes);

/* Allocation hands out heap range [start, end) (as for ugc_retained_take): each heap chunk
 * in it not yet passed takes a drained chunk, moved with `uffd`, and widens [*low, *high),
 * the heap's recycled range, over it. A chunk the kernel will not move closes the pool.
 * Caller holds the heap lock. */
void ugc_drained_take(ugc_drained *d, ugc_uffd *uffd, uintptr_t start, uintptr_t end,
                      uintptr_t *low, uintptr_t *high, ugc_retain_counts *counts);

/* Closes the pool: nothing moves from from-space after this returns. What it held stays
 * mapped for the caller to release (with the rest of from-space). */
void ugc_drained_close(ugc_drained *d);

#endif
