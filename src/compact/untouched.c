/* Untouched spans (plan->leave_untouched): parts of the dense prefix a compaction needs
 * neither to read nor to write, so a backend can leave them out of the hand-off (compact.h).
 *
 * A dense page's build copies its bytes, writes a filler over each dead run and updates its
 * reference slots. A page whose every word is live (or padding an earlier cycle placed,
 * already a filler) and whose objects are all LEAF comes out of its build byte for byte as
 * it went in. Long-lived strings, number arrays, bytecode: data runtimes accumulate at the
 * bottom of the heap, and that a copying compactor would otherwise copy in every cycle.
 *
 *   dense prefix  |..built..|<=== 2 MiB chunks: fully live, all LEAF ===>|..built..| slid
 *                            ^ 2 MiB aligned             2 MiB aligned ^
 *                           stays mapped in the heap: never handed off, never faults
 *
 * Spans are whole 2 MiB-aligned chunks, so that the hand-off's mremap moves whole page-table
 * entries on both sides; each span costs the pause one more mremap, so
 * only the few longest (UGC_UNTOUCHED_MAX) are taken. An object with its header in the span
 * may go on past its end: the build of the page after the span reads that header from
 * from-space, so the span's last pages from the header's on (its tail, a page or a few) get
 * a from-space copy in the hand-off. (Ending the span before that page instead would not
 * do: the object crossing the new end starts in the span too, and so on, page by page.) An object
 * straddling into the span from before it is LEAF too (its part in the span needs no update); its
 * own page is built as usual and reads nothing of the span.
 *
 * Reads the bitmaps and, for chunks whose bitmap is full, the header of every object in
 * them (marking read them in this cycle too). */
#include "compact/compact.h"

#include <stdlib.h>
#include <string.h>

#include "heap/object.h"
#include "os/inject.h"

#define CHUNK_BYTES ((uintptr_t)2 << 20)
#define BITS_PER_CHUNK (CHUNK_BYTES / 8)
#define REGION_BYTES ((uintptr_t)1 << 30)

/* Whether the object whose header is at bit `bit` has no reference slot. */
static bool leaf_at(const ugc_compact_plan *plan, size_t bit) {
  uint64_t header = ugc_header_load(plan->space_base + 8 * bit);
  return plan->types->entries[ugc_header_type(header)].layout == UGC_LAYOUT_LEAF;
}

/* The LEAF findings of earlier cycles (plan->leaf_chunks): chunk index of `address`. */
static size_t leaf_chunk_index(const ugc_compact_plan *plan, uintptr_t address) {
  return (address - (plan->space_base & ~(CHUNK_BYTES - 1))) / CHUNK_BYTES;
}

static bool leaf_chunk_known(const ugc_compact_plan *plan, size_t index) {
  return index < plan->leaf_chunk_capacity && (plan->leaf_chunks[index / 64] >> (index % 64) & 1);
}

/* Makes room for chunk `index`; false when there is no memory (then nothing is remembered). */
static bool leaf_chunks_reserve(ugc_compact_plan *plan, size_t index) {
  if (index < plan->leaf_chunk_capacity)
    return true;
  size_t capacity = (index + 1 + 63) / 64 * 64 * 2;
  uint64_t *bits = realloc(plan->leaf_chunks, capacity / 8);
  if (!bits)
    return false;
  memset(bits + plan->leaf_chunk_capacity / 64, 0, (capacity - plan->leaf_chunk_capacity) / 8);
  plan->leaf_chunks = bits;
  plan->leaf_chunk_capacity = capacity;
  return true;
}

void ugc_compact_plan_forget_leaf_chunks(ugc_compact_plan *plan, uintptr_t from) {
  if (from < plan->space_base)
    from = plan->space_base;
  for (size_t index = leaf_chunk_index(plan, from); index < plan->leaf_chunk_capacity; index++)
    plan->leaf_chunks[index / 64] &= ~(UINT64_C(1) << (index % 64));
}

/* Whether every word of [bit, bit + BITS_PER_CHUNK) is live or padding a compaction placed
 * (a filler already), no held span touches it, and every object overlapping it is LEAF.
 * The last is remembered per chunk: a chunk below dense_end keeps its objects (they do not
 * move, none is allocated there), so once found LEAF it stays so until it moves. */
static bool chunk_untouched(ugc_compact_plan *plan, size_t bit) {
  uintptr_t address = plan->space_base + 8 * bit;
  if (ugc_compact_next_held(plan, address) < address + CHUNK_BYTES ||
      ugc_compact_held_at(plan, address))
    return false;
  const size_t words_per_page = UGC_PAGE_SIZE / 8;
  for (size_t page_bit = bit; page_bit < bit + BITS_PER_CHUNK; page_bit += words_per_page) {
    unsigned live = 0;
    for (size_t w = page_bit / 64; w < (page_bit + words_per_page) / 64; w++)
      live += ugc_compact_popcount64(plan->live_words[w]);
    size_t page = page_bit / words_per_page;
    if (live + (page < plan->page_count ? plan->page_pad_words[page] : 0) != words_per_page)
      return false;
  }
  size_t index = leaf_chunk_index(plan, address);
  if (leaf_chunk_known(plan, index))
    return true;
  /* The object straddling in from before the chunk, then every object starting in it. */
  if (ugc_compact_bit_set(plan->live_words, bit) && !ugc_compact_bit_set(plan->start_words, bit)) {
    size_t header = ugc_compact_bitmap_prev(plan->start_words, 0, bit);
    if (header == SIZE_MAX || !leaf_at(plan, header))
      return false;
  }
  size_t end = bit + BITS_PER_CHUNK;
  for (size_t at = ugc_compact_bitmap_next(plan->start_words, bit, end, 0); at < end;
       at = ugc_compact_bitmap_next(plan->start_words, at + 1, end, 0))
    if (!leaf_at(plan, at))
      return false;
  if (leaf_chunks_reserve(plan, index))
    plan->leaf_chunks[index / 64] |= UINT64_C(1) << (index % 64);
  return true;
}

/* Offers the chunks [first, end) (bit numbers, chunk aligned), kept when it is among the
 * UGC_UNTOUCHED_MAX longest so far. */
static void offer_span(ugc_compact_plan *plan, size_t first, size_t end, size_t limit_bit) {
  const size_t words_per_page = UGC_PAGE_SIZE / 8;
  ugc_untouched_span span = {plan->space_base + 8 * first, plan->space_base + 8 * end, 0};
  span.tail = span.end;
  if (end < limit_bit && ugc_compact_bit_set(plan->live_words, end) &&
      !ugc_compact_bit_set(plan->start_words, end)) { /* an object goes on past the end */
    size_t header = ugc_compact_bitmap_prev(plan->start_words, first, end);
    if (header == SIZE_MAX)
      return; /* one object over the whole span: cannot be (objects are small), but safe */
    span.tail = plan->space_base + 8 * (header / words_per_page * words_per_page);
  }
  size_t count = plan->untouched_count;
  if (count == UGC_UNTOUCHED_MAX) { /* replace the shortest, if this one is longer */
    size_t shortest = 0;
    for (size_t i = 1; i < count; i++)
      if (plan->untouched[i].end - plan->untouched[i].start <
          plan->untouched[shortest].end - plan->untouched[shortest].start)
        shortest = i;
    if (span.end - span.start <= plan->untouched[shortest].end - plan->untouched[shortest].start)
      return;
    for (size_t i = shortest; i + 1 < count; i++) /* keep them ascending */
      plan->untouched[i] = plan->untouched[i + 1];
    count--;
  }
  plan->untouched[count] = span;
  plan->untouched_count = count + 1;
}

void ugc_compact_plan_untouched(ugc_compact_plan *plan) {
  plan->untouched_count = 0;
  plan->untouched_pages = 0;
  if (!plan->leave_untouched || ugc_inject("plan.no_untouched"))
    return;
  uintptr_t base = plan->space_base;
  uintptr_t top = plan->dense_end < plan->old_top ? plan->dense_end : plan->old_top;
  uintptr_t from = (base + CHUNK_BYTES - 1) & ~(CHUNK_BYTES - 1);
  uintptr_t to = top & ~(CHUNK_BYTES - 1);
  if (from >= to)
    return;
  /* Pass 1: which chunks qualify, and how many in each 1 GiB region. */
  size_t chunks = (to - from) / CHUNK_BYTES;
  uint64_t *qualifies = calloc((chunks + 63) / 64, sizeof *qualifies);
  if (!qualifies)
    return; /* no spans: every page is built, as without them */
  uintptr_t best_region = 0;
  size_t best_count = 0, count = 0;
  for (size_t i = 0; i < chunks; i++) {
    uintptr_t chunk = from + i * CHUNK_BYTES;
    if (i && chunk % REGION_BYTES == 0)
      count = 0;
    if (!chunk_untouched(plan, (chunk - base) / 8))
      continue;
    qualifies[i / 64] |= UINT64_C(1) << (i % 64);
    if (++count > best_count) {
      best_count = count;
      best_region = chunk & ~(REGION_BYTES - 1);
    }
  }
  /* Pass 2: the spans of that region only. */
  size_t limit_bit = (plan->old_top - base) / 8, span_start = SIZE_MAX;
  for (size_t i = 0; i < chunks; i++) {
    uintptr_t chunk = from + i * CHUNK_BYTES;
    bool in_region = (chunk & ~(REGION_BYTES - 1)) == best_region && best_count;
    if (in_region && (qualifies[i / 64] >> (i % 64) & 1)) {
      if (span_start == SIZE_MAX)
        span_start = (chunk - base) / 8;
      continue;
    }
    if (span_start != SIZE_MAX)
      offer_span(plan, span_start, (chunk - base) / 8, limit_bit);
    span_start = SIZE_MAX;
  }
  if (span_start != SIZE_MAX)
    offer_span(plan, span_start, (to - base) / 8, limit_bit);
  free(qualifies);
  for (size_t i = 0; i < plan->untouched_count; i++)
    plan->untouched_pages += (plan->untouched[i].end - plan->untouched[i].start) / UGC_PAGE_SIZE;
}
