/* Building one to-space page from from-space: the collector's inner loop, shared by every
 * backend (stop-the-world loop, GC threads, mutators in a SIGBUS handler).
 *
 * Slid page P (at or after dense_end): the live objects whose new extent overlaps P are
 * contiguous in to-space and in old-address order:
 *
 *   from-space (old + from_delta):  |..AAAABB...CCCCCCCDD.....EEEE....|
 *   to-space:                  |AAAABBCCCCCCCDDEEEE|
 *                              ^P      (page_first_object[P] = A, possibly starting before P)
 *
 * Walk them from page_first_object[P]: copy each (the part inside P), rewrite its reference
 * slots that lie inside P with forwarded values, step to the next live object (the next
 * object if its first word is live, else the next set bit: one bitmap word and a ctz), stop
 * at the page end. Copying object by object with small fixed-size copies beats one memcpy
 * per run of contiguous live objects: runs are short in a fragmented heap, and the objects
 * must be visited anyway for their slots. Slots outside P are left to the page that holds
 * them: an object that straddles pages is fixed piecewise, so building one page never needs
 * another page, never faults on to-space, and reads only from-space, the bitmaps and the plan.
 *
 * Dense page P (before dense_end): objects keep their addresses. Copy the page, make each
 * maximal run of dead words inside P (clear live-words bits) one zero-filled filler, fix the
 * slots of the live objects overlapping P:
 *
 *   live bits:   | 0 0 1 1 1 0  0  1 1 0  0 0|0  0  1 ...|      a dead run crosses the edge
 *   to-space:    | F . L L L F  .  L L F  . .|F  .  L ...|      F filler header, . zero
 *                ^P                           ^P+1
 *
 * A filler ends at the end of its run or at the page end, whichever comes first: a run that
 * goes on into P+1 gets a second filler at P+1's start. So each page depends on its own bits
 * only, never on where an earlier dead object began, and no filler crosses dense_end (it is
 * page aligned) or reaches 2^32 bytes. No dead object's header is read. The live objects
 * are page_first_object[P] if it starts before P (a straddler: its header is read in
 * from-space), then one per start bit inside P.
 *
 * Reference slots are assumed 8-byte aligned (the type registry enforces it), so a slot never
 * straddles two pages (a misaligned one is skipped rather than written past the buffer).
 * Dead objects must have payload sizes whose rounded total fits a filler (payload bytes up
 * to 2^32 - 8). Async-signal-safe: no allocation, no locks, no stdio; a CUSTOM type's trace
 * callback is called, and must itself be signal-safe (the API contract says so). */
#include "compact/compact.h"

#include <string.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))
/* Functions compiled a second time for CPUs with the POPCNT instruction (every x86-64 since
 * about 2009, but not the x86-64 baseline the library is built for). Forwarding costs one
 * popcount per reference; the instruction instead of the bit-twiddling fallback makes the
 * whole page about 25% faster. The choice is made once at load time (below). */
#if defined(__x86_64__) && !defined(__POPCNT__)
#define HW_POPCNT_CLONES 1
#define TARGET_POPCNT __attribute__((target("popcnt")))
#else
#define HW_POPCNT_CLONES 0
#define TARGET_POPCNT
#endif

/* `hw` is a compile-time constant in every caller: 1 only inside TARGET_POPCNT functions,
 * where __builtin_popcountll is the instruction. */
static ALWAYS_INLINE unsigned popcount_for(uint64_t x, int hw) {
  return hw ? (unsigned)__builtin_popcountll(x) : ugc_compact_popcount64(x);
}

static inline uintptr_t min_addr(uintptr_t a, uintptr_t b) {
  return a < b ? a : b;
}
static inline uintptr_t max_addr(uintptr_t a, uintptr_t b) {
  return a > b ? a : b;
}

/* Everything slot fixing needs. The forwarding inputs are copied out of the plan: the page
 * buffer is written through uintptr_t pointers, which could alias the plan's uintptr_t
 * fields as far as the compiler knows, so it would reload them after every store. A local
 * copy whose address does not escape stays in registers. */
typedef struct page_window {
  uintptr_t space_base;
  uintptr_t old_span;         /* old_top - space_base */
  uintptr_t dense_span;       /* dense_end - space_base */
  uintptr_t moved_base;       /* dense_end + header: payload address of the first slid word */
  const uint64_t *live_words; /* forward_words: what forwarding reads */
  const uint32_t *chunk_live_before;
  const ugc_type_info *types;
  uintptr_t lo;      /* to-space address of the page being built */
  uintptr_t out_off; /* (uintptr_t)out - lo: the buffer address of to-space address a */
  const ugc_compact_plan *plan;
} page_window;

static inline page_window make_window(const ugc_compact_plan *plan, uintptr_t lo, void *out) {
  page_window w = {plan->space_base,
                   plan->old_top - plan->space_base,
                   plan->dense_end - plan->space_base,
                   plan->dense_end + UGC_HEADER_BYTES,
                   plan->forward_words,
                   plan->chunk_live_before,
                   plan->types->entries,
                   lo,
                   (uintptr_t)out - lo,
                   plan};
  return w;
}

/* Forwarded value of a slot: decoded by the rule, the reference forwarded, re-encoded;
 * the same result as ugc_compact_update_slot, shaped for the inner loop. Values that are not
 * references to slid objects (NULL, immediates, other spaces, the dense prefix) go through
 * the same arithmetic on index 0 (any readable entry would do; its value is discarded) and
 * are selected away at the end: conditional moves instead of a branch that random data would
 * mispredict. */
static ALWAYS_INLINE uintptr_t forward_value(const page_window *w, uintptr_t value,
                                             const ugc_tag_rule *rule, int hw) {
  /* An immediate becomes 0, which is outside the space like any other non-reference. */
  uintptr_t offset = ugc_tag_reference(value, rule) - w->space_base - UGC_HEADER_BYTES;
  int moving = offset < w->old_span && offset >= w->dense_span;
  size_t word_index = moving ? offset >> 3 : 0; /* word 0 exists: old_top > space_base here */
  size_t chunk = word_index >> 6;
  uint64_t below = w->live_words[chunk] & ((UINT64_C(1) << (word_index & 63)) - 1);
  uintptr_t moved =
      w->moved_base + 8u * ((size_t)w->chunk_live_before[chunk] + popcount_for(below, hw));
  return moving ? ugc_tag_rewrite(value, moved, rule) : value;
}

/* Rewrites one slot: the old value comes from from-space, the forwarded value goes to the
 * slot's place in the buffer. Unconditional store (the buffer holds the old value already). */
static ALWAYS_INLINE void fix_slot(const page_window *w, uintptr_t new_slot, uintptr_t from_slot,
                                   const ugc_tag_rule *rule, int hw) {
  *(uintptr_t *)(new_slot + w->out_off) = forward_value(w, *(const uintptr_t *)from_slot, rule, hw);
}

static inline int in_window(const page_window *w, uintptr_t new_slot) {
  return new_slot - w->lo <= UGC_PAGE_SIZE - 8;
}

/* For CUSTOM layouts: the embedder's trace callback reports slots of the from-space copy. */
typedef struct window_tracer {
  ugc_tracer base;
  const page_window *window;
  uintptr_t shift; /* new slot address = from-space slot address + shift (mod 2^64) */
} window_tracer;

static void window_visit(ugc_tracer *tracer, void *slot, const ugc_tag_rule *rule) {
  window_tracer *self = (window_tracer *)tracer;
  uintptr_t new_slot = (uintptr_t)slot + self->shift;
  if (in_window(self->window, new_slot))
    fix_slot(self->window, new_slot, (uintptr_t)slot, rule, 0);
}

/* Fixes the slots inside the page of one live object: header value `header`, header at
 * from-space address `from_hdr`, to-space address `new_hdr`. */
static ALWAYS_INLINE void fix_object_body(const page_window *window, uint64_t header,
                                          uintptr_t from_hdr, uintptr_t new_hdr, int hw) {
  page_window local = *window, *w = &local;
  const ugc_type_info *type = &w->types[ugc_header_type(header)];
  uintptr_t from_payload = from_hdr + UGC_HEADER_BYTES;
  uintptr_t new_payload = new_hdr + UGC_HEADER_BYTES;
  switch (type->layout) {
  case UGC_LAYOUT_LEAF:
    return;
  case UGC_LAYOUT_FIXED:
  case UGC_LAYOUT_REF_ARRAY:
    for (uint32_t i = 0; i < type->ref_count; i++) {
      uintptr_t offset = type->ref_offsets[i];
      if (in_window(w, new_payload + offset))
        fix_slot(w, new_payload + offset, from_payload + offset, &type->tags, hw);
    }
    if (type->layout == UGC_LAYOUT_REF_ARRAY) {
      /* The slots of ugc_object_visit (offsets fixed_size + 8k while 8 more bytes fit the
       * payload), but only the index range inside the page: an array straddling many pages
       * costs each page its own slots only. */
      size_t payload = ugc_header_payload(header), fixed = type->fixed_size;
      if (payload < fixed + 8)
        return;
      size_t count = (payload - fixed) / 8;
      uintptr_t array = new_payload + fixed, hi = w->lo + UGC_PAGE_SIZE;
      if (array >= hi)
        return;
      size_t first = array >= w->lo ? 0 : (w->lo - array + 7) / 8;
      size_t end = min_addr((hi - array + 7) / 8, count);
      uintptr_t from_array = from_payload + fixed;
      ugc_tag_rule rule = type->tags;
      if (first < end && in_window(w, array + 8 * first) && in_window(w, array + 8 * (end - 1))) {
        for (size_t k = first; k < end; k++)
          fix_slot(w, array + 8 * k, from_array + 8 * k, &rule, hw);
      } else { /* only with a misaligned fixed_size: a slot would straddle the page edge */
        for (size_t k = first; k < end; k++)
          if (in_window(w, array + 8 * k))
            fix_slot(w, array + 8 * k, from_array + 8 * k, &rule, hw);
      }
    }
    return;
  case UGC_LAYOUT_CUSTOM: {
    window_tracer tracer = {{window_visit}, window, new_payload - from_payload};
    ugc_object_visit(window->plan->types, header, (void *)from_payload, &tracer.base);
    return;
  }
  }
}

static __attribute__((noinline)) void fix_object_sw(const page_window *w, uint64_t header,
                                                    uintptr_t from_hdr, uintptr_t new_hdr) {
  fix_object_body(w, header, from_hdr, new_hdr, 0);
}

static TARGET_POPCNT __attribute__((noinline)) void
fix_object_hw(const page_window *w, uint64_t header, uintptr_t from_hdr, uintptr_t new_hdr) {
  fix_object_body(w, header, from_hdr, new_hdr, HW_POPCNT_CLONES);
}

static ALWAYS_INLINE void fix_object(const page_window *w, uint64_t header, uintptr_t from_hdr,
                                     uintptr_t new_hdr, int hw) {
  if (hw)
    fix_object_hw(w, header, from_hdr, new_hdr);
  else
    fix_object_sw(w, header, from_hdr, new_hdr);
}

/* Reference slots of the page whose forwarding waits until every object is copied: the
 * forwarding entries of the targets (live-words bitmap word, chunk_live_before) are random
 * reads over tables of 1/64 and 1/128 of the heap, cold at large heaps; fixing each slot as
 * its object lands waited for those misses one at a time. Recorded instead (the slot's word
 * index in the page; its old value is in the buffer already), the entries prefetched, then
 * all fixed at the end, the misses overlap (3x faster pages on a heap of pairs pointing
 * anywhere). Untagged slots of FIXED objects that lie wholly in the page, the common case,
 * pointing far from their object; the rest are fixed at once. */
typedef struct deferred_slots {
  unsigned count;
  uint16_t word[UGC_PAGE_SIZE / 8];
} deferred_slots;

/* Targets within this distance of the object referring to them have their forwarding
 * entries within 16 KiB of the bitmap and 8 KiB of the table the build reads anyway: likely
 * cached, fixed at once (deferring them only added work: 18% on a heap of nearby pairs). */
#define NEAR_TARGET_BYTES ((uintptr_t)1 << 20)

static ALWAYS_INLINE void defer_slot(const page_window *w, deferred_slots *d, uintptr_t new_slot,
                                     uintptr_t old_object, int hw) {
  unsigned index = (unsigned)((new_slot - w->lo) >> 3);
  uintptr_t *slot = (uintptr_t *)(w->lo + w->out_off) + index;
  uintptr_t value = *slot;
  if (value - old_object + NEAR_TARGET_BYTES < 2 * NEAR_TARGET_BYTES) {
    *slot = forward_value(w, value, &ugc_untagged_rule, hw);
    return;
  }
  uintptr_t offset = value - w->space_base - UGC_HEADER_BYTES;
  if (offset < w->old_span && offset >= w->dense_span) {
    size_t chunk = offset >> 9;
    __builtin_prefetch(&w->live_words[chunk]);
    __builtin_prefetch(&w->chunk_live_before[chunk]);
  }
  d->word[d->count++] = (uint16_t)index;
}

static ALWAYS_INLINE void fix_deferred(const page_window *w, const deferred_slots *d, int hw) {
  uintptr_t *page = (uintptr_t *)(w->lo + w->out_off);
  for (unsigned i = 0; i < d->count; i++)
    page[d->word[i]] = forward_value(w, page[d->word[i]], &ugc_untagged_rule, hw);
}

/* Fixes the slots of a live object that lies wholly inside the page. The common case, a
 * FIXED layout, is inline (no window checks: every slot is in the page); with `deferred`,
 * its untagged slots wait in there (see deferred_slots). */
static ALWAYS_INLINE void fix_whole_object(const page_window *w, uint64_t header, uintptr_t from,
                                           uintptr_t new, int hw, deferred_slots *deferred,
                                           uintptr_t old) {
  const ugc_type_info *type = &w->types[ugc_header_type(header)];
  if (type->layout == UGC_LAYOUT_FIXED && ugc_header_payload(header) >= type->fixed_size) {
    const uint32_t *offsets = type->ref_offsets;
    ugc_tag_rule rule = type->tags;
    uintptr_t from_payload = from + UGC_HEADER_BYTES;
    uintptr_t new_payload = new + UGC_HEADER_BYTES;
    if (deferred && !rule.tag_mask && !rule.pointer_tag_mask && !rule.reference_offset) {
      for (uint32_t i = 0, n = type->ref_count; i < n; i++)
        defer_slot(w, deferred, new_payload + offsets[i], old, hw);
      return;
    }
    for (uint32_t i = 0, n = type->ref_count; i < n; i++)
      fix_slot(w, new_payload + offsets[i], from_payload + offsets[i], &rule, hw);
  } else if (type->layout != UGC_LAYOUT_LEAF) {
    fix_object(w, header, from, new, hw);
  }
}

/* Page in the dense prefix: new address == old address. `out_is_source`: out is the same
 * memory as the page's from-space copy (at this address, or another view of the same page),
 * so nothing is copied: the dead runs and the slots are rewritten where they are. */
static ALWAYS_INLINE size_t build_dense_page(const ugc_compact_plan *plan, size_t page_index,
                                             uintptr_t lo, intptr_t from_delta, char *out, int hw,
                                             int out_is_source) {
  uintptr_t hi = lo + UGC_PAGE_SIZE;
  uintptr_t limit = min_addr(hi, plan->old_top); /* below hi only for a partial last page */
  const page_window w = make_window(plan, lo, out);
  /* One copy of the whole page (a dense page is mostly live: one streaming copy beats one
   * per live run), then the dead runs are overwritten with fillers. */
  if (!out_is_source)
    memcpy(out, (const void *)(lo + from_delta), limit - lo);
  if (limit < hi)
    memset(out + (limit - lo), 0, hi - limit); /* past old_top == new_top here */

  const uint64_t *live = plan->live_words;
  size_t first_bit = (lo - plan->space_base) >> 3, limit_bit = (limit - plan->space_base) >> 3;
  size_t dead_words = 0;
  for (size_t bit = first_bit;;) {
    size_t dead = ugc_compact_bitmap_next(live, bit, limit_bit, ~UINT64_C(0));
    if (dead >= limit_bit)
      break;
    size_t next_live = ugc_compact_bitmap_next(live, dead + 1, limit_bit, 0);
    uint64_t *filler = (uint64_t *)(out + 8 * (dead - first_bit));
    *filler = ugc_filler_header(8 * (next_live - dead));
    memset(filler + 1, 0, 8 * (next_live - dead - 1));
    dead_words += next_live - dead;
    bit = next_live;
  }

  /* The live objects: a straddler from an earlier page, then one per start bit in the page.
   * The next object's address comes from the bitmap, not from the previous header, so the
   * header loads do not form a dependent chain. */
  uintptr_t first = plan->page_first_object[page_index];
  if (first && first < lo) {
    uint64_t header = ugc_header_load(first + from_delta);
    fix_object(&w, header, first + from_delta, first, hw);
  }
  const uint64_t *starts = plan->start_words;
  for (size_t word = first_bit / 64; word * 64 < limit_bit; word++) { /* first_bit % 64 == 0 */
    uint64_t bits = starts[word];
    if ((word + 1) * 64 > limit_bit) /* a partial last page: stale bits past old_top */
      bits &= (UINT64_C(1) << (limit_bit & 63)) - 1;
    for (; bits; bits &= bits - 1) {
      uintptr_t object = lo + 8 * ((word - first_bit / 64) * 64 + (size_t)__builtin_ctzll(bits));
      uint64_t header = ugc_header_load(object + from_delta);
      if (object + ugc_header_total(header) <= hi)
        fix_whole_object(&w, header, object + from_delta, object, hw, NULL, object);
      else
        fix_object(&w, header, object + from_delta, object, hw);
    }
  }
  return (limit - lo) - 8 * dead_words;
}

/* Copies a live object of `total` bytes (a multiple of 8) to the buffer. Most objects are a
 * few words: when 64 bytes fit both in the page and below old_top, copy exactly 64 (a few
 * vector moves, no loop, no call); bytes copied past the object's end are overwritten by the
 * next object or by the final zero fill. */
static ALWAYS_INLINE void copy_object(uintptr_t dst, uintptr_t src, size_t total, int room_for_64) {
  if (total <= 64 && room_for_64)
    memcpy((void *)dst, (const void *)src, 64);
  else
    memcpy((void *)dst, (const void *)src, total);
}

/* Old address of the first live word at or after `old` (an object boundary below old_top),
 * or an address >= old_top when none is left. One bitmap word usually answers: no loop and
 * no branch on the (random) liveness of the next object. */
static ALWAYS_INLINE uintptr_t next_live_object(const ugc_compact_plan *plan, uintptr_t old) {
  size_t bit = (old - plan->space_base) >> 3;
  uint64_t word = plan->live_words[bit >> 6] >> (bit & 63);
  if (UGC_LIKELY(word != 0))
    return old + 8u * (uintptr_t)__builtin_ctzll(word);
  return ugc_compact_next_live(plan, old, plan->old_top);
}

/* From-space is usually cold: the objects of one to-space page lie scattered over several
 * from-space pages (about four at 25% live), and the build loop reads them one after the
 * other, each read waiting for the header of the one before. Asking for every live cache
 * line of the page's source range first lets the memory system fetch them in parallel. The
 * bitmap says which lines hold live words without touching from-space. */
#define PREFETCH_WINDOW_BYTES ((uintptr_t)32 * 1024)
#define PREFETCH_MAX_LINES 128u

static ALWAYS_INLINE void prefetch_sources(const ugc_compact_plan *plan, size_t page_index,
                                           uintptr_t old, intptr_t from_delta) {
  uintptr_t end = plan->old_top;
  if (page_index + 1 < plan->page_count && plan->page_first_object[page_index + 1])
    end = plan->page_first_object[page_index + 1] + 64;
  end = min_addr(min_addr(end, plan->old_top), old + PREFETCH_WINDOW_BYTES);
  if (end <= old)
    return;
  size_t chunk = (old - plan->space_base) / UGC_CHUNK_BYTES;
  size_t last_chunk = (end - 1 - plan->space_base) / UGC_CHUNK_BYTES;
  uintptr_t from_chunk = plan->space_base + chunk * UGC_CHUNK_BYTES + (uintptr_t)from_delta;
  unsigned budget = PREFETCH_MAX_LINES;
  for (; chunk <= last_chunk && budget; chunk++, from_chunk += UGC_CHUNK_BYTES) {
    uint64_t word = plan->live_words[chunk];
    while (word && budget) {
      unsigned line = (unsigned)__builtin_ctzll(word) >> 3; /* 8 words per 64-byte line */
      __builtin_prefetch((const void *)(from_chunk + line * 64u));
      word &= ~(UINT64_C(0xFF) << (line * 8));
      budget--;
    }
  }
}

/* One zero-filled filler over to-space [from, to) (within a page), written at `out`.
 * Returns 0 (no live bytes). */
static size_t fill_gap(char *out, uintptr_t from, uintptr_t to) {
  *(uint64_t *)out = ugc_filler_header(to - from);
  memset(out + 8, 0, to - from - 8);
  return 0;
}

/* Padding before a whole-page slide (compact.h): one zero-filled filler over [new, end), cut
 * at the page end by the caller. Returns its size. */
static ALWAYS_INLINE size_t write_filler(uintptr_t new, uintptr_t end, uintptr_t out_off) {
  uint64_t *filler = (uint64_t *)(new + out_off);
  *filler = ugc_filler_header(end - new);
  memset(filler + 1, 0, end - new - 8);
  return end - new;
}

/* Page at or after dense_end: live objects packed in old-address order, copied one by one
 * (the part inside the page), their slots inside the page fixed as they land. */
static ALWAYS_INLINE size_t build_slid_page(const ugc_compact_plan *plan, size_t page_index,
                                            uintptr_t lo, intptr_t from_delta, char *out, int hw) {
  const uintptr_t hi = lo + UGC_PAGE_SIZE, old_top = plan->old_top;
  const page_window w = make_window(plan, lo, out);
  deferred_slots deferred;
  deferred.count = 0;
  uintptr_t old = plan->page_first_object[page_index];
  /* The objects packed into this page come before the next fixed range, if any. */
  const uintptr_t bound = plan->fixed_count ? ugc_compact_next_fixed(plan, hi) : old_top;
  if (old >= bound) /* between packed data and a fixed range: a filler page */
    return fill_gap(out, lo, hi);
  uintptr_t new = ugc_compact_forward_header(plan, old);
  const bool padded = plan->pad_bytes != 0;
  size_t padding = 0;
  prefetch_sources(plan, page_index, old, from_delta);
  if (__builtin_expect(new > lo, 0)) /* the page starts in the padding of a whole slide */
    padding += write_filler(lo, new, w.out_off);

  if (new < lo) { /* the first object straddles into the page from an earlier one */
    uint64_t header = ugc_header_load(old + from_delta);
    uintptr_t end = new + ugc_header_total(header);
    memcpy(out, (const void *)(old + from_delta + (lo - new)), min_addr(end, hi) - lo);
    fix_object(&w, header, old + from_delta, new, hw);
    if (end >= hi)
      return UGC_PAGE_SIZE; /* nothing deferred yet */
    old += end - new;
    new = end;
    if (old < old_top)
      old = next_live_object(plan, old);
    if (padded && old < bound) {
      uintptr_t landing = ugc_compact_forward_header(plan, old);
      if (landing != new) {
        padding += write_filler(new, min_addr(landing, hi), w.out_off);
        new = landing;
        if (new >= hi)
          return UGC_PAGE_SIZE - padding;
      }
    }
  }
  while (old < bound) {
    uintptr_t from = old + from_delta;
    uint64_t header = ugc_header_load(from);
    uintptr_t total = ugc_header_total(header);
    if (UGC_LIKELY(new + total <= hi)) {
      copy_object(new + w.out_off, from, total, new + 64 <= hi &&old + 64 <= old_top);
      fix_whole_object(&w, header, from, new, hw, &deferred, old);
    } else { /* straddles into the next page: the part in this one */
      memcpy((void *)(new + w.out_off), (const void *)from, hi - new);
      fix_object(&w, header, from, new, hw);
    }
    new += total;
    if (new >= hi) {
      fix_deferred(&w, &deferred, hw);
      return UGC_PAGE_SIZE - padding;
    }
    old += total;
    if (old < old_top)
      old = next_live_object(plan, old);
    if (padded && old < bound) {
      uintptr_t landing = ugc_compact_forward_header(plan, old);
      if (landing != new) { /* padding before a whole slide */
        padding += write_filler(new, min_addr(landing, hi), w.out_off);
        new = landing;
        if (new >= hi) {
          fix_deferred(&w, &deferred, hw);
          return UGC_PAGE_SIZE - padding;
        }
      }
    }
  }
  /* The last page: the rest lies past new_top; or a fixed range follows: a filler. */
  uintptr_t stop = max_addr(new, lo);
  if (bound < old_top)
    fill_gap((char *)(stop + w.out_off), stop, hi);
  else
    memset((void *)(stop + w.out_off), 0, hi - stop);
  fix_deferred(&w, &deferred, hw);
  return stop - lo - padding;
}

static ALWAYS_INLINE size_t build_page_body(const ugc_compact_plan *plan, size_t page_index,
                                            intptr_t from_delta, void *out, int hw) {
  if (page_index >= plan->page_count) {
    memset(out, 0, UGC_PAGE_SIZE);
    return 0;
  }
  uintptr_t lo = plan->space_base + page_index * UGC_PAGE_SIZE;
  if (lo < plan->dense_end || (plan->fixed_count && ugc_compact_fixed_at(plan, lo)))
    return build_dense_page(plan, page_index, lo, from_delta, (char *)out, hw,
                            (uintptr_t)out == lo + (uintptr_t)from_delta);
  return build_slid_page(plan, page_index, lo, from_delta, (char *)out, hw);
}

static size_t build_page_sw(const ugc_compact_plan *plan, size_t page_index, intptr_t from_delta,
                            void *out) {
  return build_page_body(plan, page_index, from_delta, out, 0);
}

static TARGET_POPCNT size_t build_page_hw(const ugc_compact_plan *plan, size_t page_index,
                                          intptr_t from_delta, void *out) {
  return build_page_body(plan, page_index, from_delta, out, HW_POPCNT_CLONES);
}

/* A dense page whose build place is its own from-space page seen through another view. */
static ALWAYS_INLINE size_t update_page_body(const ugc_compact_plan *plan, size_t page_index,
                                             intptr_t from_delta, void *out, int hw) {
  uintptr_t lo = plan->space_base + page_index * UGC_PAGE_SIZE;
  return build_dense_page(plan, page_index, lo, from_delta, (char *)out, hw, 1);
}

static size_t update_page_sw(const ugc_compact_plan *plan, size_t page_index, intptr_t from_delta,
                             void *out) {
  return update_page_body(plan, page_index, from_delta, out, 0);
}

static TARGET_POPCNT size_t update_page_hw(const ugc_compact_plan *plan, size_t page_index,
                                           intptr_t from_delta, void *out) {
  return update_page_body(plan, page_index, from_delta, out, HW_POPCNT_CLONES);
}

static int cpu_has_popcnt(void) {
#if HW_POPCNT_CLONES
  __builtin_cpu_init();
  return __builtin_cpu_supports("popcnt");
#else
  return 0;
#endif
}

/* Set once at load time; the page builder (maybe in a signal handler) only reads it. */
static int use_hw_popcnt;

__attribute__((constructor)) static void detect_popcnt(void) {
  use_hw_popcnt = cpu_has_popcnt();
}

int ugc_compact_select_popcnt(int enable) {
  int previous = use_hw_popcnt;
  use_hw_popcnt = enable && cpu_has_popcnt();
  return previous;
}

size_t ugc_compact_build_page(const ugc_compact_plan *plan, size_t page_index, intptr_t from_delta,
                              void *out) {
  if (use_hw_popcnt)
    return build_page_hw(plan, page_index, from_delta, out);
  return build_page_sw(plan, page_index, from_delta, out);
}

size_t ugc_compact_update_page_in_place(const ugc_compact_plan *plan, size_t page_index,
                                        intptr_t from_delta, void *out) {
  if (use_hw_popcnt)
    return update_page_hw(plan, page_index, from_delta, out);
  return update_page_sw(plan, page_index, from_delta, out);
}
