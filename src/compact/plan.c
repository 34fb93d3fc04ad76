/* Compaction plan: from the two bitmaps to forwarding tables and per-page entry points.
 *
 * Reads only the live-words bitmap (every word of every live object) and the object-start
 * bitmap (the header word of every live object), never the heap: object headers of a large
 * dense prefix are cold memory, and walking them was a chain of dependent cache misses
 * inside the pause (20 ms per 100 MB of prefix).
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
 *       dense page:  the first live object overlapping the page, or 0 if it holds no live
 *                    word. If the page's first word is live, its object is the last live
 *                    object starting at or before it (a start bit: at the page start, or
 *                    the last one of an earlier page, carried along); otherwise the first
 *                    start bit inside the page. 8 start-bitmap words per page, in order.
 *       slid page:   the first live object whose *new* extent overlaps it: the live word
 *                    landing at the page start is found from the prefix sums, its object
 *                    from the start bitmap (see record_slid_pages).
 *     A live object may straddle dense_end: it stays in place (its header is in the prefix),
 *     its tail counts in the first slid chunk's bits, so the slid objects start right after
 *     it, and it is the first object of the first slid page. Dead words never reach past
 *     dense_end: the page builder makes one filler per run of dead words and page.
 *
 * Fixed ranges (plan.pinned, pass 1b): the pages of a pinned live object stay in place like
 * dense pages; the slid region becomes segments packed between them:
 *
 *   old:  |dense|L d L d d L d|d d P P d L|L d L ...     P pinned, its page kept
 *   new:  |dense|L L L F F F F|d->F P P F L|L L ...      F filler (one per page of the gap)
 *               ^slid_end ^range start    ^range end: packing resumes here (or after an
 *                                          object that runs out of the range)
 *
 * In pass 2 the running count jumps at a range start to the range's own offset and counts
 * every word of the range (forward_words has them all set), so forwarding maps the range
 * onto itself with the one formula of compact.h.
 *
 * new_top is dense_end + the live bytes from dense_end on; when the dense prefix ends past
 * old_top (partial last page kept), new_top = old_top. [space_base, new_top) is walkable
 * object by object once every page is built. */
#include "compact/compact.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "os/inject.h"

#define WORDS_PER_PAGE (UGC_PAGE_SIZE / UGC_CHUNK_BYTES) /* bitmap words per page: 8 */

/* mmap'ed table of at least `bytes`; NULL on failure. */
static void *table_map(size_t bytes) {
  void *table = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return table == MAP_FAILED ? NULL : table;
}

static size_t round_to_page(size_t bytes) {
  return (bytes + UGC_PAGE_SIZE - 1) & ~(size_t)(UGC_PAGE_SIZE - 1);
}

static void free_page_tables(ugc_compact_plan *plan) {
  if (!plan->page_capacity)
    return;
  munmap(plan->page_first_object, round_to_page(plan->page_capacity * sizeof(uintptr_t)));
  munmap(plan->page_whole_from, round_to_page(plan->page_capacity * sizeof(uint32_t)));
  munmap(plan->page_pad_words, round_to_page(plan->page_capacity * sizeof(uint16_t)));
  munmap(plan->kept_pad_words, round_to_page(plan->page_capacity * sizeof(uint16_t)));
}

/* Grows the tables to hold `chunks` and `pages` entries, keeping them when big enough. On
 * failure the plan keeps its old tables (still valid to free). */
static int ensure_tables(ugc_compact_plan *plan, size_t chunks, size_t pages) {
  if (ugc_inject("plan.tables"))
    return -1;
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
    size_t capacity = round_to_page(pages * sizeof(uintptr_t)) / sizeof(uintptr_t);
    uintptr_t *table = table_map(capacity * sizeof(uintptr_t));
    uint32_t *whole = table_map(round_to_page(capacity * sizeof(uint32_t)));
    uint16_t *pad = table_map(round_to_page(capacity * sizeof(uint16_t)));
    uint16_t *kept = table_map(round_to_page(capacity * sizeof(uint16_t)));
    if (!table || !whole || !pad || !kept) {
      if (table)
        munmap(table, capacity * sizeof(uintptr_t));
      if (whole)
        munmap(whole, round_to_page(capacity * sizeof(uint32_t)));
      if (pad)
        munmap(pad, round_to_page(capacity * sizeof(uint16_t)));
      if (kept)
        munmap(kept, round_to_page(capacity * sizeof(uint16_t)));
      return -1;
    }
    if (plan->kept_pad_pages) /* the padding in the space stays where it is */
      memcpy(kept, plan->kept_pad_words, plan->kept_pad_pages * sizeof(uint16_t));
    free_page_tables(plan);
    plan->page_first_object = table;
    plan->page_whole_from = whole;
    plan->page_pad_words = pad;
    plan->kept_pad_words = kept;
    plan->page_capacity = capacity;
  }
  return 0;
}

void ugc_compact_plan_free(ugc_compact_plan *plan) {
  if (plan->chunk_capacity)
    munmap(plan->chunk_live_before, round_to_page(plan->chunk_capacity * sizeof(uint32_t)));
  free_page_tables(plan);
  if (plan->forward_capacity)
    munmap(plan->forward_copy, round_to_page(plan->forward_capacity * sizeof(uint64_t)));
  if (plan->fixed_capacity)
    munmap(plan->fixed, round_to_page(plan->fixed_capacity * sizeof(ugc_fixed_range)));
  plan->chunk_live_before = NULL;
  plan->page_first_object = NULL;
  plan->page_whole_from = NULL;
  plan->page_pad_words = NULL;
  plan->kept_pad_words = NULL;
  plan->forward_copy = NULL;
  plan->fixed = NULL;
  free(plan->held);
  plan->held = NULL;
  free(plan->leaf_chunks);
  plan->leaf_chunks = NULL;
  plan->leaf_chunk_capacity = 0;
  plan->held_count = plan->held_capacity = 0;
  plan->chunk_capacity = 0;
  plan->page_capacity = 0;
  plan->forward_capacity = 0;
  plan->fixed_capacity = 0;
  plan->fixed_count = 0;
  plan->kept_pad_pages = 0;
}

void ugc_compact_plan_keep_padding(ugc_compact_plan *plan) {
  uint16_t *kept = plan->kept_pad_words;
  plan->kept_pad_words = plan->page_pad_words;
  plan->page_pad_words = kept;
  plan->kept_pad_pages = plan->page_count;
  ugc_compact_plan_forget_leaf_chunks(plan, plan->dense_end);
}

/* Grows the forward copy to `words` bitmap words and the range table to `ranges` entries. */
static int ensure_fixed_tables(ugc_compact_plan *plan, size_t words, size_t ranges) {
  if (words > plan->forward_capacity) {
    size_t bytes = round_to_page(words * sizeof(uint64_t));
    uint64_t *table = table_map(bytes);
    if (!table)
      return -1;
    if (plan->forward_capacity)
      munmap(plan->forward_copy, round_to_page(plan->forward_capacity * sizeof(uint64_t)));
    plan->forward_copy = table;
    plan->forward_capacity = bytes / sizeof(uint64_t);
  }
  if (ranges > plan->fixed_capacity) {
    size_t bytes = round_to_page(ranges * sizeof(ugc_fixed_range));
    ugc_fixed_range *table = table_map(bytes);
    if (!table)
      return -1;
    if (plan->fixed_capacity)
      munmap(plan->fixed, round_to_page(plan->fixed_capacity * sizeof(ugc_fixed_range)));
    plan->fixed = table;
    plan->fixed_capacity = bytes / sizeof(ugc_fixed_range);
  }
  return 0;
}

/* Word `w` of a bitmap, with the bits at or past old_top (bit limit_bit) cleared: the
 * caller's bitmaps should have none, but the plan must not depend on it. Words wholly past
 * limit_bit read as 0 without being loaded (a partial last dense page covers some). */
static inline uint64_t masked_word(const uint64_t *words, size_t w, size_t limit_bit) {
  if (w * 64 >= limit_bit)
    return 0;
  uint64_t word = words[w];
  if ((w + 1) * 64 > limit_bit) /* only the last word, and then limit_bit % 64 != 0 */
    word &= (UINT64_C(1) << (limit_bit & 63)) - 1;
  return word;
}

static inline uint64_t live_word(const ugc_compact_plan *plan, size_t w, size_t limit_bit) {
  return masked_word(plan->live_words, w, limit_bit);
}

/* Pass 1: number of leading pages whose live words and kept padding (compact.h, "Padding")
 * reach the threshold together; adds their live words to *live_words. */
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
    size_t padding = page < plan->kept_pad_pages ? plan->kept_pad_words[page] : 0;
    if (live + padding < needed)
      break;
    total += live;
  }
  *live_words += total;
  return page;
}

/* Pass 3a: page_first_object of the pages [from_page, to_page) kept in place (the dense
 * prefix, a fixed range), from the bitmaps alone. `last_start` is the last live object
 * starting before from_page when one may run into it, else 0. Returns the header address of
 * the last live object starting in the pages (below old_top), or else last_start. */
static uintptr_t record_dense_pages(ugc_compact_plan *plan, size_t from_page, size_t to_page,
                                    size_t limit_bit, uintptr_t last_start) {
  uintptr_t base = plan->space_base;
  for (size_t page = from_page; page < to_page; page++) {
    uintptr_t lo = base + (uintptr_t)page * UGC_PAGE_SIZE;
    uintptr_t first = 0, last = 0;
    for (size_t w = page * WORDS_PER_PAGE; w < (page + 1) * WORDS_PER_PAGE; w++) {
      uint64_t starts = masked_word(plan->start_words, w, limit_bit);
      if (!starts)
        continue;
      if (!first)
        first = base + 8 * (w * 64 + (size_t)__builtin_ctzll(starts));
      last = base + 8 * (w * 64 + 63 - (size_t)__builtin_clzll(starts));
    }
    /* A live first word belongs to the object starting there, or else to the last one
     * that started before the page (its words run on without a gap up to here). */
    if ((live_word(plan, page * WORDS_PER_PAGE, limit_bit) & 1) && first != lo)
      first = last_start;
    plan->page_first_object[page] = first;
    if (last)
      last_start = last;
  }
  return last_start;
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

/* Pass 3b: the first object of the slid pages [from_page, page_count). The caller records
 * the page before from_page; `previous_bit` is the live word landing at its start (for the
 * first slid page: the first live word at or after dense_end) or any bit below the first
 * start bit of the objects landing in from_page; `chunk` is a chunk at or before the one
 * holding from_page's landing word.
 *
 * The word that lands at a page start B is the live word of rank k = (B - dense_end) / 8
 * counted from dense_end: chunk_live_before finds its chunk (a pointer moving forward over
 * the pages), select_bit its bit. Its object is the last live object starting at or before
 * it: the last start bit after the word that landed at the previous page's start, or, if
 * there is none, the object holding that word too, the previous page's first object:
 *
 *   old:  ...ddd|LLLLLLLLLLLLLLLLL|ddd...      one run of live words
 *   starts:      1   1    1  1                 start bits of the objects in it
 *                      ^prev    ^the word landing at B: its object starts at the last 1
 *
 * Cost: O(chunks) for the pointer plus, per page, one select and a backward scan of the
 * start bitmap that never goes below the previous page's word: every start-bitmap word of
 * the slid region is read about once, and no object header at all. */
static void record_slid_pages(ugc_compact_plan *plan, size_t from_page, size_t to_page,
                              size_t chunk, size_t chunks, size_t limit_bit, size_t previous_bit) {
  uintptr_t base = plan->space_base;
  const uint64_t *starts = plan->start_words;
  const uint32_t *before = plan->chunk_live_before;
  uintptr_t *first = plan->page_first_object;
  size_t dense_words = (plan->dense_end - base) / 8;
  for (size_t page = from_page; page < to_page; page++) {
    size_t rank = page * (UGC_PAGE_SIZE / 8) - dense_words;
    while (chunk + 1 < chunks && before[chunk + 1] <= rank)
      chunk++;
    uint64_t word = live_word(plan, chunk, limit_bit);
    if (rank - before[chunk] >= ugc_compact_popcount64(word)) {
      /* The page starts in padding, which a whole slide put before chunk + 1 (a boundary no
       * object crosses): its first object is the next live one, which starts an object. */
      size_t next = ugc_compact_bitmap_next(plan->live_words, (chunk + 1) * 64, limit_bit, 0);
      first[page] = base + 8 * next;
      previous_bit = next - 1;
      continue;
    }
    size_t bit = chunk * 64 + select_bit(word, (unsigned)(rank - before[chunk]));
    size_t start = ugc_compact_bitmap_prev(starts, previous_bit + 1, bit + 1);
    first[page] = start == SIZE_MAX ? first[page - 1] : base + 8 * start;
    previous_bit = bit;
  }
}

static uintptr_t page_floor(uintptr_t address) {
  return address & ~(uintptr_t)(UGC_PAGE_SIZE - 1);
}

/* Pass 1b: the fixed ranges, from the pinned objects that are live and past dense_end. A
 * range is the pages of its pinned object, widened down while a live object straddles into
 * its first page from an earlier one (that object has to stay too: it is in place by the
 * time the range starts), cut at old_top's page and merged with a range it touches. Objects
 * that start in a range and run past its end stay in place with it: the next chunk's count
 * includes their tail, so what follows is packed after them. */
/* Moves a page-aligned `start` down, page by page, while a live object straddles into it
 * from an earlier page, but not below `floor`. */
static uintptr_t widen_down(const ugc_compact_plan *plan, uintptr_t start, uintptr_t floor,
                            size_t limit_bit) {
  uintptr_t base = plan->space_base;
  size_t floor_bit = (floor - base) / 8;
  for (;;) {
    size_t bit = (start - base) / 8;
    if (start <= floor || !(live_word(plan, bit >> 6, limit_bit) & 1) ||
        ugc_compact_bit_set(plan->start_words, bit))
      break;
    size_t header = ugc_compact_bitmap_prev(plan->start_words, floor_bit, bit);
    /* No start bit back to the floor: the object started below it. */
    start = header == SIZE_MAX ? floor : page_floor(base + 8 * header);
  }
  return start < floor ? floor : start;
}

/* Appends [start, end) to the held spans, merged with the last one if they touch. */
static int add_held(ugc_compact_plan *plan, uintptr_t start, uintptr_t end) {
  ugc_fixed_range *last = plan->held_count ? &plan->held[plan->held_count - 1] : NULL;
  if (last && start <= last->end) {
    if (start < last->start)
      last->start = start;
    if (end > last->end)
      last->end = end;
    return 0;
  }
  if (plan->held_count == plan->held_capacity) {
    size_t capacity = 2 * plan->held_capacity + 16;
    ugc_fixed_range *table = realloc(plan->held, capacity * sizeof *table);
    if (!table)
      return -1;
    plan->held = table;
    plan->held_capacity = capacity;
  }
  plan->held[plan->held_count++] = (ugc_fixed_range){start, end, 0};
  return 0;
}

static int compute_fixed_ranges(ugc_compact_plan *plan, size_t limit_bit) {
  plan->fixed_count = 0;
  plan->held_count = 0;
  if (!plan->pinned_count)
    return 0;
  uintptr_t base = plan->space_base;
  uintptr_t top_page = round_to_page(plan->old_top - base) + base;
  for (size_t i = 0; i < plan->pinned_count; i++) {
    uintptr_t pinned = plan->pinned[i];
    if (pinned >= plan->old_top || (pinned - base) % 8 ||
        !ugc_compact_bit_set(plan->start_words, (pinned - base) / 8))
      continue;
    /* In the dense prefix the object stays anyway; its pages (up to its end or dense_end)
     * are only held. Not widened down over an object straddling into its first page: a held
     * page is updated in place reading its objects' headers and slots in from-space, where
     * the page before it lies too (backend/handoff.h). In the slid region the straddler must
     * stay with the range: widened. */
    bool dense = pinned < plan->dense_end;
    uintptr_t start = dense ? page_floor(pinned)
                            : widen_down(plan, page_floor(pinned), plan->dense_end, limit_bit);
    size_t next = (pinned - base) / 8 + 1;
    size_t end_bit = ugc_compact_bitmap_next(plan->start_words, next, limit_bit, 0);
    size_t dead_bit = ugc_compact_bitmap_next(plan->live_words, next, limit_bit, ~UINT64_C(0));
    uintptr_t end = base + round_to_page(8 * (end_bit < dead_bit ? end_bit : dead_bit));
    if (end > top_page)
      end = top_page;
    if (dense) {
      if (end > plan->dense_end) /* the tail in the first slid page is rebuilt */
        end = plan->dense_end;
      if (add_held(plan, start, end) != 0)
        return -1;
      continue;
    }
    ugc_fixed_range *last = plan->fixed_count ? &plan->fixed[plan->fixed_count - 1] : NULL;
    if (last && start <= last->end) {
      if (end > last->end)
        last->end = end;
      continue;
    }
    if (plan->fixed_count == plan->fixed_capacity &&
        ensure_fixed_tables(plan, 0, 2 * plan->fixed_capacity + 16) != 0)
      return -1;
    plan->fixed[plan->fixed_count++] = (ugc_fixed_range){start, end, 0};
  }
  /* The ranges are held too (a range's first page may hold the tail of an object straddling
   * in from the dense prefix: its header is read in from-space, like a dense held page's). */
  for (size_t r = 0; r < plan->fixed_count; r++)
    if (add_held(plan, plan->fixed[r].start, plan->fixed[r].end) != 0)
      return -1;
  return 0;
}

/* Pass 3 of the pages from dense_end on, segment by segment: a segment's slid pages up to
 * where its packed data ends (pass 3b), then filler pages up to the next fixed range
 * (their first object is the range's first: a page's entry never decreases), then the
 * range's pages, recorded like dense pages. */
static void record_segments(ugc_compact_plan *plan, size_t chunks, size_t limit_bit,
                            uintptr_t last_dense) {
  uintptr_t base = plan->space_base;
  uintptr_t from = plan->dense_end, straddler_header = last_dense;
  for (size_t r = 0;; r++) {
    int last = r == plan->fixed_count;
    uintptr_t to = last ? plan->old_top : plan->fixed[r].start;
    uintptr_t data_end = last ? plan->new_top : plan->fixed[r].slid_end;
    size_t page = (from - base) / UGC_PAGE_SIZE;
    if (data_end > from) {
      size_t from_bit = (from - base) / 8;
      uintptr_t start;
      if (straddler_header && ugc_compact_bit_set(plan->live_words, from_bit) &&
          !ugc_compact_bit_set(plan->start_words, from_bit))
        start = straddler_header; /* stays put, heads the segment's first page */
      else
        start = ugc_compact_next_live(plan, from, to);
      plan->page_first_object[page] = start;
      size_t first_bit = (ugc_compact_next_live(plan, from, to) - base) / 8;
      size_t data_pages = (round_to_page(data_end - base)) / UGC_PAGE_SIZE;
      record_slid_pages(plan, page + 1, data_pages, from_bit / 64, chunks, limit_bit, first_bit);
      page = data_pages;
    }
    if (last)
      return;
    size_t range_page = (to - base) / UGC_PAGE_SIZE;
    uintptr_t range_first = ugc_compact_next_live(plan, to, plan->old_top);
    for (; page < range_page; page++)
      plan->page_first_object[page] = range_first;
    size_t end_page = (plan->fixed[r].end - base) / UGC_PAGE_SIZE;
    straddler_header = record_dense_pages(plan, range_page, end_page, limit_bit,
                                          to == plan->dense_end ? last_dense : 0);
    from = plan->fixed[r].end;
  }
}

/* Pass 2 with fixed ranges: the running count jumps to a range's own offset where it starts
 * (the objects before it were packed; the rest up to it is the filler) and counts every word
 * of it, so that forwarding maps it to itself. forward_copy gets the bitmap with the
 * ranges' words set. Returns the forwarded words from first_chunk on. */
static size_t count_with_ranges(ugc_compact_plan *plan, size_t first_chunk, size_t chunks,
                                size_t limit_bit, size_t *live_words) {
  uintptr_t base = plan->space_base;
  size_t forward = 0, live = 0, r = 0;
  for (size_t c = first_chunk; c < chunks; c++) {
    uintptr_t chunk_start = base + c * UGC_CHUNK_BYTES;
    uint64_t word = live_word(plan, c, limit_bit);
    live += ugc_compact_popcount64(word);
    while (r < plan->fixed_count && plan->fixed[r].end <= chunk_start)
      r++;
    if (r < plan->fixed_count && chunk_start >= plan->fixed[r].start) {
      if (chunk_start == plan->fixed[r].start) {
        plan->fixed[r].slid_end = plan->dense_end + 8 * forward;
        forward = (chunk_start - plan->dense_end) / 8;
      }
      plan->forward_copy[c] = ~UINT64_C(0);
      size_t words = limit_bit - c * 64;
      word = words >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << words) - 1;
    } else {
      plan->forward_copy[c] = plan->live_words[c];
    }
    plan->chunk_live_before[c] = (uint32_t)forward;
    forward += ugc_compact_popcount64(word);
  }
  *live_words += live;
  return forward;
}

/* Pass 2b (whole_slides): whole-page slides, drawn in compact.h. Runs of fully live pages
 * are split around non-LEAF objects, trimmed at the end, and accepted in address order; each
 * accepted run adds its padding to chunk_live_before from its padding chunk on (lazily: the
 * entries below `applied_chunk` hold the padding placed so far, those above do not yet). */
#define WHOLE_PAD_DIVISOR 4u        /* padding at most a quarter of the run's bytes */
#define WHOLE_PAD_SEARCH_CHUNKS 64u /* how far below a run's first object the padding may go */

typedef struct whole_runs {
  ugc_compact_plan *plan;
  size_t limit_bit;     /* old_top's bit */
  size_t dense_bit;     /* dense_end's bit */
  size_t pad_words;     /* padding placed so far */
  size_t applied_chunk; /* chunk_live_before below this includes pad_words */
  size_t free_chunk;    /* the next padding goes at this chunk or later */
} whole_runs;

static bool page_fully_live(const ugc_compact_plan *plan, size_t page) {
  for (size_t w = page * WORDS_PER_PAGE; w < (page + 1) * WORDS_PER_PAGE; w++)
    if (plan->live_words[w] != ~UINT64_C(0))
      return false;
  return true;
}

/* Whether the live object at old address `hdr` has no reference slot; *total its size. */
static bool leaf_object(const ugc_compact_plan *plan, uintptr_t hdr, size_t *total) {
  uint64_t header = ugc_header_load(hdr);
  *total = ugc_header_total(header);
  return plan->types->entries[ugc_header_type(header)].layout == UGC_LAYOUT_LEAF;
}

/* New address of the word after `words` live words of chunk `chunk`, with `pending` words of
 * padding placed before it but not yet added to chunk_live_before: the forwarding formula
 * (compact.h) while the runs are being placed. */
static uintptr_t placed_address(const ugc_compact_plan *plan, size_t chunk, size_t words,
                                size_t pending) {
  return plan->dense_end + 8 * (plan->chunk_live_before[chunk] + words + pending);
}

/* Counts padding [at, at + bytes) in page_pad_words of the to-space pages it covers. */
static void count_padding(ugc_compact_plan *plan, uintptr_t at, size_t bytes) {
  while (bytes) {
    size_t offset = (at - plan->space_base) & (UGC_PAGE_SIZE - 1);
    size_t part = UGC_PAGE_SIZE - offset < bytes ? UGC_PAGE_SIZE - offset : bytes;
    plan->page_pad_words[(at - plan->space_base) / UGC_PAGE_SIZE] += (uint16_t)(part / 8);
    at += part;
    bytes -= part;
  }
}

/* Offers the old pages [first, end): fully live, every object overlapping them LEAF. */
static void offer_run(whole_runs *r, size_t first, size_t end) {
  ugc_compact_plan *plan = r->plan;
  const uint64_t *live = plan->live_words, *starts = plan->start_words;
  /* Trim: the object crossing into page `end` must not start in the run. */
  while (end > first) {
    size_t end_bit = end * (UGC_PAGE_SIZE / 8);
    if (end_bit >= r->limit_bit || !ugc_compact_bit_set(live, end_bit) ||
        ugc_compact_bit_set(starts, end_bit))
      break;
    size_t header_bit = ugc_compact_bitmap_prev(starts, first * (UGC_PAGE_SIZE / 8), end_bit);
    if (header_bit == SIZE_MAX)
      break; /* it starts before the run: the page before it is built, and reads it */
    end = header_bit / (UGC_PAGE_SIZE / 8);
  }
  if (end <= first)
    return;
  /* The object holding the run's first word keeps its page offset: padding before it. */
  size_t first_bit = first * (UGC_PAGE_SIZE / 8);
  size_t head_bit = ugc_compact_bit_set(starts, first_bit)
                        ? first_bit
                        : ugc_compact_bitmap_prev(starts, r->dense_bit, first_bit);
  if (head_bit == SIZE_MAX)
    return; /* a straddler from the dense prefix: it does not move */
  size_t head_chunk = head_bit / 64;
  size_t low = r->free_chunk;
  if (head_chunk >= WHOLE_PAD_SEARCH_CHUNKS && head_chunk - WHOLE_PAD_SEARCH_CHUNKS > low)
    low = head_chunk - WHOLE_PAD_SEARCH_CHUNKS;
  if (head_chunk < low)
    return;
  size_t pad_chunk = head_chunk;
  while (ugc_compact_bit_set(live, pad_chunk * 64) &&
         !ugc_compact_bit_set(starts, pad_chunk * 64)) {
    if (pad_chunk == low)
      return; /* every boundary in reach is crossed by an object */
    pad_chunk--;
  }
  uint64_t below = live[head_chunk] & ((UINT64_C(1) << (head_bit & 63)) - 1);
  uintptr_t head_old = plan->space_base + 8 * head_bit;
  uintptr_t head_new =
      placed_address(plan, head_chunk, ugc_compact_popcount64(below), r->pad_words);
  size_t pad = (head_old - head_new) & (UGC_PAGE_SIZE - 1);
  if (pad > (end - first) * UGC_PAGE_SIZE / WHOLE_PAD_DIVISOR)
    return;
  count_padding(plan, placed_address(plan, pad_chunk, 0, r->pad_words), pad);
  for (size_t c = r->applied_chunk; c < pad_chunk; c++)
    plan->chunk_live_before[c] += (uint32_t)r->pad_words;
  r->applied_chunk = pad_chunk;
  r->pad_words += pad / 8;
  r->free_chunk = end * WORDS_PER_PAGE;
  size_t new_page =
      (head_new + pad + (first_bit - head_bit) * 8 - plan->space_base) / UGC_PAGE_SIZE;
  for (size_t i = 0; i < end - first; i++)
    plan->page_whole_from[new_page + i] = (uint32_t)(first + i + 1);
  plan->whole_pages += end - first;
}

/* Adds the padding placed so far to chunk_live_before up to chunk `to`. */
static void apply_padding(whole_runs *r, size_t to) {
  for (size_t c = r->applied_chunk; c < to; c++)
    r->plan->chunk_live_before[c] += (uint32_t)r->pad_words;
}

/* Finds the runs among the slid pages wholly below old_top, segment by segment between the
 * fixed ranges: a run never reaches into a range (a range's first page holds no object from
 * before it, so a run ending there reads nothing of it), and a segment's padding only moves
 * what the segment packs: its slid_end. Sets pad_bytes; returns the padding of the last
 * segment in words (what new_top gains). */
static size_t place_whole_runs(ugc_compact_plan *plan, size_t dense_pages, size_t chunks,
                               size_t limit_bit) {
  size_t full_pages = (plan->old_top - plan->space_base) / UGC_PAGE_SIZE, all_pad = 0;
  whole_runs r = {.plan = plan,
                  .limit_bit = limit_bit,
                  .dense_bit = dense_pages * (UGC_PAGE_SIZE / 8),
                  .applied_chunk = dense_pages * WORDS_PER_PAGE,
                  .free_chunk = dense_pages * WORDS_PER_PAGE};
  size_t page = dense_pages;
  for (size_t range = 0; range <= plan->fixed_count; range++) {
    ugc_fixed_range *fixed = range < plan->fixed_count ? &plan->fixed[range] : NULL;
    size_t segment_end = fixed ? (fixed->start - plan->space_base) / UGC_PAGE_SIZE : full_pages;
    if (segment_end > full_pages)
      segment_end = full_pages;
    while (page < segment_end) {
      if (!page_fully_live(plan, page)) {
        page++;
        continue;
      }
      size_t end = page + 1;
      while (end < segment_end && page_fully_live(plan, end))
        end++;
      /* Objects are contiguous from the one holding the page's first word to the run's end:
       * split the run around every non-LEAF one. */
      size_t bit = page * (UGC_PAGE_SIZE / 8);
      size_t head = ugc_compact_bit_set(plan->start_words, bit)
                        ? bit
                        : ugc_compact_bitmap_prev(plan->start_words, 0, bit);
      uintptr_t object = plan->space_base + 8 * head;
      uintptr_t run_end = plan->space_base + end * UGC_PAGE_SIZE;
      size_t sub = page;
      while (object < run_end) {
        size_t total;
        if (!leaf_object(plan, object, &total)) {
          size_t first_page = (object - plan->space_base) / UGC_PAGE_SIZE;
          size_t last_page = (object + total - 1 - plan->space_base) / UGC_PAGE_SIZE;
          if (first_page > sub)
            offer_run(&r, sub, first_page);
          if (last_page + 1 > sub)
            sub = last_page + 1;
        }
        object += total;
      }
      if (sub < end)
        offer_run(&r, sub, end);
      page = end;
    }
    if (!fixed)
      break;
    /* The count jumps to the range's own offset there: the padding stops at its start. */
    size_t range_chunk = (fixed->start - plan->space_base) / UGC_CHUNK_BYTES;
    apply_padding(&r, range_chunk);
    fixed->slid_end += 8 * r.pad_words;
    all_pad += r.pad_words;
    r.pad_words = 0;
    r.applied_chunk = r.free_chunk = (fixed->end - plan->space_base) / UGC_CHUNK_BYTES;
    page = (fixed->end - plan->space_base) / UGC_PAGE_SIZE;
  }
  apply_padding(&r, chunks);
  plan->pad_bytes = 8 * (all_pad + r.pad_words);
  return r.pad_words;
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
  /* Room for ugc_compact_plan_extend up to reserve_top. */
  size_t reserve_bytes = plan->reserve_top > plan->old_top ? plan->reserve_top - base : heap_bytes;
  size_t reserve_chunks = (reserve_bytes + UGC_CHUNK_BYTES - 1) / UGC_CHUNK_BYTES;
  if (ensure_tables(plan, reserve_chunks, (reserve_bytes + UGC_PAGE_SIZE - 1) / UGC_PAGE_SIZE) != 0)
    return -1;

  /* Pass 1. Dense and fixed pages keep their padding; slid pages get what the runs place. */
  size_t live_words = 0;
  size_t dense_pages = dense_prefix_pages(plan, old_pages, limit_bit, &live_words);
  plan->dense_end = base + dense_pages * UGC_PAGE_SIZE;
  plan->forward_words = plan->live_words;
  if (compute_fixed_ranges(plan, limit_bit) != 0)
    return -1;
  size_t kept = dense_pages < plan->kept_pad_pages ? dense_pages : plan->kept_pad_pages;
  if (old_pages) {
    memcpy(plan->page_pad_words, plan->kept_pad_words, kept * sizeof(uint16_t));
    memset(plan->page_pad_words + kept, 0, (old_pages - kept) * sizeof(uint16_t));
  }
  for (size_t r = 0; r < plan->fixed_count; r++) /* kept in place too, with their padding */
    for (size_t page = (plan->fixed[r].start - base) / UGC_PAGE_SIZE;
         page < (plan->fixed[r].end - base) / UGC_PAGE_SIZE && page < plan->kept_pad_pages; page++)
      plan->page_pad_words[page] = plan->kept_pad_words[page];

  /* Pass 2: running totals from the first slid chunk (page aligned, so chunk aligned). The
   * entries below it are never read (forwarding returns dense addresses unchanged). */
  size_t first_chunk = dense_pages * WORDS_PER_PAGE;
  size_t slid_words = 0;
  if (plan->fixed_count) {
    if (ensure_fixed_tables(plan, reserve_chunks, 0) != 0)
      return -1;
    slid_words = count_with_ranges(plan, first_chunk, chunks, limit_bit, &live_words);
    plan->forward_words = plan->forward_copy;
  } else {
    for (size_t c = first_chunk; c < chunks; c++) {
      plan->chunk_live_before[c] = (uint32_t)slid_words;
      slid_words += ugc_compact_popcount64(live_word(plan, c, limit_bit));
    }
    live_words += slid_words;
  }
  plan->live_bytes = live_words * 8;
  plan->whole_pages = 0;
  plan->pad_bytes = 0;
  if (plan->whole_slides && dense_pages < old_pages) {
    memset(plan->page_whole_from + dense_pages, 0, (old_pages - dense_pages) * sizeof(uint32_t));
    slid_words += place_whole_runs(plan, dense_pages, chunks, limit_bit);
  }
  plan->new_top =
      plan->dense_end > plan->old_top ? plan->old_top : plan->dense_end + 8 * slid_words;
  plan->page_count = (plan->new_top - base + UGC_PAGE_SIZE - 1) / UGC_PAGE_SIZE;

  /* Pass 3. */
  uintptr_t last_dense = dense_pages ? record_dense_pages(plan, 0, dense_pages, limit_bit, 0) : 0;
  if (plan->new_top > plan->dense_end) /* then dense_end < old_top */
    record_segments(plan, chunks, limit_bit, last_dense);
  ugc_compact_plan_untouched(plan);
  return 0;
}

/* Walks down from the page boundary at or below `limit`: a boundary is taken when its word
 * is dead or starts an object; inside an object, the walk jumps to the page of the object's
 * header (every boundary in between lies inside that object too). The two bits at the
 * boundary are loaded atomically: when `limit` is not page aligned, their bitmap word also
 * holds bits past `limit`, which a mutator may be setting now (a medium object allocated
 * black). Set bits there can only make the walk go lower, never past a crossing object. */
uintptr_t ugc_compact_plan_extend_boundary(const ugc_compact_plan *plan, uintptr_t limit) {
  uintptr_t base = plan->space_base, floor = plan->old_top;
  if (limit <= floor)
    return floor;
  size_t floor_bit = (floor - base) / 8;
  uintptr_t at = base + ((limit - base) & ~(uintptr_t)(UGC_PAGE_SIZE - 1));
  while (at > floor) {
    size_t bit = (at - base) / 8;
    uint64_t live = __atomic_load_n(&plan->live_words[bit / 64], __ATOMIC_RELAXED);
    uint64_t starts = __atomic_load_n(&plan->start_words[bit / 64], __ATOMIC_RELAXED);
    if (!((live >> (bit % 64)) & 1) || ((starts >> (bit % 64)) & 1))
      return at;
    size_t header = ugc_compact_bitmap_prev(plan->start_words, floor_bit, bit);
    if (header == SIZE_MAX)
      return floor; /* no header above old_top: not a bitmap this plan can extend over */
    at = base + ((8 * header) & ~(uintptr_t)(UGC_PAGE_SIZE - 1));
  }
  return floor;
}

/* The extension only appends: the region [old_top, new_old_top) is slid after everything
 * the plan already places, so the entries it computed stay as they are.
 *
 *   old:  |dense ...|slid ...........|pad|L L d L L ... L|
 *                                    ^old_top (page)  ^new_old_top
 *   new:  |dense ...|slid ....|L L L L L ...|
 *                             ^new_top before  ^new_top after
 *
 * chunk_live_before goes on from the live words the plan slid so far; the to-space pages
 * from the old page_count on get their first objects as in pass 3b, the chunk pointer
 * starting at old_top's chunk. Every object of the region starts at or after old_top, so
 * old_top's bit - 1 bounds the first new page's backward scan. */
int ugc_compact_plan_extend(ugc_compact_plan *plan, uintptr_t new_old_top) {
  uintptr_t base = plan->space_base;
  if ((plan->old_top - base) % UGC_PAGE_SIZE || plan->dense_end > plan->old_top ||
      new_old_top < plan->old_top)
    return -1;
  size_t heap_bytes = new_old_top - base, limit_bit = heap_bytes / 8;
  size_t chunks = (heap_bytes + UGC_CHUNK_BYTES - 1) / UGC_CHUNK_BYTES;
  size_t old_pages = (heap_bytes + UGC_PAGE_SIZE - 1) / UGC_PAGE_SIZE;
  if (limit_bit > UINT32_MAX || chunks > plan->chunk_capacity || old_pages > plan->page_capacity ||
      (plan->forward_words != plan->live_words && chunks > plan->forward_capacity))
    return -1;
  size_t first_chunk = (plan->old_top - base) / UGC_CHUNK_BYTES;
  size_t slid_words = (plan->new_top - plan->dense_end) / 8, added = 0;
  for (size_t c = first_chunk; c < chunks; c++) {
    plan->chunk_live_before[c] = (uint32_t)(slid_words + added);
    added += ugc_compact_popcount64(live_word(plan, c, limit_bit));
    if (plan->forward_words != plan->live_words) /* the region has no fixed range */
      plan->forward_copy[c] = plan->live_words[c];
  }
  size_t from_page = plan->page_count;
  size_t new_pages =
      (plan->dense_end + 8 * (slid_words + added) - base + UGC_PAGE_SIZE - 1) / UGC_PAGE_SIZE;
  if (plan->whole_pages && new_pages > from_page) /* the region is slid as usual */
    memset(plan->page_whole_from + from_page, 0, (new_pages - from_page) * sizeof(uint32_t));
  if (new_pages > from_page) /* and holds no padding */
    memset(plan->page_pad_words + from_page, 0, (new_pages - from_page) * sizeof(uint16_t));
  plan->old_top = new_old_top;
  plan->live_bytes += 8 * added;
  plan->new_top = plan->dense_end + 8 * (slid_words + added);
  plan->page_count = (plan->new_top - base + UGC_PAGE_SIZE - 1) / UGC_PAGE_SIZE;
  record_slid_pages(plan, from_page, plan->page_count, first_chunk, chunks, limit_bit,
                    first_chunk * 64 - 1);
  return 0;
}
