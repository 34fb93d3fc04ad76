/* Synthetic moving spaces for the compaction tests (included by tests/unit/test_compact_*.c).
 *
 * A heap is an mmap'ed region filled with objects of five types plus pre-existing fillers,
 * a random live subset (references only from live objects to live objects, NULL, tagged
 * immediates, or addresses outside [space_base, old_top)), its live-words and object-start
 * bitmaps (synth_mark_live sets both, as marking does; half the heaps get stale bits past
 * old_top, as a real bitmap keeps from an earlier, larger cycle), and the expected outcome
 * computed the slow, obvious way (per-object overlaps, running cursor), so the plan and the
 * page builder are checked against an independent model. */
#ifndef TEST_COMPACT_HEAP_H
#define TEST_COMPACT_HEAP_H

#include <string.h>
#include <sys/mman.h>

#include "compact/compact.h"
#include "test.h"

enum { T_FILLER = 0, T_LEAF, T_PAIR, T_ARRAY, T_TAGGED, T_CUSTOM, T_COUNT };

static uint64_t rng_next(uint64_t *state) { /* splitmix64 */
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static size_t rng_below(uint64_t *state, size_t n) {
  return n ? rng_next(state) % n : 0;
}
static double rng_unit(uint64_t *state) {
  return (double)(rng_next(state) >> 11) / 9007199254740992.0;
}

/* CUSTOM layout: payload word 0 = n, words 1..n are untagged references, the rest data. */
static void custom_trace(void *obj, size_t payload_bytes, ugc_tracer *tracer) {
  uint64_t *words = obj;
  for (uint64_t i = 1; i <= words[0] && 8 * (i + 1) <= payload_bytes; i++)
    tracer->visit(tracer, &words[i], &ugc_untagged_rule);
}

static uint32_t pair_offsets[] = {0, 16};
static uint32_t array_offsets[] = {8};
static uint32_t tagged_offsets[] = {0, 8};
static ugc_type_info type_entries[T_COUNT];
static ugc_type_table test_types;

static const ugc_type_table *test_type_table(void) {
  memset(type_entries, 0, sizeof type_entries);
  type_entries[T_FILLER] = (ugc_type_info){.name = "filler", .layout = UGC_LAYOUT_LEAF};
  type_entries[T_LEAF] = (ugc_type_info){.name = "leaf", .layout = UGC_LAYOUT_LEAF};
  type_entries[T_PAIR] = (ugc_type_info){.name = "pair",
                                         .layout = UGC_LAYOUT_FIXED,
                                         .ref_count = 2,
                                         .fixed_size = 24,
                                         .ref_offsets = pair_offsets};
  type_entries[T_ARRAY] = (ugc_type_info){.name = "array",
                                          .layout = UGC_LAYOUT_REF_ARRAY,
                                          .ref_count = 1,
                                          .fixed_size = 16,
                                          .ref_offsets = array_offsets};
  type_entries[T_TAGGED] = (ugc_type_info){.name = "tagged",
                                           .layout = UGC_LAYOUT_FIXED,
                                           .ref_count = 2,
                                           .fixed_size = 16,
                                           .tags = {.tag_mask = 7},
                                           .ref_offsets = tagged_offsets};
  type_entries[T_CUSTOM] =
      (ugc_type_info){.name = "custom", .layout = UGC_LAYOUT_CUSTOM, .trace = custom_trace};
  test_types.entries = type_entries;
  atomic_store(&test_types.count, T_COUNT);
  return &test_types;
}

typedef struct synth_obj {
  uintptr_t hdr, new_hdr; /* new_hdr: expected address after compaction (live only) */
  uint32_t total;
  uint8_t type, live;
} synth_obj;

typedef struct synth_params {
  size_t heap_bytes;  /* objects fill about this much */
  double live_prob;   /* chance that an object is live ... */
  size_t dense_bytes; /* ... except in the first dense_bytes, where it is dense_prob */
  double dense_prob;
  double threshold; /* plan.dense_threshold */
  int shape;        /* SHAPE_* */
  int local_refs;   /* see synth_heap */
  double pin_prob;  /* chance that an object is pinned (plan.pinned) */
  int whole;        /* plan.whole_slides */
  int kept_padding; /* padding from a previous cycle on random pages (plan.kept_pad_words) */
  int untouched;    /* plan.leave_untouched */
} synth_params;

enum { SHAPE_MIXED, SHAPE_PAIRS, SHAPE_LEAVES, SHAPE_GIANT, SHAPE_COLD, SHAPE_STRINGS };

typedef struct synth_heap {
  char *space, *from; /* the moving space and the from-space copy */
  size_t space_bytes;
  intptr_t delta; /* from - space */
  uintptr_t base, old_top;
  uint64_t *bitmap; /* live words */
  uint64_t *starts; /* object starts */
  synth_obj *objs;
  size_t count, cap;
  /* expected outcome */
  uintptr_t dense_end, new_top;
  size_t live_bytes;
  uintptr_t fixed_limit; /* end of the model's last fixed range (dead space allowed below) */
  uintptr_t *pins;       /* pinned headers, ascending */
  size_t pin_count;
  uintptr_t (*model_fixed)[2]; /* the model's fixed ranges [start, end) */
  size_t model_fixed_count;
  ugc_compact_plan plan;
  int local_refs;  /* references mostly to objects allocated nearby (realistic locality) */
  size_t live_pos; /* while filling: live objects before the current one */
  /* expected whole-page slides (whole heaps only) */
  int whole;
  uint32_t *whole_from; /* per to-space page, as plan.page_whole_from */
  size_t whole_pages, pad_bytes;
  /* padding per page: kept from a previous cycle (input), expected after this one */
  uint16_t *kept_pad, *pad_words;
  size_t kept_pages;
} synth_heap;

static uint64_t outside_target[4]; /* a "non-moving" object referenced from the heap */

static void synth_add(synth_heap *h, uintptr_t hdr, uint8_t type, size_t payload, int live) {
  if (h->count == h->cap) {
    h->cap = h->cap ? 2 * h->cap : 1024;
    h->objs = realloc(h->objs, h->cap * sizeof *h->objs);
    REQUIRE(h->objs);
  }
  *(uint64_t *)hdr = ugc_header_make(type, payload);
  h->objs[h->count++] = (synth_obj){hdr, 0, (uint32_t)ugc_alloc_size(payload), type, (uint8_t)live};
}

/* Picks a type and payload size for the next object. */
static void synth_pick(uint64_t *rng, int shape, uint8_t *type, size_t *payload) {
  size_t r = rng_below(rng, 100);
  if (shape == SHAPE_PAIRS) {
    *type = T_PAIR;
    *payload = 24;
    return;
  }
  if (shape == SHAPE_LEAVES) {
    *type = T_LEAF;
    *payload = rng_below(rng, 48);
    return;
  }
  if (shape == SHAPE_STRINGS) { /* large strings, one pair in about 400 objects */
    int pair = rng_below(rng, 400) == 0;
    *type = pair ? T_PAIR : T_LEAF;
    *payload = pair ? 24 : 2000 + rng_below(rng, 14000);
    return;
  }
  if (shape == SHAPE_COLD) { /* large strings, small garbage and a few pairs in between */
    *type = r < 5 ? T_PAIR : T_LEAF;
    *payload = r < 5 ? 24 : r < 45 ? 8 * rng_below(rng, 100) : 2000 + rng_below(rng, 14000);
    return;
  }
  if (r < 5) {
    *type = T_FILLER;
    *payload = 8 * rng_below(rng, 8);
  } else if (r < 25) {
    *type = T_LEAF;
    *payload = rng_below(rng, 5) ? rng_below(rng, 100) : 0;
  } else if (r < 50) {
    *type = T_PAIR;
    *payload = 24;
  } else if (r < 65) {
    *type = T_ARRAY;
    *payload = 16 + 8 * rng_below(rng, 40) + rng_below(rng, 8);
  } else if (r < 80) {
    *type = T_TAGGED;
    *payload = 16;
  } else if (r < 95) {
    *type = T_CUSTOM;
    *payload = 8 + 8 * rng_below(rng, 12);
  } else if (r < 98) {
    *type = T_ARRAY;
    *payload = 16 + 8 * (500 + rng_below(rng, 3000));
  } else {
    *type = T_LEAF;
    *payload = 4000 + rng_below(rng, 20000);
  }
}

/* A reference value a live object may hold. */
static uintptr_t synth_ref(synth_heap *h, uint64_t *rng, const size_t *live_idx, size_t nlive) {
  size_t r = rng_below(rng, 20);
  if (h->local_refs && r >= 3 && nlive) { /* a live object allocated nearby */
    size_t at = h->live_pos + rng_below(rng, 128);
    at = at < 64 ? 0 : at - 64;
    return h->objs[live_idx[at < nlive ? at : nlive - 1]].hdr + UGC_HEADER_BYTES;
  }
  if (r == 0 || nlive == 0)
    return 0;
  if (r == 1)
    return (uintptr_t)&outside_target[1];
  if (r == 2) /* inside the mapping but past old_top: not an object, left alone */
    return h->base + h->space_bytes - 64;
  return h->objs[live_idx[rng_below(rng, nlive)]].hdr + UGC_HEADER_BYTES;
}

/* Writes every reference slot of object i (payload at its old address). */
static void synth_fill_refs(synth_heap *h, uint64_t *rng, size_t i, const size_t *live_idx,
                            size_t nlive) {
  synth_obj *o = &h->objs[i];
  uint64_t *p = (uint64_t *)(o->hdr + 8);
  size_t words = (o->total - 8) / 8, payload = ugc_header_payload(*(uint64_t *)o->hdr);
  for (size_t k = 0; k < words; k++) /* data: recognisable garbage */
    p[k] = rng_next(rng) | 1;
  switch (o->type) {
  case T_FILLER:
    memset(p, 0, words * 8);
    break;
  case T_PAIR:
    p[0] = synth_ref(h, rng, live_idx, nlive);
    p[2] = synth_ref(h, rng, live_idx, nlive);
    break;
  case T_ARRAY:
    p[1] = synth_ref(h, rng, live_idx, nlive);
    for (size_t k = 2; 8 * (k + 1) <= payload; k++)
      p[k] = synth_ref(h, rng, live_idx, nlive);
    break;
  case T_TAGGED:
    for (int k = 0; k < 2; k++) {
      uintptr_t tag = rng_below(rng, 8);
      p[k] = rng_below(rng, 4) ? synth_ref(h, rng, live_idx, nlive) | tag
                               : ((uintptr_t)rng_below(rng, 1000) << 3) | 1; /* immediate */
    }
    break;
  case T_CUSTOM:
    p[0] = rng_below(rng, words);
    for (size_t k = 1; k <= p[0]; k++)
      p[k] = synth_ref(h, rng, live_idx, nlive);
    break;
  }
}

/* Marks a live object as marking does: every word's live bit, the header word's start bit. */
static void synth_mark_live(synth_heap *h, const synth_obj *o) {
  size_t bit = (o->hdr - h->base) / 8;
  h->starts[bit / 64] |= UINT64_C(1) << (bit % 64);
  for (uintptr_t a = o->hdr; a < o->hdr + o->total; a += 8, bit++)
    h->bitmap[bit / 64] |= UINT64_C(1) << (bit % 64);
}

/* The live object that overlaps old address `a` without starting there, or NULL. */
static const synth_obj *synth_straddler(const synth_heap *h, uintptr_t a) {
  for (size_t i = 0; i < h->count; i++) {
    const synth_obj *o = &h->objs[i];
    if (o->live && o->hdr < a && o->hdr + o->total > a)
      return o;
  }
  return NULL;
}

/* Naive fixed ranges from the object list: per live pinned object past dense_end, its pages,
 * widened down while a live object crosses the first page's start (to dense_end if that
 * object started in the dense prefix), cut at old_top's page, merged when they touch. */
static void synth_expect_fixed(synth_heap *h) {
  h->model_fixed_count = 0;
  uintptr_t top_page = ((h->old_top - h->base + 4095) & ~(uintptr_t)4095) + h->base;
  for (size_t p = 0; p < h->pin_count; p++) {
    const synth_obj *o = NULL;
    for (size_t i = 0; i < h->count; i++)
      if (h->objs[i].hdr == h->pins[p])
        o = &h->objs[i];
    if (!o || !o->live || o->hdr < h->dense_end)
      continue;
    uintptr_t start = o->hdr & ~(uintptr_t)4095;
    const synth_obj *s;
    while (start > h->dense_end && (s = synth_straddler(h, start)) != NULL)
      start = s->hdr < h->dense_end ? h->dense_end : s->hdr & ~(uintptr_t)4095;
    if (start < h->dense_end)
      start = h->dense_end;
    uintptr_t end = (o->hdr + o->total + 4095) & ~(uintptr_t)4095;
    end = end < top_page ? end : top_page;
    size_t n = h->model_fixed_count;
    if (n && start <= h->model_fixed[n - 1][1]) {
      if (end > h->model_fixed[n - 1][1])
        h->model_fixed[n - 1][1] = end;
      continue;
    }
    h->model_fixed[n][0] = start;
    h->model_fixed[n][1] = end;
    h->model_fixed_count++;
  }
}

/* Whether to-space page `start` is kept in place (dense prefix or a model fixed range). */
static inline int synth_in_place(const synth_heap *h, uintptr_t start) {
  if (start < h->dense_end)
    return 1;
  for (size_t r = 0; r < h->model_fixed_count; r++)
    if (start >= h->model_fixed[r][0] && start < h->model_fixed[r][1])
      return 1;
  return 0;
}

/* Live bytes per page (pages + 1 entries), from object overlaps. */
static size_t *synth_page_live(synth_heap *h, size_t pages) {
  size_t *page_live = calloc(pages + 1, sizeof *page_live);
  REQUIRE(page_live);
  h->live_bytes = 0;
  for (size_t i = 0; i < h->count; i++) {
    synth_obj *o = &h->objs[i];
    if (!o->live)
      continue;
    h->live_bytes += o->total;
    for (uintptr_t a = o->hdr; a < o->hdr + o->total;) {
      uintptr_t page_end = (a & ~(uintptr_t)4095) + 4096;
      uintptr_t stop = page_end < o->hdr + o->total ? page_end : o->hdr + o->total;
      page_live[(a - h->base) / 4096] += stop - a;
      a = stop;
    }
  }
  return page_live;
}

typedef struct synth_pads {
  uintptr_t at[512], new_at[512]; /* boundary (old address), where the padding lands */
  size_t bytes[512], count;
} synth_pads;

/* Places every live object: the dense prefix and the model's fixed ranges in place, the rest
 * packed between them, with the padding in `pads` (may be NULL; each before the first live
 * object at or after its boundary, at new_at); returns the cursor at the end. */
static uintptr_t synth_place(synth_heap *h, synth_pads *pads) {
  uintptr_t cursor = h->dense_end;
  size_t k = 0, r = 0;
  for (size_t i = 0; i < h->count; i++) {
    synth_obj *o = &h->objs[i];
    if (!o->live)
      continue;
    while (r < h->model_fixed_count && o->hdr >= h->model_fixed[r][1]) {
      /* after a range: packing resumes at its end (or past an object running out of it) */
      uintptr_t end = h->model_fixed[r][1] < h->old_top ? h->model_fixed[r][1] : h->old_top;
      cursor = cursor > end ? cursor : end;
      r++;
    }
    int fixed = r < h->model_fixed_count && o->hdr >= h->model_fixed[r][0];
    if (o->hdr < h->dense_end || fixed) {
      o->new_hdr = o->hdr;
      if (o->hdr + o->total > cursor)
        cursor = o->hdr + o->total; /* live object straddling dense_end or a range end */
      continue;
    }
    while (pads && k < pads->count && pads->at[k] <= o->hdr) {
      pads->new_at[k] = cursor;
      cursor += pads->bytes[k++];
    }
    o->new_hdr = cursor;
    cursor += o->total;
  }
  for (; r < h->model_fixed_count; r++) {
    uintptr_t end = h->model_fixed[r][1] < h->old_top ? h->model_fixed[r][1] : h->old_top;
    cursor = cursor > end ? cursor : end;
  }
  return cursor;
}

/* Naive model: a page is dense when its live bytes and kept padding reach the threshold,
 * then a running cursor. Padding: dense pages keep theirs, slid pages hold none (no whole
 * slides) or what synth_expect_whole places. */
static void synth_expect(synth_heap *h, double threshold) {
  size_t pages = (h->old_top - h->base + 4095) / 4096;
  size_t *page_live = synth_page_live(h, pages);
  size_t dense = 0;
  while (dense < pages &&
         (double)(page_live[dense] + 8 * (dense < h->kept_pages ? h->kept_pad[dense] : 0)) /
                 4096.0 >=
             threshold)
    dense++;
  free(page_live);
  h->pad_words = calloc(pages + 2, sizeof *h->pad_words);
  REQUIRE(h->pad_words);
  for (size_t page = 0; page < dense && page < h->kept_pages; page++)
    h->pad_words[page] = h->kept_pad[page];
  h->dense_end = h->base + 4096 * dense;
  synth_expect_fixed(h);
  for (size_t r = 0; r < h->model_fixed_count; r++) /* kept in place with their padding */
    for (uintptr_t a = h->model_fixed[r][0]; a < h->model_fixed[r][1]; a += 4096)
      if ((a - h->base) / 4096 < h->kept_pages)
        h->pad_words[(a - h->base) / 4096] = h->kept_pad[(a - h->base) / 4096];
  uintptr_t cursor = synth_place(h, NULL);
  h->fixed_limit = h->model_fixed_count ? h->model_fixed[h->model_fixed_count - 1][1] : 0;
  h->new_top = h->dense_end > h->old_top ? h->old_top : cursor;
}

/* Naive whole-page slides (compact.h), from object extents: candidate pages (every byte
 * live, every object on them a leaf), maximal runs, trimmed at the end, the padding boundary
 * and size found by walking the objects with the padding placed so far. */
static size_t synth_containing(const synth_heap *h, uintptr_t a) {
  for (size_t i = 0; i < h->count; i++)
    if (h->objs[i].live && h->objs[i].hdr <= a && a < h->objs[i].hdr + h->objs[i].total)
      return i;
  return SIZE_MAX;
}

static int synth_crossed(const synth_heap *h, uintptr_t boundary) {
  size_t i = synth_containing(h, boundary);
  return i != SIZE_MAX && h->objs[i].hdr < boundary;
}

static void synth_expect_whole(synth_heap *h) {
  size_t dense_pages = (h->dense_end - h->base) / 4096;
  size_t full_pages = (h->old_top - h->base) / 4096;
  h->whole_from = calloc(full_pages + 2, sizeof *h->whole_from);
  synth_pads *pads = calloc(1, sizeof *pads);
  int *candidate = calloc(full_pages + 1, sizeof *candidate);
  REQUIRE(h->whole_from && pads && candidate);
  for (size_t page = dense_pages; page < full_pages; page++) {
    uintptr_t lo = h->base + 4096 * page, hi = lo + 4096;
    size_t live = 0;
    int leaf = 1;
    for (size_t i = 0; i < h->count; i++) {
      const synth_obj *o = &h->objs[i];
      if (!o->live || o->hdr >= hi || o->hdr + o->total <= lo)
        continue;
      leaf &= o->type == T_LEAF;
      live += (o->hdr + o->total < hi ? o->hdr + o->total : hi) - (o->hdr > lo ? o->hdr : lo);
    }
    candidate[page] = live == 4096 && leaf && !synth_in_place(h, lo);
  }
  uintptr_t free_at = h->dense_end;
  for (size_t page = dense_pages; page < full_pages;) {
    if (!candidate[page]) {
      page++;
      continue;
    }
    size_t first = page, end = page;
    while (end < full_pages && candidate[end])
      end++;
    page = end;
    uintptr_t first_at = h->base + 4096 * first;
    for (size_t r = 0; r < h->model_fixed_count; r++) /* no padding reaches into a range */
      if (h->model_fixed[r][1] <= first_at && h->model_fixed[r][1] > free_at)
        free_at = h->model_fixed[r][1];
    while (end > first && h->base + 4096 * end < h->old_top &&
           synth_crossed(h, h->base + 4096 * end)) {
      uintptr_t header = h->objs[synth_containing(h, h->base + 4096 * end)].hdr;
      if (header < first_at)
        break;
      end = (header - h->base) / 4096;
    }
    if (end <= first)
      continue;
    size_t head = synth_containing(h, first_at);
    uintptr_t head_at = h->objs[head].hdr;
    if (head_at < h->dense_end)
      continue;
    uintptr_t boundary = head_at & ~(uintptr_t)511, low = free_at;
    if (boundary >= h->base + 64 * 512 && boundary - 64 * 512 > low)
      low = boundary - 64 * 512;
    if (boundary < low)
      continue;
    while (synth_crossed(h, boundary) && boundary > low)
      boundary -= 512;
    if (synth_crossed(h, boundary))
      continue;
    synth_place(h, pads);
    uintptr_t head_new = h->objs[head].new_hdr;
    size_t pad = (head_at - head_new) & 4095;
    if (pad > (end - first) * 1024)
      continue;
    REQUIRE(pads->count < 512);
    pads->at[pads->count] = boundary;
    pads->bytes[pads->count++] = pad;
    h->pad_bytes += pad;
    free_at = h->base + 4096 * end;
    size_t new_page = (head_new + pad + (first_at - head_at) - h->base) / 4096;
    for (size_t i = first; i < end; i++)
      h->whole_from[new_page + i - first] = (uint32_t)(i + 1);
    h->whole_pages += end - first;
  }
  uintptr_t top = synth_place(h, pads);
  h->new_top = h->dense_end > h->old_top ? h->old_top : top;
  for (size_t k = 0; k < pads->count; k++)
    for (uintptr_t a = pads->new_at[k]; a < pads->new_at[k] + pads->bytes[k]; a += 8)
      h->pad_words[(a - h->base) / 4096]++;
  free(pads);
  free(candidate);
}

/* Builds a heap: objects, liveness, references, bitmap, from-space copy, expected outcome,
 * and a computed plan. */
static inline void synth_build(synth_heap *h, const synth_params *params, uint64_t seed) {
  uint64_t rng = seed * 0x2545F4914F6CDD1Dull + 1;
  memset(h, 0, sizeof *h);
  h->space_bytes = ((params->heap_bytes + 4095) & ~(size_t)4095) + 8192;
  h->space = mmap(NULL, h->space_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  h->from = mmap(NULL, h->space_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(h->space != MAP_FAILED && h->from != MAP_FAILED);
  h->base = (uintptr_t)h->space;
  h->delta = h->from - h->space;
  uintptr_t cursor = h->base, limit = h->base + params->heap_bytes;
  while (cursor < limit) {
    uint8_t type;
    size_t payload;
    int giant = params->shape == SHAPE_GIANT && h->count == 1;
    if (giant) {
      type = T_ARRAY; /* one array spanning most of the heap */
      payload = 16 + 8 * ((limit - cursor) / 8 / 2);
    } else {
      synth_pick(&rng, params->shape, &type, &payload);
    }
    if (cursor + ugc_alloc_size(payload) > limit)
      break;
    int live =
        giant || (type != T_FILLER &&
                  rng_unit(&rng) < (cursor - h->base < params->dense_bytes ? params->dense_prob
                                                                           : params->live_prob));
    synth_add(h, cursor, type, payload, live);
    cursor += ugc_alloc_size(payload);
    size_t to_page = (4096 - (cursor & 4095)) & 4095;
    if (params->shape == SHAPE_MIXED && to_page >= 8 && rng_below(&rng, 30) == 0 &&
        cursor + to_page <= limit) { /* next object exactly at a page boundary */
      synth_add(h, cursor, T_FILLER, to_page - 8, 0);
      cursor += to_page;
    }
  }
  h->old_top = cursor;
  if (params->pin_prob > 0) {
    h->pins = malloc((h->count + 1) * sizeof *h->pins);
    h->model_fixed = malloc((h->count + 1) * sizeof *h->model_fixed);
    REQUIRE(h->pins && h->model_fixed);
    for (size_t i = 0; i < h->count; i++)
      if (rng_unit(&rng) < params->pin_prob)
        h->pins[h->pin_count++] = h->objs[i].hdr;
  }
  size_t *live_idx = malloc((h->count + 1) * sizeof *live_idx), nlive = 0;
  REQUIRE(live_idx);
  for (size_t i = 0; i < h->count; i++)
    if (h->objs[i].live)
      live_idx[nlive++] = i;
  h->local_refs = params->local_refs;
  for (size_t i = 0; i < h->count; i++) {
    synth_fill_refs(h, &rng, i, live_idx, nlive);
    h->live_pos += h->objs[i].live;
  }
  free(live_idx);
  /* Garbage past old_top, as a real heap might hold. */
  memset((void *)h->old_top, 0xEE, h->base + h->space_bytes - h->old_top);

  h->bitmap = calloc(h->space_bytes / 512 + 1, sizeof(uint64_t));
  h->starts = calloc(h->space_bytes / 512 + 1, sizeof(uint64_t));
  REQUIRE(h->bitmap && h->starts);
  for (size_t i = 0; i < h->count; i++)
    if (h->objs[i].live)
      synth_mark_live(h, &h->objs[i]);
  if (rng_below(&rng, 2)) { /* stale bits past old_top: the plan and builder ignore them */
    size_t top_bit = (h->old_top - h->base) / 8, words = h->space_bytes / 512 + 1;
    for (size_t w = top_bit / 64; w < words; w++) {
      uint64_t keep = w == top_bit / 64 ? (UINT64_C(1) << (top_bit % 64)) - 1 : 0;
      h->bitmap[w] = (h->bitmap[w] & keep) | (rng_next(&rng) & ~keep);
      h->starts[w] = (h->starts[w] & keep) | (rng_next(&rng) & ~keep);
    }
  }
  if (params->kept_padding) { /* on some pages, part of the dead bytes (below old_top) */
    size_t pages = (h->old_top - h->base + 4095) / 4096;
    size_t *page_live = synth_page_live(h, pages);
    h->kept_pages = rng_below(&rng, 4) ? pages : rng_below(&rng, pages + 1);
    h->kept_pad = calloc(h->kept_pages + 1, sizeof *h->kept_pad);
    REQUIRE(h->kept_pad);
    for (size_t page = 0; page < h->kept_pages; page++) {
      uintptr_t lo = h->base + 4096 * page;
      size_t in_page = (h->old_top - lo < 4096 ? h->old_top - lo : 4096);
      if (rng_below(&rng, 2))
        h->kept_pad[page] = (uint16_t)rng_below(&rng, (in_page - page_live[page]) / 8 + 1);
    }
    free(page_live);
  }
  synth_expect(h, params->threshold);
  h->whole = params->whole;
  if (h->whole)
    synth_expect_whole(h);
  h->plan.whole_slides = params->whole;
  h->plan.leave_untouched = params->untouched;
  h->plan.space_base = h->base;
  h->plan.old_top = h->old_top;
  h->plan.live_words = h->bitmap;
  h->plan.start_words = h->starts;
  h->plan.types = test_type_table();
  h->plan.dense_threshold = params->threshold;
  h->plan.pinned = h->pins;
  h->plan.pinned_count = h->pin_count;
  if (h->kept_pages) { /* a first compute makes the tables; the padding is then in place */
    REQUIRE(ugc_compact_plan_compute(&h->plan) == 0);
    memcpy(h->plan.kept_pad_words, h->kept_pad, h->kept_pages * sizeof *h->kept_pad);
    h->plan.kept_pad_pages = h->kept_pages;
  }
  REQUIRE(ugc_compact_plan_compute(&h->plan) == 0);
  memcpy(h->from, h->space, h->space_bytes);
}

static inline void synth_free(synth_heap *h) {
  ugc_compact_plan_free(&h->plan);
  munmap(h->space, h->space_bytes);
  munmap(h->from, h->space_bytes);
  free(h->bitmap);
  free(h->starts);
  free(h->objs);
  free(h->pins);
  free(h->model_fixed);
  free(h->whole_from);
  free(h->kept_pad);
  free(h->pad_words);
}

/* Expected value of a reference read from from-space. */
static inline uintptr_t synth_forward(const synth_heap *h, uintptr_t value, uintptr_t tag_mask) {
  uintptr_t ref = value & ~tag_mask, hdr = ref - 8;
  size_t lo = 0, hi = h->count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (h->objs[mid].hdr < hdr)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (ref < 8 || lo == h->count || h->objs[lo].hdr != hdr)
    return value;
  REQUIRE(h->objs[lo].live);
  return (h->objs[lo].new_hdr + 8) | (value & tag_mask);
}

typedef struct slot_collector {
  ugc_tracer base;
  uintptr_t payload;
  uintptr_t *masks; /* per payload word: tag mask + 1 for a slot, 0 for data */
} slot_collector;

static void collect_slot(ugc_tracer *tracer, void *slot, const ugc_tag_rule *rule) {
  slot_collector *c = (slot_collector *)tracer;
  c->masks[((uintptr_t)slot - c->payload) / 8] = rule->tag_mask + 1;
}

/* Checks the plan's scalar outputs against the model. */
static inline void synth_check_plan(const synth_heap *h) {
  CHECK_EQ_U64(h->plan.dense_end, h->dense_end);
  CHECK_EQ_U64(h->plan.new_top, h->new_top);
  CHECK_EQ_U64(h->plan.live_bytes, h->live_bytes);
  CHECK_EQ_U64(h->plan.page_count, (h->new_top - h->base + 4095) / 4096);
  CHECK_EQ_U64(h->plan.whole_pages, h->whole_pages);
  CHECK_EQ_U64(h->plan.pad_bytes, h->pad_bytes);
  size_t wrong_pad = 0;
  for (size_t page = 0; page < h->plan.page_count; page++)
    wrong_pad += h->plan.page_pad_words[page] != h->pad_words[page];
  CHECK_EQ_U64(wrong_pad, 0);
  if (h->whole && h->whole_pages) {
    size_t dense_pages = (h->dense_end - h->base) / 4096, wrong = 0;
    for (size_t page = dense_pages; page < h->plan.page_count; page++)
      wrong += h->plan.page_whole_from[page] != h->whole_from[page];
    CHECK_EQ_U64(wrong, 0);
  }
}

/* Checks the rebuilt space: live objects at their new place with forwarded references, a
 * walkable run of fillers for dead space in the dense prefix only, zeros past new_top up to
 * the end of the mapping. Returns the number of failed checks. */
static inline int synth_verify(const synth_heap *h) {
  int before = ugc_test_failures;
  uintptr_t a = h->base;
  size_t next = 0;
  uintptr_t *masks = NULL;
  size_t masks_cap = 0;
  while (a < h->new_top && ugc_test_failures - before < 10) {
    while (next < h->count && !h->objs[next].live)
      next++;
    uint64_t header = *(uint64_t *)a;
    if (next < h->count && h->objs[next].new_hdr == a) {
      const synth_obj *o = &h->objs[next++];
      uint64_t old_header = *(uint64_t *)(o->hdr + h->delta);
      CHECK_EQ_U64(header, old_header);
      size_t words = (o->total - 8) / 8;
      if (words > masks_cap) {
        masks_cap = words * 2;
        masks = realloc(masks, masks_cap * sizeof *masks);
        REQUIRE(masks);
      }
      if (words)
        memset(masks, 0, words * sizeof *masks);
      slot_collector c = {{collect_slot}, o->hdr + h->delta + 8, masks};
      ugc_object_visit(h->plan.types, old_header, (void *)c.payload, &c.base);
      const uintptr_t *old_p = (const uintptr_t *)(o->hdr + h->delta + 8);
      const uintptr_t *new_p = (const uintptr_t *)(a + 8);
      for (size_t k = 0; k < words; k++) {
        uintptr_t want = masks[k] ? synth_forward(h, old_p[k], masks[k] - 1) : old_p[k];
        if (new_p[k] != want) {
          fprintf(stderr, "object old %#lx new %#lx type %u word %zu: %#lx != %#lx\n",
                  (unsigned long)o->hdr, (unsigned long)a, o->type, k, (unsigned long)new_p[k],
                  (unsigned long)want);
          ugc_test_failures++;
          break;
        }
      }
      a += o->total;
    } else {
      /* Dead space: only in the dense prefix, up to the last fixed range, or as padding
       * before a whole slide, as zero-filled fillers, exactly one per run of dead words and
       * page: from here to the next live object, the page end or new_top, whichever comes
       * first. */
      CHECK(a < h->dense_end || a < h->fixed_limit || h->whole);
      CHECK_EQ_U64(ugc_header_type(header), UGC_FILLER_TYPE);
      size_t total = ugc_header_total(header);
      uintptr_t run_end = next < h->count ? h->objs[next].new_hdr : h->new_top;
      uintptr_t page_end = (a & ~(uintptr_t)4095) + 4096;
      run_end = run_end < page_end ? run_end : page_end;
      run_end = run_end < h->new_top ? run_end : h->new_top;
      if (a + total != run_end) {
        fprintf(stderr, "filler at +%#lx covers %zu bytes, the dead run %zu\n",
                (unsigned long)(a - h->base), total, (size_t)(run_end - a));
        ugc_test_failures++;
      }
      for (size_t k = 8; k < total && a + k < h->new_top; k += 8)
        if (*(uint64_t *)(a + k) != 0) {
          CHECK(!"filler payload not zero");
          break;
        }
      a += total;
    }
  }
  while (next < h->count && !h->objs[next].live)
    next++;
  CHECK(next == h->count);
  CHECK_EQ_U64(a, h->new_top);
  for (uintptr_t z = h->new_top; z < h->base + h->space_bytes; z += 8)
    if (*(uint64_t *)z != 0) {
      fprintf(stderr, "non-zero word past new_top at +%#lx\n", (unsigned long)(z - h->base));
      ugc_test_failures++;
      break;
    }
  free(masks);
  return ugc_test_failures - before;
}

/* Builds every page of the mapping into place in a random order; returns bytes copied. */
static inline size_t synth_build_all_random(synth_heap *h, uint64_t seed) {
  size_t pages = h->space_bytes / 4096, copied = 0;
  size_t *order = malloc(pages * sizeof *order);
  REQUIRE(order);
  for (size_t i = 0; i < pages; i++)
    order[i] = i;
  for (size_t i = pages; i > 1; i--) {
    size_t j = rng_below(&seed, i), t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  memset(h->space, 0xA5, h->space_bytes); /* to-space content must never be read */
  for (size_t i = 0; i < pages; i++)
    copied += ugc_compact_build_page(&h->plan, order[i], h->delta, h->space + 4096 * order[i]);
  free(order);
  return copied;
}

#endif
