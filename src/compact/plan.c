/* Compaction plan: from the live-words bitmap to forwarding tables and per-page entry points.
 *
 * Runs in the compaction pause (or just before it), while the old heap is still readable at
 * its old addresses: it reads object headers there, never from-space.
 *
 *   old:  |D D L L d L L L|L d d L . . .|L L d L . . .|     D/d dead, L live; pages drawn
 *         ^space_base     ^dense_end            ^old_top    as 8 words for brevity
 *          dense prefix:   slid region:
 *          kept in place,  live objects packed in address order, starting at dense_end
 *          dead -> fillers
 *   new:  |F F L L F L L L|L L L L L . .|0 0 0 0 0 0 0|
 *                                   ^new_top
 *
 * Three passes, each linear:
 *  1. Dense prefix: per-page live bytes (8 bitmap words per page, popcounts); extend the
 *     prefix from page 0 while a page is at least dense_threshold live. Bytes past old_top
 *     count as dead, so a partial last page qualifies only at a low threshold.
 *  2. chunk_live_before: running total of live words per 512-byte chunk (one bitmap word),
 *     from the first slid chunk on. That is all ugc_compact_forward_header needs.
 *  3. page_first_object: where building each to-space page starts reading.
 *       dense page:  the first object, live or dead, overlapping the page (dead ones become
 *                    fillers, so the builder must see them): one walk over every header of
 *                    the prefix.
 *       slid page:   the first live object whose *new* extent overlaps the page: the live
 *                    word landing at the page start is found from the prefix sums, then its
 *                    object by a short header walk (see record_slid_pages).
 *     A live object may straddle dense_end: it stays in place (its header is in the prefix),
 *     its tail counts in the first slid chunk's bits, so the slid objects start right after
 *     it, and it is the first object of the first slid page. A dead straddler is cut at
 *     dense_end (its filler ends there).
 *
 * new_top is dense_end + the live bytes from dense_end on; when the dense prefix ends past
 * old_top (partial last page kept), new_top = old_top. [space_base, new_top) is walkable
 * object by object once every page is built.
 *
 * Requirement on the heap: in the dense prefix every object, dead or alive, has a valid
 * header ([space_base, old_top) is walkable: gaps such as unused TLAB tails are fillers). In
 * the slid region only live objects' headers are read. */
#include "compact/compact.h"

#include <sys/mman.h>

#define WORDS_PER_PAGE (UGC_PAGE_SIZE / UGC_CHUNK_BYTES) /* bitmap words per page: 8 */

/* mmap'ed table of at least `bytes`; NULL on failure. */
static void *table_map(size_t bytes) {
  void *table = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return table == MAP_FAILED ? NULL : table;
}

static size_t round_to_page(size_t bytes) {
  return (bytes + UGC_PAGE_SIZE - 1) & ~(size_t)(UGC_PAGE_SIZE - 1);
}

/* Grows the tables to hold `chunks` and `pages` entries, keeping them when big enough. On
 * failure the plan keeps its old tables (still valid to free). */
static int ensure_tables(ugc_compact_plan *plan, size_t chunks, size_t pages) {
  if (chunks > plan->chunk_capacity) {
    size_t bytes = round_to_page(chunks * sizeof(uint32_t));
    uint32_t *table = table_map(bytes);
    if (!table)
      return -1;
    if (plan->chunk_capacity)
      munmap(plan->chunk_live_before, round_to_page(plan->chunk_capacity * sizeof(uint32_t)));
    plan->chunk_live_before = table;
    plan->chunk_capacity = bytes / sizeof(uint32_t);
  }
  if (pages > plan->page_capacity) {
    size_t bytes = round_to_page(pages * sizeof(uintptr_t));
    uintptr_t *table = table_map(bytes);
    if (!table)
      return -1;
    if (plan->page_capacity)
      munmap(plan->page_first_object, round_to_page(plan->page_capacity * sizeof(uintptr_t)));
    plan->page_first_object = table;
    plan->page_capacity = bytes / sizeof(uintptr_t);
  }
  return 0;
}

void ugc_compact_plan_free(ugc_compact_plan *plan) {
  if (plan->chunk_capacity)
    munmap(plan->chunk_live_before, round_to_page(plan->chunk_capacity * sizeof(uint32_t)));
  if (plan->page_capacity)
    munmap(plan->page_first_object, round_to_page(plan->page_capacity * sizeof(uintptr_t)));
  plan->chunk_live_before = NULL;
  plan->page_first_object = NULL;
  plan->chunk_capacity = 0;
  plan->page_capacity = 0;
}

/* Bitmap word `w`, with the bits at or past old_top (bit limit_bit) cleared: the caller's
 * bitmap should have none, but the plan must not depend on it. */
static inline uint64_t live_word(const ugc_compact_plan *plan, size_t w, size_t limit_bit) {
  uint64_t word = plan->live_words[w];
  if ((w + 1) * 64 > limit_bit) /* only the last word, and then limit_bit % 64 != 0 */
    word &= (UINT64_C(1) << (limit_bit & 63)) - 1;
  return word;
}

/* Pass 1: number of leading pages whose live fraction reaches the threshold; adds their live
 * words to *live_words. */
static size_t dense_prefix_pages(const ugc_compact_plan *plan, size_t pages, size_t limit_bit,
                                 size_t *live_words) {
  double threshold = plan->dense_threshold;
  if (!(threshold <= 1.0)) /* also catches NaN */
    return 0;
  /* Integer bar: a page needs at least `needed` live words of its 512. */
  double scaled = threshold * (double)(UGC_PAGE_SIZE / 8);
  size_t needed = scaled <= 0.0 ? 0 : (size_t)scaled + ((double)(size_t)scaled < scaled);
  size_t words = (limit_bit + 63) / 64;
  size_t page = 0, total = 0;
  for (; page < pages; page++) {
    size_t live = 0;
    for (size_t w = page * WORDS_PER_PAGE; w < (page + 1) * WORDS_PER_PAGE && w < words; w++)
      live += ugc_compact_popcount64(live_word(plan, w, limit_bit));
    if (live < needed)
      break;
    total += live;
  }
  *live_words += total;
  return page;
}

/* Pass 3a: records, for each dense page, the first object (live or dead) overlapping it.
 * Returns the header address of the last object walked (the one that reaches or crosses
 * dense_end), or 0 when the prefix is empty. */
static uintptr_t walk_dense_prefix(ugc_compact_plan *plan, size_t dense_pages) {
  uintptr_t base = plan->space_base;
  uintptr_t walk_end = plan->dense_end < plan->old_top ? plan->dense_end : plan->old_top;
  uintptr_t object = base, last = 0, next_page_start = base;
  size_t next_page = 0;
  while (object < walk_end) {
    uintptr_t end = object + ugc_header_total(ugc_header_load(object));
    while (next_page < dense_pages && next_page_start < end) {
      plan->page_first_object[next_page++] = object;
      next_page_start += UGC_PAGE_SIZE;
    }
    last = object;
    object = end;
  }
  while (next_page < dense_pages) /* only with a corrupt heap: keep the table defined */
    plan->page_first_object[next_page++] = 0;
  return last;
}

/* Bit position of the set bit of rank `rank` (0 = lowest) in `word`; rank < popcount(word).
 * Narrows a window by halves: 6 popcounts, no loop over bits. */
static inline unsigned select_bit(uint64_t word, unsigned rank) {
  unsigned position = 0;
  for (unsigned half = 32; half; half >>= 1) {
    unsigned low = ugc_compact_popcount64(word & ((UINT64_C(1) << half) - 1));
    if (rank >= low) {
      rank -= low;
      word >>= half;
      position += half;
    }
  }
  return position;
}

/* Lowest bit r in [floor, bit] such that bits r..bit are all set (bit is set): the start of
 * the run of live words containing `bit`, or `floor` if the run reaches below it. */
static size_t run_start_bit(const uint64_t *words, size_t bit, size_t floor) {
  size_t w = bit >> 6;
  uint64_t at_or_below = (bit & 63) == 63 ? ~UINT64_C(0) : (UINT64_C(2) << (bit & 63)) - 1;
  uint64_t dead = ~words[w] & at_or_below;
  while (dead == 0) {
    if (w == 0 || w - 1 < (floor >> 6))
      return floor;
    dead = ~words[--w];
  }
  size_t start = w * 64 + 64 - (size_t)__builtin_clzll(dead); /* just above the highest dead */
  return start > floor ? start : floor;
}

/* Pass 3b: the first object of every slid page after the first (whose first object, the
 * live straddler or the first live object after dense_end, the caller records).
 *
 * The word that lands at a page start B is the live word of rank k = (B - dense_end) / 8
 * counted from dense_end: chunk_live_before finds its chunk (a pointer moving forward over
 * the pages), select_bit its bit. The object holding that word starts at the start of its
 * run of live words, or, when the run reaches back into the previous page, at the latest
 * known object start: the previous page's first object. A short header walk from there
 * reaches it:
 *
 *   old:  ...ddd|LLLLLLLLLLLLLLLLL|ddd...      one run of live words
 *                ^run start   ^the word landing at B
 *                [obj][obj][ obj ]             walk headers to the object containing it
 *
 * Cost: O(chunks) for the pointer plus, per page, one select and a walk bounded by a run
 * and by one page worth of objects. Fragmented heaps cost little more than the bitmap scan;
 * a fully live one costs a header walk over everything, once. */
static void record_slid_pages(ugc_compact_plan *plan, size_t first_page, size_t chunks,
                              size_t limit_bit) {
  uintptr_t base = plan->space_base;
  const uint64_t *words = plan->live_words;
  const uint32_t *before = plan->chunk_live_before;
  uintptr_t *first = plan->page_first_object;
  size_t dense_words = (plan->dense_end - base) / 8;
  size_t chunk = dense_words / 64;
  for (size_t page = first_page + 1; page < plan->page_count; page++) {
    size_t rank = page * (UGC_PAGE_SIZE / 8) - dense_words;
    while (chunk + 1 < chunks && before[chunk + 1] <= rank)
      chunk++;
    uint64_t word = live_word(plan, chunk, limit_bit);
    size_t bit = chunk * 64 + select_bit(word, (unsigned)(rank - before[chunk]));
    uintptr_t target = base + 8 * bit;
    uintptr_t previous = first[page - 1];
    uintptr_t object = base + 8 * run_start_bit(words, bit, (previous - base) / 8);
    for (;;) {
      uintptr_t end = object + ugc_header_total(ugc_header_load(object));
      if (end > target)
        break;
      object = end;
    }
    first[page] = object;
  }
}

int ugc_compact_plan_compute(ugc_compact_plan *plan) {
  uintptr_t base = plan->space_base;
  size_t heap_bytes = plan->old_top - base;
  size_t limit_bit = heap_bytes / 8;
  size_t chunks = (heap_bytes + UGC_CHUNK_BYTES - 1) / UGC_CHUNK_BYTES;
  size_t old_pages = (heap_bytes + UGC_PAGE_SIZE - 1) / UGC_PAGE_SIZE;
  /* chunk_live_before counts words in 32 bits: spaces below 2^32 words (32 GiB). */
  if (limit_bit > UINT32_MAX)
    return -1;
  if (ensure_tables(plan, chunks, old_pages) != 0)
    return -1;

  /* Pass 1. */
  size_t live_words = 0;
  size_t dense_pages = dense_prefix_pages(plan, old_pages, limit_bit, &live_words);
  plan->dense_end = base + dense_pages * UGC_PAGE_SIZE;

  /* Pass 2: running totals from the first slid chunk (page aligned, so chunk aligned). The
   * entries below it are never read (forwarding returns dense addresses unchanged). */
  size_t first_chunk = dense_pages * WORDS_PER_PAGE;
  size_t slid_words = 0;
  for (size_t c = first_chunk; c < chunks; c++) {
    plan->chunk_live_before[c] = (uint32_t)slid_words;
    slid_words += ugc_compact_popcount64(live_word(plan, c, limit_bit));
  }
  live_words += slid_words;
  plan->live_bytes = live_words * 8;
  plan->new_top =
      plan->dense_end > plan->old_top ? plan->old_top : plan->dense_end + 8 * slid_words;
  plan->page_count = (plan->new_top - base + UGC_PAGE_SIZE - 1) / UGC_PAGE_SIZE;

  /* Pass 3. */
  uintptr_t last_dense = dense_pages ? walk_dense_prefix(plan, dense_pages) : 0;
  if (plan->new_top > plan->dense_end) {
    uintptr_t start;
    if (last_dense && ugc_compact_is_live(plan, last_dense) &&
        last_dense + ugc_header_total(ugc_header_load(last_dense)) > plan->dense_end)
      start = last_dense; /* live straddler: stays put, heads the first slid page */
    else /* a dead straddler's bits are clear: the scan skips it */
      start = ugc_compact_next_live(plan, plan->dense_end, plan->old_top);
    plan->page_first_object[dense_pages] = start;
    record_slid_pages(plan, dense_pages, chunks, limit_bit);
  }
  return 0;
}
