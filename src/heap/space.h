/* The moving space: one 1 GiB-aligned reservation, bump-allocated in TLABs, compacted every
 * cycle. Beside it live the structures sized by it: the from-space reservation compaction
 * moves the old pages to, two bitmaps with 1 bit per 8-byte word -- the object-start bitmap
 * (set only at the header word of each live object; the bit doubles as the mark bit) and the
 * live-words bitmap (set for every word of a live object) -- and the card table, which covers
 * the moving space and the non-moving space placed right after it.
 *
 * Why two bitmaps: the live-words bitmap tells which words are live (forwarding is a
 * popcount), but not where one live object ends and the next begins when they are adjacent.
 * The start bitmap does, so the compaction plan and the dense-prefix page builder find live
 * objects without walking the headers of dead ones (cold memory, one dependent miss per
 * object). Android's collector keeps the same pair. Claiming an object on the start bitmap
 * keeps marking at two atomic ORs per small object (the claim, then all its live-words bits
 * including the header's), as with one bitmap; a third OR for the start bit after a claim on
 * the live-words bitmap made marking about 15% slower. */
#ifndef UGC_HEAP_SPACE_H
#define UGC_HEAP_SPACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uffdgc.h"

typedef struct ugc_moving_space {
  uintptr_t base;        /* 1 GiB-aligned */
  size_t reserved_bytes; /* heap_max rounded up to 1 GiB; [base, base+reserved) is RW */
  uintptr_t limit;       /* base + heap_max: the bump pointer never passes it */
  uintptr_t top;         /* bump pointer; guarded by the heap lock */
  uintptr_t from_base;   /* from-space reservation (reserved_bytes, 1 GiB-aligned) */
  /* [recycled_low, recycled_high) above top holds memory a backend kept from an earlier
   * cycle (not zeroed): allocation zeroes what it hands out of it. Heap lock. */
  uintptr_t recycled_low, recycled_high;
  uint64_t *live_words;  /* reserved_bytes / 64 bytes, NORESERVE */
  uint64_t *start_words; /* the same size and indexing: header words of live objects */
  /* The region right after the moving space that the non-moving space occupies. */
  uintptr_t nonmoving_base;
  size_t nonmoving_bytes;
  /* Card table over [base, nonmoving_base + nonmoving_bytes): the one mutators mark
   * (ugc_mutator_fast.cards). Two tables take turns, so that the compaction pause swaps them
   * instead of clearing O(live / 512) bytes: cards_spare is the other one, dirty over
   * [0, spare_moving_cards) and [spare_nm_first, + spare_nm_cards) until cleared. */
  uint8_t *cards;
  uint8_t *cards_spare;
  size_t spare_moving_cards, spare_nm_first, spare_nm_cards;
  uintptr_t covered_low;
  size_t covered_bytes;
  bool huge_pages; /* the space is advised MADV_HUGEPAGE (else MADV_NOHUGEPAGE) */
} ugc_moving_space;

/* Reserves everything; nonmoving_bytes is reserved (PROT_NONE) right after the moving space
 * for the non-moving space to map. 0, or -1 with *error filled. */
int ugc_moving_space_init(ugc_moving_space *space, size_t heap_max, size_t nonmoving_bytes,
                          ugc_error *error);
void ugc_moving_space_destroy(ugc_moving_space *space);

/* Advises the whole moving space MADV_HUGEPAGE (on) or MADV_NOHUGEPAGE, and remembers it
 * for the backends that re-advise parts of it. UFFDGC_DISABLE=thp makes it off. */
void ugc_moving_space_use_huge_pages(ugc_moving_space *space, bool on);

/* Bumps `bytes` (multiple of 8) from top; 0 when the space limit would be passed.
 * Caller holds the heap lock. */
static inline uintptr_t ugc_moving_space_bump(ugc_moving_space *space, size_t bytes) {
  if (bytes > space->limit - space->top)
    return 0;
  uintptr_t start = space->top;
  /* Relaxed store: the concurrent marker reads top without the heap lock (ugc_heap_lookup;
   * a stale value only hides objects allocated black since). */
  __atomic_store_n(&space->top, start + bytes, __ATOMIC_RELAXED);
  return start;
}

/* The part of [start, end) that lies in the recycled range, as [*low, *high) (empty when
 * *low >= *high): the bytes allocation must zero before handing them out. Heap lock held. */
static inline void ugc_moving_space_recycled_part(const ugc_moving_space *space, uintptr_t start,
                                                  uintptr_t end, uintptr_t *low, uintptr_t *high) {
  *low = start > space->recycled_low ? start : space->recycled_low;
  *high = end < space->recycled_high ? end : space->recycled_high;
}

static inline bool ugc_moving_space_contains(const ugc_moving_space *space, uintptr_t addr) {
  return addr - space->base < space->top - space->base;
}

/* Clears the live-words and object-start bits of [base, top). */
void ugc_moving_space_clear_bitmap(ugc_moving_space *space);
/* The same for [base, end): end may lie above top (bits a compaction left above its new top
 * would otherwise show up as objects allocated there later). */
void ugc_moving_space_clear_bitmap_to(ugc_moving_space *space, uintptr_t end);
/* In a pause: the mutators get a clean card table (the caller points every mutator's
 * fast->cards at space->cards after this), and the one they marked, dirty at most over
 * [base, moving_end) and the non-moving range [nonmoving_base, nonmoving_end), becomes the
 * spare. Clears the spare first if nobody did (ugc_moving_space_clear_spare_cards). */
void ugc_moving_space_swap_cards(ugc_moving_space *space, uintptr_t moving_end,
                                 uintptr_t nonmoving_end);
/* Clears the spare card table: mutators running is fine (they mark the other one), but not
 * concurrently with a swap (the thread that runs pauses, or one inside a pause). */
void ugc_moving_space_clear_spare_cards(ugc_moving_space *space);

/* Whether the object with header at `hdr` is marked. Reads the live-words bit: the same as
 * the start bit once marking is over, and the one the plan uses. */
static inline bool ugc_live_bit(const ugc_moving_space *space, uintptr_t hdr) {
  size_t word = (hdr - space->base) >> 3;
  return (space->live_words[word >> 6] >> (word & 63)) & 1u;
}

/* Sets the live-words bits of words [next, end) of an object this thread won. Edge bitmap
 * words are shared with neighbours, hence atomic ORs; whole words inside the object belong
 * to it alone. */
static inline void ugc_live_words_set(_Atomic uint64_t *bitmap, size_t next, size_t end) {
  while (next < end) {
    size_t index = next >> 6, bit = next & 63;
    size_t count = end - next < 64 - bit ? end - next : 64 - bit;
    uint64_t mask = count == 64 ? ~UINT64_C(0) : ((UINT64_C(1) << count) - 1) << bit;
    if (count == 64)
      atomic_store_explicit(&bitmap[index], mask, memory_order_relaxed);
    else
      atomic_fetch_or_explicit(&bitmap[index], mask, memory_order_relaxed);
    next += count;
  }
}

/* Marks the object [hdr, hdr+total) live: sets its start bit, then the live-words bits of
 * all its words. Returns true for the thread that set the start bit first (it owns tracing
 * the object); only that thread sets the live-words bits. */
static inline bool ugc_live_mark(ugc_moving_space *space, uintptr_t hdr, size_t total) {
  size_t first = (hdr - space->base) >> 3;
  _Atomic uint64_t *starts = (_Atomic uint64_t *)space->start_words;
  uint64_t head_bit = UINT64_C(1) << (first & 63);
  uint64_t old = atomic_fetch_or_explicit(&starts[first >> 6], head_bit, memory_order_relaxed);
  if (old & head_bit)
    return false;
  ugc_live_words_set((_Atomic uint64_t *)space->live_words, first, first + (total >> 3));
  return true;
}

#endif
