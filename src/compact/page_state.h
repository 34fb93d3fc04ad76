/* Per-page state of the to-space during concurrent compaction: who builds a page, and when
 * its content can be seen. One 32-bit atomic word per to-space page; the array covers every
 * page the mutators may touch ([space_base, space end) or at least up to the used range)
 * and is reset to all zero before each compaction.
 *
 *                  try_claim (CAS, anyone)
 *   UNPROCESSED (0) ----------------------> CLAIMED ---------> BUILT ----------> MAPPING
 *                                           (owner)  built in  (owner)  about   (owner)
 *                                                    a buffer           to map     |
 *                                              |                                   | ioctl
 *                                              +------ owner maps right away ----->| done
 *                                                      (CLAIMED -> MAPPING)        v
 *                                                                                MAPPED
 *
 * Rules:
 *  - UNPROCESSED -> CLAIMED only through ugc_page_try_claim (a CAS). Whoever wins the CAS is
 *    the page's owner: a GC thread or a mutator in its fault handler. Exactly one thread
 *    builds a page (ugc_compact_build_page), so no two copies of an object ever exist in
 *    to-space.
 *  - Every later transition is made by the owner alone, with ugc_page_set (release store):
 *      CLAIMED -> BUILT      the page sits in the owner's buffer, not mapped yet (a GC thread
 *                            collecting contiguous pages for one batched ioctl);
 *      CLAIMED -> MAPPING,
 *      BUILT   -> MAPPING    the owner is issuing the map ioctl (UFFDIO_COPY/MOVE/CONTINUE,
 *                            or an mprotect);
 *      MAPPING -> MAPPED     the ioctl succeeded, or failed with EEXIST (somebody mapped the
 *                            page already, e.g. a zero page for an address past new_top).
 *    BUILT and MAPPING are informational (statistics, debugging, a batching GC thread); an
 *    owner may go from CLAIMED straight to MAPPED. Waiters only ever look for MAPPED.
 *  - MAPPED is final for the cycle. ugc_page_states_reset returns every page to UNPROCESSED
 *    and may only run when no thread looks at the array (between cycles).
 *  - A thread that loses the claim never changes the state: it waits for MAPPED
 *    (ugc_page_wait_mapped: spins briefly, then yields, then sleeps). Waiting is
 *    async-signal-safe (sched_yield and nanosleep are), so a mutator may wait in its SIGBUS
 *    handler.
 *  - A waiter whose owner takes too long (descheduled: milliseconds on a busy machine) may
 *    *help*: build the page itself and try to map it. Building is a pure function of the
 *    plan and from-space, so both copies are identical and whoever maps first wins; the
 *    other sees EEXIST. A helper whose map succeeded sets HELPED (ugc_page_mark_helped), so
 *    that the owner knows its EEXIST on this page is not a stray mapping. The owner still
 *    makes every state transition, MAPPED included.
 *
 * The word holds the state in its low 8 bits, the claimer (UGC_PAGE_BY_GC or
 * UGC_PAGE_BY_MUTATOR, for statistics and debugging) in bits 8..15 and the HELPED flag in
 * bit 16. ugc_page_get returns the state alone. */
#ifndef UGC_COMPACT_PAGE_STATE_H
#define UGC_COMPACT_PAGE_STATE_H

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum ugc_page_state {
  UGC_PAGE_UNPROCESSED = 0,
  UGC_PAGE_CLAIMED = 1,
  UGC_PAGE_BUILT = 2,
  UGC_PAGE_MAPPING = 3,
  UGC_PAGE_MAPPED = 4,
};

enum ugc_page_claimer {
  UGC_PAGE_BY_GC = 1,
  UGC_PAGE_BY_MUTATOR = 2,
};

#define UGC_PAGE_STATE_MASK 0xFFu
#define UGC_PAGE_CLAIMER_SHIFT 8u
#define UGC_PAGE_HELPED (1u << 16)

typedef struct ugc_page_states {
  _Atomic uint32_t *words; /* one per page; NULL when count == 0 */
  size_t count;            /* pages covered */
  size_t mapped_bytes;     /* size of the mapping behind words (reused across cycles) */
  size_t clean_count;      /* words [0, clean_count) are UNPROCESSED and unused since */
  size_t used_count;       /* words past it were not used since the mapping was made */
  /* The mapping a growth replaced, unmapped by the next reset or free, never in the pause
   * that grew it (giving back 1.8 MiB of touched words took 0.3 ms of a 4 GiB pause). */
  void *retired;
  size_t retired_bytes;
} ugc_page_states;

/* Makes `states` cover `count` pages, all UNPROCESSED. Reuses the previous mapping when it
 * is big enough, clearing only what a reset after the last use did not (the compaction
 * pause calls this: 4 bytes per page to clear, 1.6 MiB at 1.5 GiB live). A growth maps at
 * least twice the old size, so that a heap growing over a run remaps rarely, and leaves
 * the old mapping to the next reset. Returns 0, or -1 when mmap failed (states unchanged).
 * Not signal-safe. */
int ugc_page_states_alloc(ugc_page_states *states, size_t count);
/* Sets every page back to UNPROCESSED. Only while no other thread uses the array. Both
 * resets unmap a mapping a growth replaced. */
void ugc_page_states_reset(ugc_page_states *states);
/* Sets every word ever used back to UNPROCESSED, for an array nobody uses again before the
 * next ugc_page_states_alloc: that one then clears nothing (between compactions, so that
 * the pause need not clear, whatever the next count). */
void ugc_page_states_reset_for_next(ugc_page_states *states);
/* Unmaps the array; states becomes empty. */
void ugc_page_states_free(ugc_page_states *states);

/* UNPROCESSED -> CLAIMED by `claimer`. Returns 1 if this thread won (it must now build and
 * map the page), 0 if somebody else had claimed it. Acquire on success: nothing of the
 * page's build can be ordered before the claim. */
static inline int ugc_page_try_claim(ugc_page_states *states, size_t index,
                                     enum ugc_page_claimer claimer) {
  uint32_t expected = UGC_PAGE_UNPROCESSED;
  uint32_t claimed = UGC_PAGE_CLAIMED | ((uint32_t)claimer << UGC_PAGE_CLAIMER_SHIFT);
  return atomic_compare_exchange_strong_explicit(&states->words[index], &expected, claimed,
                                                 memory_order_acquire, memory_order_relaxed);
}

/* Owner-only transition to `state` (see the rules above), keeping the claimer bits. Release:
 * whoever reads the new state with ugc_page_get also sees everything done before it. */
static inline void ugc_page_set(ugc_page_states *states, size_t index, enum ugc_page_state state) {
  /* A compare-and-swap loop, not a load and a store: a helper may set HELPED meanwhile. */
  uint32_t word = atomic_load_explicit(&states->words[index], memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(&states->words[index], &word,
                                                (word & ~UGC_PAGE_STATE_MASK) | (uint32_t)state,
                                                memory_order_release, memory_order_relaxed))
    ;
}

/* A helper mapped this page (see the rules above). */
static inline void ugc_page_mark_helped(ugc_page_states *states, size_t index) {
  atomic_fetch_or_explicit(&states->words[index], UGC_PAGE_HELPED, memory_order_release);
}

/* Whether a helper mapped this page. */
static inline int ugc_page_helped(const ugc_page_states *states, size_t index) {
  return (atomic_load_explicit(&states->words[index], memory_order_acquire) & UGC_PAGE_HELPED) != 0;
}

/* Current state (acquire). */
static inline enum ugc_page_state ugc_page_get(const ugc_page_states *states, size_t index) {
  uint32_t word = atomic_load_explicit(&states->words[index], memory_order_acquire);
  return (enum ugc_page_state)(word & UGC_PAGE_STATE_MASK);
}

/* Who claimed the page (0 while UNPROCESSED). */
static inline unsigned ugc_page_claimer(const ugc_page_states *states, size_t index) {
  uint32_t word = atomic_load_explicit(&states->words[index], memory_order_relaxed);
  return (word >> UGC_PAGE_CLAIMER_SHIFT) & 0xFFu;
}

/* Waits until the page is MAPPED: a short spin (the owner usually needs about a microsecond),
 * then sched_yield, then 50 us sleeps. Async-signal-safe. */
static inline void ugc_page_wait_mapped(const ugc_page_states *states, size_t index) {
  for (unsigned round = 0; ugc_page_get(states, index) != UGC_PAGE_MAPPED; round++) {
    if (round < 64) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else if (round < 128)
      sched_yield();
    else {
      struct timespec pause = {0, 50 * 1000};
      nanosleep(&pause, NULL);
    }
  }
}

/* Spins and yields until the page is MAPPED or about `budget_ns` have passed (measured with
 * `now_ns`); returns whether it is MAPPED. Async-signal-safe. */
static inline int ugc_page_wait_mapped_for(const ugc_page_states *states, size_t index,
                                           uint64_t budget_ns, uint64_t (*now_ns)(void)) {
  uint64_t start = now_ns();
  for (unsigned round = 0; ugc_page_get(states, index) != UGC_PAGE_MAPPED; round++) {
    if ((round & 15) == 15 && now_ns() - start > budget_ns)
      return 0;
    if (round < 64) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      sched_yield();
    }
  }
  return 1;
}

#endif
