/* Compaction plan: where every live object of the moving space goes, and how to build any
 * to-space page from a from-space copy of the old heap. Shared unchanged by every backend;
 * backends only decide when, where and by whom a page is built and how it gets mapped.
 *
 * Addresses: "old" addresses are where objects were before compaction, "new" where they are
 * after. Both lie in the moving space [space_base, space_base + space_bytes). During
 * compaction the old contents are readable at old + from_delta (the from-space view).
 *
 * Forwarding (the idea of Android's collector):
 *
 *   live-words bitmap: 1 bit per 8-byte word, set for every word of a live object
 *   start bitmap:      1 bit per 8-byte word, set only at the header word of a live object
 *   chunk = 512 bytes = 64 words = exactly one 64-bit bitmap word
 *   chunk_live_before[c] = live words in chunks [first moved chunk, c)   (prefix sum),
 *                          plus the padding placed before c (whole-page slides, below)
 *   new(old) = dense_end + 8 * (chunk_live_before[c] + popcount(bits of c below old))
 *
 * A leading "dense prefix" [space_base, dense_end) whose live fraction is at least the
 * threshold is not moved: its objects keep their addresses, dead gaps in it become fillers.
 * Every page at or after dense_end is "slid": live objects are packed in address order,
 * except the pages of "fixed ranges" (pinned objects, see plan.c): these are kept in place
 * like dense pages, the objects before a range are packed up to where their segment starts
 * and a filler covers the rest up to the range, the objects after it are packed after it.
 * The one formula above stays exact: it reads forward_words, the live-words bitmap with
 * every word of a fixed range set, and chunk_live_before jumps at each range to the range's
 * own offset, so a word of a range forwards to itself. */
#ifndef UGC_COMPACT_H
#define UGC_COMPACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap/object.h"

#define UGC_PAGE_SIZE 4096u
#define UGC_CHUNK_BYTES 512u

/* At most this many untouched spans (each costs the hand-off one more mremap). */
#define UGC_UNTOUCHED_MAX 4

/* An untouched span [start, end) (see ugc_compact_plan). [tail, end) are its last pages when
 * an object whose header lies in them goes on past end: the build of the page at end reads
 * that header in from-space, so the hand-off gives these pages a from-space copy (tail ==
 * end: no object crosses end). */
typedef struct ugc_untouched_span {
  uintptr_t start, end, tail;
} ugc_untouched_span;

/* Pages [start, end) kept in place although they lie past dense_end (page aligned). */
typedef struct ugc_fixed_range {
  uintptr_t start, end;
  uintptr_t slid_end; /* new address where the packed objects before the range end: a filler
                         runs from there to start */
} ugc_fixed_range;

typedef struct ugc_compact_plan {
  /* Inputs, filled by the caller. */
  uintptr_t space_base;        /* moving space start, page aligned */
  uintptr_t old_top;           /* end of allocated objects before compaction (8-aligned) */
  const uint64_t *live_words;  /* bit i of word w <=> word space_base + 8*(64*w + i) is live */
  const uint64_t *start_words; /* same indexing: set <=> a live object's header is there */
  const ugc_type_table *types;
  double dense_threshold;  /* e.g. 0.95: a leading page stays in place at >= this */
  uintptr_t reserve_top;   /* 0, or how far ugc_compact_plan_extend may extend old_top without
                              growing the tables (they are sized for it up front) */
  const uintptr_t *pinned; /* header addresses of pinned objects, ascending (may be NULL): each
                              live one in [dense_end, old_top) keeps its address */
  size_t pinned_count;
  bool whole_slides;    /* place runs of fully live, leaf-only slid pages page-aligned, so that
                           a backend can move them whole (see "Whole-page slides" below) */
  bool leave_untouched; /* find untouched spans of the dense prefix (see below) */

  /* Outputs of ugc_compact_plan_compute. */
  uintptr_t dense_end;                  /* page aligned; [space_base, dense_end) stays in place */
  uintptr_t new_top;                    /* end of the compacted data: dense_end + live bytes from
                                           dense_end on (the dense prefix may end in fillers), or
                                           old_top when the dense prefix reaches past old_top */
  size_t live_bytes;                    /* bytes of live objects (headers included) */
  size_t page_count;                    /* to-space pages holding data: [space_base, new_top) */
  uint32_t *chunk_live_before;          /* one entry per chunk of [space_base, old_top); entries
                                           below dense_end's chunk are unused. Counts words in 32
                                           bits: compute refuses spaces of 32 GiB or more */
  uintptr_t *page_first_object;         /* per to-space page [0, page_count): old header address of
                                           the first live object overlapping the page. Slid pages:
                                           the first live object whose new extent overlaps it.
                                           Dense pages: the first live object overlapping the page
                                           (starting before or in it), or 0 when the page holds no
                                           live word (never with a threshold above 0: such a page
                                           is not dense). Nonzero entries never decrease */
  uint32_t *page_whole_from;            /* per to-space page [0, page_count), read only when
                                           whole_pages != 0: 0, or 1 + the index of the old page
                                           whose bytes the page takes unchanged (a whole slide) */
  size_t whole_pages;                   /* to-space pages slid whole */
  size_t pad_bytes;                     /* padding placed before runs slid whole */
  uint16_t *page_pad_words;             /* per to-space page [0, page_count): words of padding it
                                           holds after this compaction (placed now, or kept in
                                           place in a dense page), see "Padding" below */
  size_t chunk_capacity, page_capacity; /* allocated entries (reused across cycles) */
  const uint64_t *forward_words;        /* what forwarding reads: live_words itself, or with
                                           fixed ranges a copy with their words all set */
  ugc_fixed_range *fixed;               /* ascending, disjoint, none below dense_end */
  size_t fixed_count;
  /* Pages of pinned objects that stay where they are with their data: the fixed ranges and,
   * in the dense prefix, the pages of each pinned object (from its header's page, cut at
   * dense_end). Ascending, disjoint, page aligned; a backend
   * makes them available first (a system call in a thread the pause does not stop may be
   * writing into them). ugc_fixed_range entries, slid_end unused. */
  ugc_fixed_range *held;
  size_t held_count, held_capacity;
  /* Untouched spans (with leave_untouched; compact/untouched.c): parts of the
   * dense prefix whose every word is live (or padding) and whose objects are all LEAF. Their
   * pages come out of a build exactly as they are and no other page's build reads them: a
   * backend may leave them where they are, unread and unwritten, and count them built.
   * Ascending, disjoint from the held spans. */
  ugc_untouched_span untouched[UGC_UNTOUCHED_MAX];
  size_t untouched_count, untouched_pages;
  /* Carried across cycles: per 2 MiB chunk of the space (from space_base rounded down), set
   * when every object in it was found LEAF and the chunk has not moved since (it stayed below
   * dense_end): its headers need no second reading (compact/untouched.c). */
  uint64_t *leaf_chunks;
  size_t leaf_chunk_capacity; /* chunks the bitmap covers */
  uint64_t *forward_copy;     /* tables behind forward_words and fixed (reused across cycles) */
  size_t forward_capacity, fixed_capacity;

  /* Carried across cycles: the padding the space holds now, per page [0, kept_pad_pages);
   * set by ugc_compact_plan_keep_padding, read by the next compute. */
  uint16_t *kept_pad_words;
  size_t kept_pad_pages;
} ugc_compact_plan;

/* Whole-page slides (with whole_slides): a run of old pages [S, E) in the slid region whose
 * every word is live and whose objects are all LEAF (no reference slot: nothing in them needs
 * an update) is placed so that each of its words keeps its offset in the page: the page moves
 * as a whole, its bytes never read or written. The plan puts padding (dead words, fillers in
 * to-space) before the run: it adds the padding to chunk_live_before from a chunk boundary
 * that no live object crosses, so chunk_live_before counts "words placed before the chunk"
 * (live words and padding) and the forwarding formula above stays the only one. A run keeps
 * its padding below a quarter of its bytes, or is slid as usual. The run ends before a page
 * holding the header of an object that goes on past the run (a build of the next page reads
 * that header), so no other page's build reads a page slid whole. To decide LEAF the plan
 * reads the headers of the objects overlapping fully live slid pages, which marking read in
 * this cycle already: it touches no page that marking did not. With fixed ranges, runs lie
 * in the segments between them, never on a range's page; a segment's padding counts up to
 * the next range's start only (the count jumps to the range's own offset there) and moves
 * its slid_end. */

/* Padding: the fillers a whole slide put before its run are dead words in the next cycle,
 * but sliding that run whole again would put the same padding back. So the dense-prefix
 * rule measures live words plus the padding the plan itself placed (kept_pad_words): a page
 * stays in place when they reach dense_threshold together. Without that, a padded cold
 * region falls below the threshold and is rebuilt every cycle instead of staying put. */

/* Computes forwarding and per-page data from the two bitmaps alone: it reads no object
 * header, so it may run whenever the bitmaps are final. The live-words bitmap must mark
 * every word of every live object and nothing else, the start bitmap the header word of
 * every live object and nothing else (bits past old_top are ignored in both). Returns 0, or
 * -1 when memory for the tables could not be had or the space is 32 GiB or more (the heap
 * is untouched then; the plan stays valid to free or recompute). */
int ugc_compact_plan_compute(ugc_compact_plan *plan);

/* Extends a computed plan over objects allocated after it, [old_top, new_old_top): all of
 * them slide, in address order, after the plan's last live object. Time proportional to the
 * region, not to the heap: for a plan computed while mutators run, extended in the pause over
 * what they allocated meanwhile. The bitmaps of the region must be final (as for compute),
 * and no live object may cross old_top. Needs old_top page aligned, no dense prefix past
 * old_top and tables sized by reserve_top; returns 0, or -1 (plan unchanged) when one of
 * these does not hold. May be called again and again, each time from where the last one
 * ended, so a region may be added in rounds: all but the last end at a page boundary that
 * no live object crosses (ugc_compact_plan_extend_boundary). */
int ugc_compact_plan_extend(ugc_compact_plan *plan, uintptr_t new_old_top);

/* Where a plan can be extended to next (ugc_compact_plan_extend): the highest page boundary
 * in [old_top, limit] that no live object crosses, or old_top when there is none above it.
 * The bitmaps must be final below `limit` (bits at or past it may be changing); with the
 * boundary found, extending to it reads none of them. For extending in rounds while
 * mutators allocate: `limit` is where the objects not yet marked begin. */
uintptr_t ugc_compact_plan_extend_boundary(const ugc_compact_plan *plan, uintptr_t limit);

/* The range of the sorted, disjoint `ranges` holding `address`, or NULL (binary search). */
static inline const ugc_fixed_range *ugc_compact_range_at(const ugc_fixed_range *ranges,
                                                          size_t count, uintptr_t address) {
  size_t low = 0, high = count;
  while (low < high) {
    size_t mid = (low + high) / 2;
    if (address < ranges[mid].start)
      high = mid;
    else if (address >= ranges[mid].end)
      low = mid + 1;
    else
      return &ranges[mid];
  }
  return NULL;
}

/* Start of the first of the sorted `ranges` at or after `address`, or `none`. */
static inline uintptr_t ugc_compact_next_range(const ugc_fixed_range *ranges, size_t count,
                                               uintptr_t address, uintptr_t none) {
  size_t low = 0, high = count;
  while (low < high) {
    size_t mid = (low + high) / 2;
    if (ranges[mid].start < address)
      low = mid + 1;
    else
      high = mid;
  }
  return low < count ? ranges[low].start : none;
}

/* The fixed range holding to-space address `address`, or NULL (NULL at once without fixed
 * ranges). */
static inline const ugc_fixed_range *ugc_compact_fixed_at(const ugc_compact_plan *plan,
                                                          uintptr_t address) {
  return ugc_compact_range_at(plan->fixed, plan->fixed_count, address);
}

/* Start of the first fixed range at or after `address`, or old_top when there is none. */
static inline uintptr_t ugc_compact_next_fixed(const ugc_compact_plan *plan, uintptr_t address) {
  return ugc_compact_next_range(plan->fixed, plan->fixed_count, address, plan->old_top);
}

/* The held span holding `address`, or NULL. */
static inline const ugc_fixed_range *ugc_compact_held_at(const ugc_compact_plan *plan,
                                                         uintptr_t address) {
  return ugc_compact_range_at(plan->held, plan->held_count, address);
}

/* Start of the first held span at or after `address`, or UINTPTR_MAX. */
static inline uintptr_t ugc_compact_next_held(const ugc_compact_plan *plan, uintptr_t address) {
  return ugc_compact_next_range(plan->held, plan->held_count, address, UINTPTR_MAX);
}

/* The untouched span holding `address`, or NULL (a few spans: a linear scan). */
static inline const ugc_untouched_span *ugc_compact_untouched_at(const ugc_compact_plan *plan,
                                                                 uintptr_t address) {
  for (size_t r = 0; r < plan->untouched_count; r++)
    if (address - plan->untouched[r].start < plan->untouched[r].end - plan->untouched[r].start)
      return &plan->untouched[r];
  return NULL;
}

/* Start of the first untouched span at or after `address`, or UINTPTR_MAX. */
static inline uintptr_t ugc_compact_next_untouched(const ugc_compact_plan *plan,
                                                   uintptr_t address) {
  for (size_t r = 0; r < plan->untouched_count; r++)
    if (plan->untouched[r].start >= address)
      return plan->untouched[r].start;
  return UINTPTR_MAX;
}

/* Finds the untouched spans (compact/untouched.c); called by ugc_compact_plan_compute. */
void ugc_compact_plan_untouched(ugc_compact_plan *plan);

/* Forgets the LEAF finding of every chunk that reaches `from` or past it. */
void ugc_compact_plan_forget_leaf_chunks(ugc_compact_plan *plan, uintptr_t from);

/* Pages of the held spans at or after `address` (page aligned). */
static inline size_t ugc_compact_held_pages_from(const ugc_compact_plan *plan, uintptr_t address) {
  size_t pages = 0;
  for (size_t r = 0; r < plan->held_count; r++)
    if (plan->held[r].end > address)
      pages +=
          (plan->held[r].end - (plan->held[r].start > address ? plan->held[r].start : address)) /
          UGC_PAGE_SIZE;
  return pages;
}

/* Records that the space now holds what the plan computed (the compaction happened): its
 * page_pad_words become the padding the next compute counts with the live words, and chunks
 * at or past dense_end forget that they were found LEAF (their objects moved). */
void ugc_compact_plan_keep_padding(ugc_compact_plan *plan);

/* Frees the plan's tables. */
void ugc_compact_plan_free(ugc_compact_plan *plan);

/* Population count of a bitmap word. Without -mpopcnt (the x86-64 baseline build),
 * __builtin_popcountll is a call into libgcc; this branch-free form is inlined instead and
 * costs a few cycles. With -mpopcnt (or -march=x86-64-v2) it is the single instruction. */
static inline unsigned ugc_compact_popcount64(uint64_t x) {
#if defined(__POPCNT__)
  return (unsigned)__builtin_popcountll(x);
#else
  x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
  x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
  x = (x + (x >> 4)) & UINT64_C(0x0F0F0F0F0F0F0F0F);
  return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
#endif
}

/* Whether the object whose header is at old address `hdr` is live (bitmap lookup). */
static inline int ugc_compact_is_live(const ugc_compact_plan *plan, uintptr_t hdr) {
  size_t word_index = (hdr - plan->space_base) >> 3;
  return (int)((plan->live_words[word_index >> 6] >> (word_index & 63)) & 1u);
}

/* New address of the live object whose header is at old address `hdr` (in the moving space,
 * below old_top). Reads only the plan, never the object. */
static inline uintptr_t ugc_compact_forward_header(const ugc_compact_plan *plan, uintptr_t hdr) {
  if (hdr < plan->dense_end)
    return hdr;
  size_t word_index = (hdr - plan->space_base) >> 3;
  size_t chunk = word_index >> 6;
  uint64_t below = plan->forward_words[chunk] & ((UINT64_C(1) << (word_index & 63)) - 1);
  return plan->dense_end +
         8u * ((size_t)plan->chunk_live_before[chunk] + (size_t)ugc_compact_popcount64(below));
}

/* New value of a reference (payload pointer). References outside [space_base, old_top) are
 * returned unchanged. */
static inline uintptr_t ugc_compact_forward_ref(const ugc_compact_plan *plan, uintptr_t ref) {
  if (ref - plan->space_base - UGC_HEADER_BYTES >= plan->old_top - plan->space_base)
    return ref;
  return ugc_compact_forward_header(plan, ref - UGC_HEADER_BYTES) + UGC_HEADER_BYTES;
}

/* Bitmap scans (word at a time). Bits are numbered from space_base: bit b <=> the word at
 * space_base + 8 * b. Both return `limit` when no such bit lies in [bit, limit). */
static inline size_t ugc_compact_bitmap_next(const uint64_t *words, size_t bit, size_t limit,
                                             uint64_t flip) {
  if (bit >= limit)
    return limit;
  size_t w = bit >> 6, last_w = (limit - 1) >> 6;
  uint64_t word = (words[w] ^ flip) & (~UINT64_C(0) << (bit & 63));
  while (word == 0) {
    if (++w > last_w)
      return limit;
    word = words[w] ^ flip;
  }
  size_t found = (w << 6) + (size_t)__builtin_ctzll(word);
  return found < limit ? found : limit;
}

/* Whether bit `bit` of `words` is set. */
static inline int ugc_compact_bit_set(const uint64_t *words, size_t bit) {
  return (int)((words[bit >> 6] >> (bit & 63)) & 1u);
}

/* Highest set bit in [low, high) of `words`, or SIZE_MAX if there is none. */
static inline size_t ugc_compact_bitmap_prev(const uint64_t *words, size_t low, size_t high) {
  if (low >= high)
    return SIZE_MAX;
  size_t top = high - 1, w = top >> 6;
  uint64_t word = words[w] & ((top & 63) == 63 ? ~UINT64_C(0) : (UINT64_C(2) << (top & 63)) - 1);
  while (word == 0) {
    if (w == low >> 6)
      return SIZE_MAX;
    word = words[--w];
  }
  size_t found = w * 64 + 63 - (size_t)__builtin_clzll(word);
  return found >= low ? found : SIZE_MAX;
}

/* First live word at or after old address `from` (8-aligned), or `limit` if none below it. */
static inline uintptr_t ugc_compact_next_live(const ugc_compact_plan *plan, uintptr_t from,
                                              uintptr_t limit) {
  size_t bit = ugc_compact_bitmap_next(plan->live_words, (from - plan->space_base) >> 3,
                                       (limit - plan->space_base) >> 3, 0);
  return plan->space_base + 8u * bit;
}

/* First dead word at or after old address `from`, or `limit` if all of [from, limit) is live:
 * with ugc_compact_next_live, this finds runs of contiguous live objects. */
static inline uintptr_t ugc_compact_next_dead(const ugc_compact_plan *plan, uintptr_t from,
                                              uintptr_t limit) {
  size_t bit = ugc_compact_bitmap_next(plan->live_words, (from - plan->space_base) >> 3,
                                       (limit - plan->space_base) >> 3, ~UINT64_C(0));
  return plan->space_base + 8u * bit;
}

/* Builds to-space page `page_index` (address space_base + page_index * 4096) into `out`
 * (4096 bytes, may be the destination itself when it does not alias from-space, and for a
 * dense-prefix page may be the page's own from-space copy: built in place): copies
 * the bytes of every live object that overlaps the page from the from-space view
 * (old + from_delta), turns each run of dead words of a dense page into one zero-filled
 * filler (cut at the page end: fillers never cross pages), zero-fills the part
 * past new_top, and updates every reference slot that lies inside this page -- only those,
 * so building one page never needs another page. Async-signal-safe: no locks, no
 * allocation; safe to run on many threads for different pages at once.
 * Pages at or past page_count come out all zero. Reads only from-space, the bitmaps, the plan
 * and the type table, never to-space, so pages can be built in any order by any thread. The
 * result depends only on from-space: building a page twice gives the same bytes (not after
 * an in-place build, which rewrote its from-space page).
 * Returns the number of bytes of live objects copied into the page. */
size_t ugc_compact_build_page(const ugc_compact_plan *plan, size_t page_index, intptr_t from_delta,
                              void *out);

/* ugc_compact_build_page for a page of the dense prefix (below dense_end) or of a fixed
 * range whose `out` holds the page's old bytes already: another view of the very memory of
 * its from-space page (the minor backend's kept pages: one file page behind both the alias
 * and from-space), or the heap page of a held span with a copy in from-space (headers and
 * slots are read at old + from_delta): no byte is copied, the dead runs
 * become fillers and the reference slots are rewritten in place. Headers never change, so
 * a later page's build reads the same header of an object starting here before and after;
 * it reads the slots of its own part of the object only, which this leaves alone. */
size_t ugc_compact_update_page_in_place(const ugc_compact_plan *plan, size_t page_index,
                                        intptr_t from_delta, void *out);

/* The page builder has a second copy compiled for the POPCNT instruction, chosen at load
 * time when the CPU has it. Test hook: 0 selects the portable copy, 1 the POPCNT copy (if the
 * CPU has it). Returns the previous selection. Never call it while pages are being built. */
int ugc_compact_select_popcnt(int enable);

/* Updates one reference slot in place (roots, non-moving objects): *slot = forward(*slot),
 * re-encoded by the rule (tag bits, reference offset); immediates are left alone. */
static inline void ugc_compact_update_slot(const ugc_compact_plan *plan, void *slot,
                                           const ugc_tag_rule *rule) {
  uintptr_t value = *(uintptr_t *)slot;
  uintptr_t ref = ugc_tag_reference(value, rule);
  if (!ref)
    return;
  uintptr_t moved = ugc_compact_forward_ref(plan, ref);
  if (moved != ref)
    *(uintptr_t *)slot = ugc_tag_rewrite(value, moved, rule);
}

#endif
