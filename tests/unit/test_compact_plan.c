/* ugc_compact_plan_compute and the forwarding arithmetic against a naive model: thousands of
 * small random heaps (several layouts, random liveness, straddlers, all dense thresholds),
 * plus the bitmap scan helpers and table reuse across cycles. */
#include "test_compact_heap.h"

/* Naive next bit at or after `bit` below `limit` that equals `value`. */
static size_t naive_next(const uint64_t *words, size_t bit, size_t limit, int value) {
  for (; bit < limit; bit++)
    if ((int)((words[bit / 64] >> (bit % 64)) & 1) == value)
      return bit;
  return limit;
}

static void test_bitmap_scans(void) {
  uint64_t rng = 99;
  uint64_t words[16];
  for (int round = 0; round < 2000; round++) {
    for (int i = 0; i < 16; i++) { /* sparse, dense, runs and empty words */
      uint64_t r = rng_next(&rng);
      switch (rng_below(&rng, 5)) {
      case 0:
        words[i] = 0;
        break;
      case 1:
        words[i] = ~UINT64_C(0);
        break;
      case 2:
        words[i] = r & rng_next(&rng) & rng_next(&rng);
        break;
      case 3:
        words[i] = r | rng_next(&rng);
        break;
      default:
        words[i] = r;
        break;
      }
    }
    size_t limit = rng_below(&rng, 16 * 64 + 1);
    size_t bit = rng_below(&rng, limit + 2);
    CHECK_EQ_U64(ugc_compact_bitmap_next(words, bit, limit, 0), naive_next(words, bit, limit, 1));
    CHECK_EQ_U64(ugc_compact_bitmap_next(words, bit, limit, ~UINT64_C(0)),
                 naive_next(words, bit, limit, 0));
    uint64_t x = words[round % 16];
    CHECK_EQ_U64(ugc_compact_popcount64(x), (unsigned)__builtin_popcountll(x));
  }
}

/* Naive first object per to-space page: the first live object whose new extent overlaps
 * the page; for a dense page (new == old) 0 when none does. */
static uintptr_t naive_first_object(const synth_heap *h, size_t page) {
  uintptr_t start = h->base + page * 4096;
  for (size_t i = 0; i < h->count; i++) {
    const synth_obj *o = &h->objs[i];
    if (o->live && o->new_hdr + o->total > start)
      return synth_in_place(h, start) && o->hdr >= start + 4096 ? 0 : o->hdr;
  }
  return 0;
}

/* How often the random heaps hit the cases the dense-prefix code distinguishes. */
static struct {
  size_t dense_pages, dense_straddled, dense_empty, dense_starting_late, slid_straddler;
} coverage;

static void count_coverage(const synth_heap *h) {
  const ugc_compact_plan *plan = &h->plan;
  size_t dense_pages = (plan->dense_end - h->base) / 4096;
  for (size_t page = 0; page < dense_pages && page < plan->page_count; page++) {
    uintptr_t start = h->base + page * 4096, first = plan->page_first_object[page];
    coverage.dense_pages++;
    coverage.dense_empty += first == 0;
    coverage.dense_straddled += first && first < start;
    coverage.dense_starting_late += first > start;
  }
  if (dense_pages < plan->page_count && plan->page_first_object[dense_pages] &&
      plan->page_first_object[dense_pages] < plan->dense_end)
    coverage.slid_straddler++;
}

static void check_forwarding(const synth_heap *h, uint64_t seed) {
  const ugc_compact_plan *plan = &h->plan;
  int before = ugc_test_failures;
  for (size_t i = 0; i < h->count && ugc_test_failures - before < 5; i++) {
    const synth_obj *o = &h->objs[i];
    CHECK_EQ_U64(ugc_compact_is_live(plan, o->hdr), o->live);
    if (!o->live)
      continue;
    CHECK_EQ_U64(ugc_compact_forward_header(plan, o->hdr), o->new_hdr);
    CHECK_EQ_U64(ugc_compact_forward_ref(plan, o->hdr + 8), o->new_hdr + 8);
    uintptr_t slot = (o->hdr + 8) | 5; /* tagged slot, mask 7 */
    ugc_tag_rule rule = {.tag_mask = 7};
    ugc_compact_update_slot(plan, &slot, &rule);
    CHECK_EQ_U64(slot, (o->new_hdr + 8) | 5);
  }
  /* Values that are not references into [space_base, old_top) stay as they are. */
  uintptr_t outside[] = {0,
                         8,
                         (uintptr_t)&outside_target[1],
                         h->old_top + 8,
                         h->base,
                         h->base + h->space_bytes - 64,
                         ~(uintptr_t)7};
  for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++)
    CHECK_EQ_U64(ugc_compact_forward_ref(plan, outside[i]), outside[i]);
  for (size_t page = 0; page < plan->page_count && ugc_test_failures - before < 5; page++)
    CHECK_EQ_U64(plan->page_first_object[page], naive_first_object(h, page));
  if (ugc_test_failures != before)
    fprintf(stderr, "seed %llu: %zu objects, old_top +%zu, dense_end +%zu, new_top +%zu\n",
            (unsigned long long)seed, h->count, (size_t)(h->old_top - h->base),
            (size_t)(h->dense_end - h->base), (size_t)(h->new_top - h->base));
}

static const double thresholds[] = {0.0, 0.25, 0.5, 0.8, 0.95, 0.999, 1.0, 1.5};

static synth_params random_params(uint64_t seed) {
  uint64_t rng = seed * 7 + 3;
  synth_params p = {
      .heap_bytes = 8 * rng_below(&rng, 48 * 1024 / 8),
      .live_prob = rng_below(&rng, 4) ? rng_unit(&rng) : (double)rng_below(&rng, 2),
      .dense_bytes = rng_below(&rng, 32 * 1024),
      .dense_prob = 0.85 + 0.15 * rng_unit(&rng),
      .threshold = thresholds[rng_below(&rng, 8)],
      .shape = (int)rng_below(&rng, 4),
  };
  p.whole = rng_below(&rng, 2) == 0;
  p.kept_padding = rng_below(&rng, 3) == 0;
  if (rng_below(&rng, 3) == 0) { /* mostly live large strings: many runs to slide whole */
    p.shape = SHAPE_COLD;
    p.live_prob = 0.6 + 0.4 * rng_unit(&rng);
    p.heap_bytes = 8 * rng_below(&rng, 256 * 1024 / 8);
    p.dense_bytes /= 4;
  }
  return p;
}

/* With whole-page slides, the built space is right (padding as fillers) and every page slid
 * whole is its old page, byte for byte: nothing in it needed a change. */
static size_t check_whole_build(synth_heap *h, uint64_t seed) {
  if (!h->plan.whole_pages)
    return 0;
  synth_build_all_random(h, seed);
  if (synth_verify(h))
    fprintf(stderr, "seed %llu: whole-slide heap built wrong\n", (unsigned long long)seed);
  size_t differ = 0;
  for (size_t page = 0; page < h->plan.page_count; page++) {
    uint32_t from = h->plan.page_whole_from[page];
    if (page * 4096 >= h->plan.dense_end - h->base && from)
      differ += memcmp(h->space + 4096 * page, h->from + 4096 * (size_t)(from - 1), 4096) != 0;
  }
  CHECK_EQ_U64(differ, 0);
  return h->plan.whole_pages;
}

static void test_random_heaps(void) {
  size_t whole_pages = 0, padded_heaps = 0;
  for (uint64_t seed = 0; seed < 3000; seed++) {
    synth_params p = random_params(seed);
    synth_heap h;
    synth_build(&h, &p, seed);
    synth_check_plan(&h);
    check_forwarding(&h, seed);
    count_coverage(&h);
    whole_pages += check_whole_build(&h, seed);
    padded_heaps += h.plan.pad_bytes != 0;
    synth_free(&h);
  }
  printf("info: %zu pages slid whole, %zu heaps with padding\n", whole_pages, padded_heaps);
  CHECK(whole_pages > 500 && padded_heaps > 50);
  printf("info: dense pages %zu (first object before the page %zu, inside it %zu, none %zu); "
         "live straddlers at dense_end %zu\n",
         coverage.dense_pages, coverage.dense_straddled, coverage.dense_starting_late,
         coverage.dense_empty, coverage.slid_straddler);
  CHECK(coverage.dense_straddled > 100 && coverage.dense_starting_late > 100);
  CHECK(coverage.dense_empty > 10 && coverage.slid_straddler > 10);
}

/* A plan computed over [base, cut) (cut page aligned, no live object across it) and then
 * extended to old_top forwards like one whose dense prefix is the one found below cut and
 * whose slid region runs on to old_top: the objects past cut slide after the others. */

/* The expected outcome with the plan's dense prefix: objects below it stay, the live ones
 * above slide down in order from the end of the prefix (or of an object straddling it). */
static void expect_slide_above_dense_prefix(synth_heap *h) {
  h->dense_end = h->plan.dense_end;
  uintptr_t cursor = h->dense_end;
  for (size_t i = 0; i < h->count; i++) {
    synth_obj *o = &h->objs[i];
    if (!o->live)
      continue;
    if (o->hdr < h->dense_end) {
      o->new_hdr = o->hdr;
      if (o->hdr + o->total > cursor)
        cursor = o->hdr + o->total;
    } else {
      o->new_hdr = cursor;
      cursor += o->total;
    }
  }
  h->new_top = cursor;
}
static void test_extend(void) {
  size_t extended = 0;
  for (uint64_t seed = 0; seed < 3000; seed++) {
    synth_params p = random_params(seed);
    synth_heap h;
    synth_build(&h, &p, seed);
    size_t pages = (h.old_top - h.base) / 4096, cuts = 0;
    size_t *cut_pages = malloc((pages + 1) * sizeof *cut_pages);
    REQUIRE(cut_pages);
    for (size_t page = 0, i = 0; page <= pages; page++) { /* cut candidates */
      uintptr_t cut = h.base + page * 4096;
      while (i < h.count && h.objs[i].hdr + h.objs[i].total <= cut)
        i++;
      if (i == h.count || h.objs[i].hdr >= cut || !h.objs[i].live)
        cut_pages[cuts++] = page;
    }
    uint64_t rng = seed + 11;
    uintptr_t cut = h.base + 4096 * cut_pages[rng_below(&rng, cuts)];
    free(cut_pages);
    ugc_compact_plan_free(&h.plan);
    h.plan.whole_slides = false; /* the model below slides without padding */
    h.whole = 0;
    h.whole_pages = h.pad_bytes = 0;
    /* and without the padding kept from before (freed with the tables) */
    memset(h.pad_words, 0, ((h.old_top - h.base + 4095) / 4096 + 2) * sizeof *h.pad_words);
    h.plan.old_top = cut;
    h.plan.reserve_top = h.old_top;
    REQUIRE(ugc_compact_plan_compute(&h.plan) == 0);
    CHECK(h.plan.dense_end <= cut);
    REQUIRE(ugc_compact_plan_extend(&h.plan, h.old_top) == 0);
    CHECK_EQ_U64(h.plan.old_top, h.old_top);
    /* The expected outcome with that dense prefix. */
    expect_slide_above_dense_prefix(&h);
    synth_check_plan(&h);
    check_forwarding(&h, seed);
    extended += cut < h.old_top;
    synth_free(&h);
  }
  CHECK(extended > 1000);
  /* What extend refuses: an old_top off a page boundary, a shrinking one. */
  synth_params p = random_params(5);
  p.heap_bytes = 20000;
  synth_heap h;
  synth_build(&h, &p, 5);
  CHECK(ugc_compact_plan_extend(&h.plan, h.old_top + 8) == -1 || (h.old_top - h.base) % 4096 == 0);
  CHECK(ugc_compact_plan_extend(&h.plan, h.base) == -1);
  synth_free(&h);
}

/* Page boundaries of h that no live object crosses, as page numbers, ascending. */
static size_t cut_candidates(const synth_heap *h, size_t *cut_pages) {
  size_t pages = (h->old_top - h->base) / 4096, cuts = 0;
  for (size_t page = 0, i = 0; page <= pages; page++) {
    uintptr_t cut = h->base + page * 4096;
    while (i < h->count && h->objs[i].hdr + h->objs[i].total <= cut)
      i++;
    if (i == h->count || h->objs[i].hdr >= cut || !h->objs[i].live)
      cut_pages[cuts++] = page;
  }
  return cuts;
}

/* The plan extended in rounds, as concurrent marking does between its pauses: computed up
 * to a first cut, then extended to ugc_compact_plan_extend_boundary of random limits (each
 * checked against the candidates: the highest one at or below the limit), then to old_top.
 * It must forward like the plan extended once (the model of test_extend). */
static void test_extend_rounds(void) {
  size_t multi_round = 0;
  for (uint64_t seed = 0; seed < 2000; seed++) {
    synth_params p = random_params(seed);
    synth_heap h;
    synth_build(&h, &p, seed);
    size_t *cut_pages = malloc(((h.old_top - h.base) / 4096 + 1) * sizeof *cut_pages);
    REQUIRE(cut_pages);
    size_t cuts = cut_candidates(&h, cut_pages);
    uint64_t rng = seed + 23;
    ugc_compact_plan_free(&h.plan);
    h.plan.whole_slides = false;
    h.whole = 0;
    h.whole_pages = h.pad_bytes = 0;
    memset(h.pad_words, 0, ((h.old_top - h.base + 4095) / 4096 + 2) * sizeof *h.pad_words);
    h.plan.old_top = h.base + 4096 * cut_pages[rng_below(&rng, cuts)];
    h.plan.reserve_top = h.old_top;
    REQUIRE(ugc_compact_plan_compute(&h.plan) == 0);
    size_t rounds = 0;
    for (int round = 0; round < 6 && h.plan.old_top < h.old_top; round++) {
      uintptr_t limit = h.plan.old_top + rng_below(&rng, h.old_top - h.plan.old_top + 1);
      uintptr_t expected = h.plan.old_top;
      for (size_t c = 0; c < cuts; c++) {
        uintptr_t cut = h.base + 4096 * cut_pages[c];
        if (cut >= h.plan.old_top && cut <= limit)
          expected = cut;
      }
      uintptr_t from = h.plan.old_top, to = ugc_compact_plan_extend_boundary(&h.plan, limit);
      CHECK_EQ_U64(to, expected);
      REQUIRE(ugc_compact_plan_extend(&h.plan, to) == 0);
      CHECK_EQ_U64(h.plan.old_top, to);
      rounds += to > from;
    }
    free(cut_pages);
    REQUIRE(ugc_compact_plan_extend(&h.plan, h.old_top) == 0);
    expect_slide_above_dense_prefix(&h);
    synth_check_plan(&h);
    check_forwarding(&h, seed);
    synth_build_all_random(&h, seed); /* and the pages built from it hold the right heap */
    CHECK_EQ_U64(synth_verify(&h), 0);
    multi_round += rounds > 1;
    synth_free(&h);
  }
  printf("info: %zu plans extended in more than one round\n", multi_round);
  CHECK(multi_round > 250);
}

/* One plan reused across "cycles" of different sizes gives the same answers as fresh ones. */
static void test_table_reuse(void) {
  ugc_compact_plan reused = {0};
  size_t sizes[] = {40000, 4000, 200000, 0, 120000, 8};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    synth_params p = {.heap_bytes = sizes[i],
                      .live_prob = 0.6,
                      .dense_bytes = sizes[i] / 3,
                      .dense_prob = 1.0,
                      .threshold = 0.9};
    synth_heap h;
    synth_build(&h, &p, 500 + i);
    reused.space_base = h.plan.space_base;
    reused.old_top = h.plan.old_top;
    reused.live_words = h.plan.live_words;
    reused.start_words = h.plan.start_words;
    reused.types = h.plan.types;
    reused.dense_threshold = h.plan.dense_threshold;
    REQUIRE(ugc_compact_plan_compute(&reused) == 0);
    CHECK_EQ_U64(reused.dense_end, h.plan.dense_end);
    CHECK_EQ_U64(reused.new_top, h.plan.new_top);
    CHECK_EQ_U64(reused.live_bytes, h.plan.live_bytes);
    CHECK_EQ_U64(reused.page_count, h.plan.page_count);
    for (size_t page = 0; page < h.plan.page_count; page++)
      CHECK_EQ_U64(reused.page_first_object[page], h.plan.page_first_object[page]);
    size_t first_chunk = (h.plan.dense_end - h.base) / 512;
    for (size_t c = first_chunk; c < (h.old_top - h.base + 511) / 512; c++)
      CHECK_EQ_U64(reused.chunk_live_before[c], h.plan.chunk_live_before[c]);
    synth_free(&h);
  }
  CHECK(reused.chunk_capacity >= 200000 / 512 && reused.page_capacity >= 200000 / 4096);
  ugc_compact_plan_free(&reused);
  CHECK(reused.chunk_live_before == NULL && reused.page_capacity == 0);
  ugc_compact_plan_free(&reused); /* twice is harmless */
}

/* Named edge cases, each also checked against the model. */
static void test_edges(void) {
  synth_params empty = {.heap_bytes = 0, .threshold = 0.95};
  synth_heap h;
  synth_build(&h, &empty, 1);
  CHECK_EQ_U64(h.plan.page_count, 0);
  CHECK_EQ_U64(h.plan.new_top, h.base);
  CHECK_EQ_U64(h.plan.dense_end, h.base);
  CHECK_EQ_U64(h.plan.live_bytes, 0);
  synth_free(&h);

  /* Everything live: threshold 1.0 keeps every full page; the partial last page slides by 0. */
  synth_params all = {
      .heap_bytes = 100000, .live_prob = 1.0, .threshold = 1.0, .shape = SHAPE_PAIRS};
  synth_build(&h, &all, 2);
  synth_check_plan(&h);
  check_forwarding(&h, 2);
  CHECK_EQ_U64(h.plan.dense_end, h.base + (h.old_top - h.base) / 4096 * 4096);
  CHECK_EQ_U64(h.plan.new_top, h.old_top);
  synth_free(&h);

  /* Threshold 0: every page dense, the partial last one too; nothing moves. */
  all.threshold = 0.0;
  all.live_prob = 0.3;
  synth_build(&h, &all, 3);
  synth_check_plan(&h);
  CHECK_EQ_U64(h.plan.dense_end, h.base + (h.old_top - h.base + 4095) / 4096 * 4096);
  CHECK_EQ_U64(h.plan.new_top, h.old_top);
  synth_free(&h);

  /* Threshold above 1 (or NaN): no prefix at all. */
  all.threshold = 0.0 / 0.0;
  synth_build(&h, &all, 4);
  CHECK_EQ_U64(h.plan.dense_end, h.base);
  synth_free(&h);

  /* A single giant live array over many pages, with small objects around it. */
  synth_params giant = {
      .heap_bytes = 256 << 10, .live_prob = 0.5, .threshold = 0.95, .shape = SHAPE_GIANT};
  synth_build(&h, &giant, 5);
  synth_check_plan(&h);
  check_forwarding(&h, 5);
  CHECK(h.objs[1].total > 100 * 1024);
  size_t pages_with_giant = 0;
  for (size_t page = 0; page < h.plan.page_count; page++)
    pages_with_giant += h.plan.page_first_object[page] == h.objs[1].hdr;
  CHECK(pages_with_giant >= h.objs[1].total / 4096 - 1);
  synth_free(&h);
}

/* Pinned objects (plan.pinned): fixed ranges against the naive model, forwarding, first
 * objects, every page built and checked (pinned objects at their old address, fillers in
 * the gaps), and the extension of a plan with ranges. */
/* Held spans: ascending and disjoint; every page of a live pinned object is in one (below
 * dense_end for an object that starts there); in the dense prefix a span starts at its
 * pinned object's page (an object straddling into it from before is not held: the in-place
 * update reads its header in from-space). Returns the span count. */
static size_t check_held(const synth_heap *h) {
  const ugc_compact_plan *plan = &h->plan;
  for (size_t r = 0; r < plan->held_count; r++) {
    CHECK(plan->held[r].start < plan->held[r].end);
    CHECK(plan->held[r].start % 4096 == 0 && plan->held[r].end % 4096 == 0);
    if (r)
      CHECK(plan->held[r - 1].end < plan->held[r].start);
  }
  for (size_t i = 0, k = 0; i < h->count && k < h->pin_count; i++) {
    if (h->objs[i].hdr != h->pins[k])
      continue;
    k++;
    if (!h->objs[i].live)
      continue;
    uintptr_t end = h->objs[i].hdr + h->objs[i].total;
    if (h->objs[i].hdr < plan->dense_end && end > plan->dense_end)
      end = plan->dense_end;
    for (uintptr_t page = h->objs[i].hdr & ~(uintptr_t)4095; page < end; page += 4096)
      CHECK(ugc_compact_held_at(plan, page) != NULL);
  }
  for (size_t r = 0; r < plan->held_count; r++) {
    if (plan->held[r].start >= plan->dense_end)
      continue;
    size_t pinned_here = 0; /* a pinned object's header in the span's first page */
    for (size_t k = 0; k < h->pin_count; k++)
      pinned_here += (h->pins[k] & ~(uintptr_t)4095) == plan->held[r].start;
    CHECK(pinned_here > 0);
  }
  return plan->held_count;
}

/* Held pages as the backends treat them: the heap page keeps its bytes (a system call may be
 * writing into a pinned object), and only its fillers and reference slots are written,
 * reading headers and slots in from-space. Every other page is built as usual. The heap
 * must come out as the model wants it. */
static void check_held_build(synth_heap *h, uint64_t seed) {
  synth_build_all_random(h, seed);
  for (size_t r = 0; r < h->plan.held_count; r++)
    for (uintptr_t page = h->plan.held[r].start; page < h->plan.held[r].end; page += 4096) {
      size_t index = (page - h->base) / 4096;
      memcpy(h->space + 4096 * index, h->from + 4096 * index, 4096); /* it never left */
      ugc_compact_update_page_in_place(&h->plan, index, h->delta, h->space + 4096 * index);
    }
  int failed = synth_verify(h);
  if (failed)
    fprintf(stderr, "pinned heap, seed %llu: held pages updated in place: %d failures\n",
            (unsigned long long)seed, failed);
}

static void test_pinned_heaps(void) {
  size_t held_spans = 0;
  size_t pinned_kept = 0, ranges = 0, gap_pages = 0, whole_with_ranges = 0, padded_with_ranges = 0;
  for (uint64_t seed = 0; seed < 1500; seed++) {
    synth_params p = random_params(seed);
    uint64_t rng = seed * 13 + 5;
    p.pin_prob = rng_below(&rng, 3) ? 0.002 + 0.05 * rng_unit(&rng) : 0.3 * rng_unit(&rng);
    if (seed % 4 == 0) { /* few pins in a mostly live cold heap: runs slid whole between them */
      p.shape = SHAPE_COLD;
      p.whole = 1;
      p.live_prob = 0.7 + 0.3 * rng_unit(&rng);
      p.heap_bytes = 8 * (8192 + rng_below(&rng, 192 * 1024 / 8));
      p.pin_prob = 0.05 + 0.15 * rng_unit(&rng);
      p.threshold = 0.95;
      p.dense_bytes = 0;
    }
    synth_heap h;
    synth_build(&h, &p, seed);
    synth_check_plan(&h);
    check_forwarding(&h, seed);
    CHECK_EQ_U64(h.plan.fixed_count, h.model_fixed_count);
    for (size_t r = 0; r < h.plan.fixed_count && r < h.model_fixed_count; r++) {
      CHECK_EQ_U64(h.plan.fixed[r].start, h.model_fixed[r][0]);
      CHECK_EQ_U64(h.plan.fixed[r].end, h.model_fixed[r][1]);
    }
    ranges += h.plan.fixed_count;
    held_spans += check_held(&h);
    for (size_t i = 0, k = 0; i < h.count && k < h.pin_count; i++)
      if (h.objs[i].hdr == h.pins[k]) {
        k++;
        if (h.objs[i].live) {
          CHECK_EQ_U64(ugc_compact_forward_header(&h.plan, h.objs[i].hdr), h.objs[i].hdr);
          pinned_kept += h.objs[i].hdr >= h.plan.dense_end;
        }
      }
    for (size_t r = 0; r < h.plan.fixed_count; r++)
      gap_pages +=
          (h.plan.fixed[r].start - ((h.plan.fixed[r].slid_end + 4095) & ~(uintptr_t)4095)) / 4096;
    if (h.plan.fixed_count && h.plan.whole_pages) { /* pins and whole slides together */
      whole_with_ranges++;
      padded_with_ranges += h.plan.pad_bytes != 0;
      size_t in_range = 0;
      for (size_t page = 0; page < h.plan.page_count; page++) {
        uint32_t from = h.plan.page_whole_from[page];
        if (page * 4096 < h.plan.dense_end - h.base || !from)
          continue;
        /* neither the page slid whole nor the page it takes lies in a fixed range */
        in_range += ugc_compact_fixed_at(&h.plan, h.base + 4096 * page) != NULL;
        in_range += ugc_compact_fixed_at(&h.plan, h.base + 4096 * (size_t)(from - 1)) != NULL;
      }
      CHECK_EQ_U64(in_range, 0);
    }
    if (h.plan.whole_pages) {
      CHECK(check_whole_build(&h, seed) == h.plan.whole_pages);
    } else {
      synth_build_all_random(&h, seed ^ 0x5EED);
      int failed = synth_verify(&h);
      if (failed)
        fprintf(stderr, "pinned heap, seed %llu: %d failures\n", (unsigned long long)seed, failed);
      check_held_build(&h, seed ^ 0xB0B);
    }
    synth_free(&h);
  }
  printf("info: pinned heaps: %zu pinned objects past dense_end kept, %zu fixed ranges, %zu "
         "filler pages\n",
         pinned_kept, ranges, gap_pages);
  CHECK(pinned_kept > 1000 && ranges > 500 && gap_pages > 50);
  printf("info: pinned heaps: %zu held spans checked\n", held_spans);
  CHECK(held_spans > ranges);
  printf("info: pinned heaps with pages slid whole: %zu (%zu with padding)\n", whole_with_ranges,
         padded_with_ranges);
  CHECK(whole_with_ranges > 50 && padded_with_ranges > 20);

  /* Extension after a plan with ranges: the region slides after everything, ranges kept. */
  size_t extended = 0;
  for (uint64_t seed = 0; seed < 500; seed++) {
    synth_params p = random_params(seed + 7000);
    p.pin_prob = 0.08;
    synth_heap h;
    synth_build(&h, &p, seed + 7000);
    uintptr_t cut = h.base + (h.old_top - h.base) / 2 / 4096 * 4096;
    size_t i = 0;
    while (i < h.count && h.objs[i].hdr + h.objs[i].total <= cut)
      i++;
    if (i < h.count && h.objs[i].hdr < cut && h.objs[i].live) { /* live across: no cut */
      synth_free(&h);
      continue;
    }
    /* The model with pins below the cut only, everything past it slid. */
    size_t pins_below = 0;
    while (pins_below < h.pin_count && h.pins[pins_below] < cut)
      pins_below++;
    ugc_compact_plan_free(&h.plan);
    h.plan.whole_slides = false; /* the model below slides without padding */
    h.whole = 0;
    h.whole_pages = h.pad_bytes = 0;
    /* and without the padding kept from before (freed with the tables) */
    memset(h.pad_words, 0, ((h.old_top - h.base + 4095) / 4096 + 2) * sizeof *h.pad_words);
    h.plan.old_top = cut;
    h.plan.reserve_top = h.old_top;
    h.plan.pinned_count = pins_below;
    REQUIRE(ugc_compact_plan_compute(&h.plan) == 0);
    if (h.plan.dense_end > cut || ugc_compact_plan_extend(&h.plan, h.old_top) != 0) {
      CHECK(h.plan.dense_end > cut);
      synth_free(&h);
      continue;
    }
    uintptr_t real_top = h.old_top;
    h.old_top = cut;
    h.pin_count = pins_below;
    h.dense_end = h.plan.dense_end; /* the ranges start at the plan's (kept padding gone) */
    synth_expect_fixed(&h);
    h.old_top = real_top;
    uintptr_t cursor = h.dense_end;
    size_t r = 0;
    for (size_t k = 0; k < h.count; k++) {
      synth_obj *o = &h.objs[k];
      if (!o->live)
        continue;
      while (r < h.model_fixed_count && o->hdr >= h.model_fixed[r][1]) {
        cursor = cursor > h.model_fixed[r][1] ? cursor : h.model_fixed[r][1];
        r++;
      }
      if (o->hdr < h.dense_end || (r < h.model_fixed_count && o->hdr >= h.model_fixed[r][0])) {
        o->new_hdr = o->hdr;
        cursor = o->hdr + o->total > cursor ? o->hdr + o->total : cursor;
      } else {
        o->new_hdr = cursor;
        cursor += o->total;
      }
    }
    for (; r < h.model_fixed_count; r++)
      cursor = cursor > h.model_fixed[r][1] ? cursor : h.model_fixed[r][1];
    h.new_top = cursor;
    h.fixed_limit = h.model_fixed_count ? h.model_fixed[h.model_fixed_count - 1][1] : 0;
    synth_check_plan(&h);
    check_forwarding(&h, seed + 7000);
    synth_build_all_random(&h, seed);
    CHECK(synth_verify(&h) == 0);
    extended += h.plan.fixed_count > 0;
    synth_free(&h);
  }
  printf("info: %zu extended plans with fixed ranges\n", extended);
  CHECK(extended > 50);
}

/* Marks every object of the built space [base, new_top) live, fillers excepted: the next
 * cycle's bitmaps when everything survived. Returns the pages below 95% live by live words
 * alone (those padding keeps in place). */
static size_t mark_all_built(synth_heap *h, uint64_t *live, uint64_t *starts) {
  uintptr_t top = h->plan.new_top;
  for (uintptr_t a = h->base; a < top;) {
    uint64_t header = *(const uint64_t *)a;
    size_t total = ugc_header_total(header), bit = (a - h->base) / 8;
    if (ugc_header_type(header) != UGC_FILLER_TYPE) {
      starts[bit / 64] |= UINT64_C(1) << (bit % 64);
      for (size_t b = bit; b < bit + total / 8; b++)
        live[b / 64] |= UINT64_C(1) << (b % 64);
    }
    a += total;
  }
  size_t sparse = 0;
  for (size_t page = 0; page < (top - h->base) / 4096; page++) {
    size_t words = 0;
    for (size_t w = page * 8; w < page * 8 + 8; w++)
      words += ugc_compact_popcount64(live[w]);
    sparse += words < 0.95 * 512;
  }
  return sparse;
}

/* A region slid whole with padding, fully live in the next cycle, stays in place then: the
 * padding the plan placed counts with the live words (compact.h, "Padding"). Without it the
 * padded pages fall below 0.95 and everything from the first one on slides again. */
static void test_padding_stays_in_place(void) {
  size_t padded = 0, sparse_pages = 0;
  for (uint64_t seed = 0; seed < 200; seed++) {
    synth_params p = {.heap_bytes = 8 * 4096 * (4 + seed % 24),
                      .live_prob = 0.7 + 0.3 * (double)(seed % 7) / 7,
                      .threshold = 0.95,
                      .shape = SHAPE_COLD,
                      .whole = 1};
    synth_heap h;
    synth_build(&h, &p, seed);
    synth_check_plan(&h);
    if (!h.plan.pad_bytes) {
      synth_free(&h);
      continue;
    }
    padded++;
    synth_build_all_random(&h, seed);
    REQUIRE(synth_verify(&h) == 0);
    ugc_compact_plan_keep_padding(&h.plan);
    size_t words = h.space_bytes / 512 + 1;
    uint64_t *live = calloc(words, sizeof *live), *starts = calloc(words, sizeof *starts);
    REQUIRE(live && starts);
    sparse_pages += mark_all_built(&h, live, starts);
    uintptr_t top = h.plan.new_top;
    h.plan.old_top = top;
    h.plan.live_words = live;
    h.plan.start_words = starts;
    REQUIRE(ugc_compact_plan_compute(&h.plan) == 0);
    /* Every full page stays (a partial last one too when live enough), nothing moves. */
    CHECK(h.plan.dense_end >= h.base + (top - h.base) / 4096 * 4096);
    CHECK_EQ_U64(h.plan.new_top, top);
    CHECK_EQ_U64(h.plan.whole_pages, 0);
    free(live);
    free(starts);
    synth_free(&h);
  }
  printf("info: %zu padded cold heaps, %zu pages below 0.95 live kept by their padding\n", padded,
         sparse_pages);
  CHECK(padded > 50 && sparse_pages > 50);
}

int main(void) {
  test_bitmap_scans();
  test_random_heaps();
  test_pinned_heaps();
  test_table_reuse();
  test_edges();
  test_extend();
  test_extend_rounds();
  test_padding_stays_in_place();
  TEST_DONE();
}
