/* Untouched spans of the plan (compact/untouched.c) on synthetic heaps, against a model of
 * what makes a span safe:
 *   - at most UGC_UNTOUCHED_MAX spans, ascending, disjoint, starting 2 MiB aligned, ending
 *     on a page, at least 2 MiB long, inside the dense prefix and below old_top;
 *   - every object overlapping a span is live and LEAF, every word of it is live or padding
 *     (no dead object, nothing a build would turn into a filler);
 *   - the span's tail (the pages the hand-off copies to from-space) starts at the page of
 *     the header of the object that goes on past the span's end, or is empty when none does;
 *   - no held span (pinned objects' pages) overlaps one;
 *   - all lie in one 1 GiB-aligned region (the hand-off's extra page-table work).
 * And by building: with the spans' from-space twins but their tails overwritten with
 * garbage, every other page builds right (none reads a span but through its tail), and the spans
 * left as they are make a heap the model accepts. Heaps: all-leaf and fully live (one span
 * expected, reaching old_top's last chunk), large strings with a rare pair (spans broken at the
 * pairs; the longest kept), and random ones with pins and padding. */
#include <stdio.h>
#include <stdlib.h>

#include "test_compact_heap.h"

#define CHUNK ((uintptr_t)2 << 20)

static int leaf_type(uint8_t type) {
  return type == T_LEAF || type == T_FILLER;
}

/* Checks the model's rules for every span; returns the pages in spans. */
static size_t check_spans(const synth_heap *h) {
  const ugc_compact_plan *plan = &h->plan;
  CHECK(plan->untouched_count <= UGC_UNTOUCHED_MAX);
  size_t pages = 0;
  uintptr_t dense_top = plan->dense_end < h->old_top ? plan->dense_end : h->old_top;
  for (size_t r = 0; r < plan->untouched_count; r++) {
    uintptr_t start = plan->untouched[r].start, end = plan->untouched[r].end;
    uintptr_t tail = end; /* the model's: the page of the header of an object crossing end */
    for (size_t i = 0; i < h->count; i++)
      if (h->objs[i].hdr < end && h->objs[i].hdr + h->objs[i].total > end)
        tail = h->objs[i].hdr & ~(uintptr_t)4095;
    CHECK_EQ_U64(plan->untouched[r].tail, tail);
    CHECK(tail >= start);
    CHECK_EQ_U64(start % CHUNK, 0);
    CHECK_EQ_U64(end % 4096, 0);
    CHECK(end >= start + CHUNK);
    CHECK(start >= h->base && end <= dense_top);
    if (r)
      CHECK(start >= plan->untouched[r - 1].end);
    CHECK_EQ_U64(start >> 30, plan->untouched[0].start >> 30);
    CHECK_EQ_U64((end - 1) >> 30, plan->untouched[0].start >> 30);
    for (size_t k = 0; k < plan->held_count; k++)
      CHECK(plan->held[k].end <= start || plan->held[k].start >= end);
    pages += (end - start) / 4096;
  }
  CHECK_EQ_U64(plan->untouched_pages, pages);
  /* Objects against spans: one pass in address order. */
  size_t dead_words_in_spans = 0, bad = 0;
  for (size_t i = 0; i < h->count; i++) {
    const synth_obj *o = &h->objs[i];
    uintptr_t lo = o->hdr, hi = o->hdr + o->total;
    for (size_t r = 0; r < plan->untouched_count; r++) {
      uintptr_t start = plan->untouched[r].start, end = plan->untouched[r].end;
      if (hi <= start || lo >= end)
        continue;
      if (!o->live) {
        dead_words_in_spans += (hi < end ? hi : end) - (lo > start ? lo : start);
        continue;
      }
      bad += !leaf_type(o->type);
    }
  }
  CHECK_EQ_U64(bad, 0);
  /* Dead words in a span are padding an earlier cycle placed, and nothing else. */
  size_t pad_words = 0;
  for (size_t r = 0; r < plan->untouched_count; r++)
    for (uintptr_t page = plan->untouched[r].start; page < plan->untouched[r].end; page += 4096)
      pad_words += plan->page_pad_words[(page - h->base) / 4096];
  CHECK_EQ_U64(dead_words_in_spans / 8, pad_words);
  return pages;
}

/* Builds every page but the spans' with their from-space twins made garbage; the spans keep
 * the heap's bytes. Then the model checks the whole heap. */
static void check_build_without_spans(synth_heap *h) {
  const ugc_compact_plan *plan = &h->plan;
  size_t bytes = h->space_bytes;
  char *saved = malloc(bytes);
  REQUIRE(saved);
  memcpy(saved, h->from, bytes);
  memset(h->space, 0xA5, bytes);
  for (size_t r = 0; r < plan->untouched_count; r++) {
    size_t offset = plan->untouched[r].start - h->base;
    size_t length = plan->untouched[r].end - plan->untouched[r].start;
    size_t uncopied = plan->untouched[r].tail - plan->untouched[r].start;
    memcpy(h->space + offset, h->from + offset, length); /* never left the heap */
    memset(h->from + offset, 0xEE, uncopied);            /* no from-space copy but the tail */
  }
  size_t pages = bytes / 4096;
  for (size_t page = 0; page < pages; page++)
    if (!ugc_compact_untouched_at(plan, h->base + 4096 * page))
      ugc_compact_build_page(plan, page, h->delta, h->space + 4096 * page);
  memcpy(h->from, saved, bytes); /* the model reads old headers there */
  free(saved);
  CHECK_EQ_U64(synth_verify(h), 0);
}

static void build(synth_heap *h, synth_params p, uint64_t seed) {
  p.untouched = 1;
  synth_build(h, &p, seed);
  synth_check_plan(h);
}

/* Fully live, all LEAF: one span, from the first 2 MiB boundary to the last page whose
 * object does not run past it, all inside the last whole chunk below old_top. */
static void test_all_leaf(void) {
  synth_heap h;
  build(&h,
        (synth_params){
            .heap_bytes = 13u << 20, .live_prob = 1, .threshold = 0.95, .shape = SHAPE_LEAVES},
        1);
  size_t pages = check_spans(&h);
  CHECK_EQ_U64(h.plan.untouched_count, 1);
  uintptr_t first = (h.base + CHUNK - 1) & ~(CHUNK - 1), last = h.old_top & ~(CHUNK - 1);
  if (first >> 30 == (last - 1) >> 30) { /* else the span keeps to one 1 GiB region */
    CHECK_EQ_U64(h.plan.untouched[0].start, first);
    CHECK_EQ_U64(h.plan.untouched[0].end, last);
    CHECK(h.plan.untouched[0].tail + 4096 >= last);
  }
  check_build_without_spans(&h);
  printf("all leaf: %zu of %zu pages untouched\n", pages, (size_t)(h.old_top - h.base) / 4096);
  synth_free(&h);
}

/* Cold strings and a few pairs, all live: pairs break the spans; one garbage object breaks
 * them too (not fully live). */
static void test_cold(void) {
  size_t spans = 0, pages = 0, heaps = 0;
  for (uint64_t seed = 0; seed < 12; seed++) {
    synth_heap h;
    build(&h,
          (synth_params){.heap_bytes = (24u + 4u * (unsigned)seed) << 20,
                         .live_prob = 1,
                         .threshold = 0.9,
                         .shape = SHAPE_STRINGS,
                         .kept_padding = seed % 3 == 0},
          100 + seed);
    pages += check_spans(&h);
    spans += h.plan.untouched_count;
    heaps++;
    check_build_without_spans(&h);
    synth_free(&h);
  }
  printf("cold: %zu spans, %zu pages in %zu heaps\n", spans, pages, heaps);
  CHECK(spans >= heaps); /* a 24 MiB heap of mostly strings has 2 MiB chunks without a pair */
}

/* Random heaps (small and large, pins, padding, dead objects): the rules always hold. */
static void test_random(void) {
  size_t spans = 0;
  for (uint64_t seed = 0; seed < 60; seed++) {
    uint64_t rng = seed * 31 + 7;
    synth_params p = {
        .heap_bytes = 8 * rng_below(&rng, (12u << 20) / 8),
        .live_prob = rng_below(&rng, 3) ? 1.0 : 0.9 + 0.1 * rng_unit(&rng),
        .dense_bytes = rng_below(&rng, 12u << 20),
        .dense_prob = rng_below(&rng, 3) ? 1.0 : 0.99 + 0.01 * rng_unit(&rng),
        .threshold = rng_below(&rng, 2) ? 0.95 : 0.5,
        .shape = rng_below(&rng, 2) ? SHAPE_STRINGS : (int)rng_below(&rng, 5),
        .pin_prob = rng_below(&rng, 3) == 0 ? 0.0005 : 0,
        .kept_padding = rng_below(&rng, 3) == 0,
    };
    if (p.shape == SHAPE_GIANT)
      p.shape = SHAPE_LEAVES;
    synth_heap h;
    build(&h, p, seed);
    check_spans(&h);
    spans += h.plan.untouched_count;
    check_build_without_spans(&h);
    synth_free(&h);
  }
  printf("random: %zu spans\n", spans);
  CHECK(spans > 3); /* how many depends on where mmap put the heaps (2 MiB alignment) */
}

/* Without leave_untouched there are none. */
static void test_off(void) {
  synth_heap h;
  synth_build(&h,
              &(synth_params){
                  .heap_bytes = 8u << 20, .live_prob = 1, .threshold = 0.95, .shape = SHAPE_LEAVES},
              3);
  CHECK_EQ_U64(h.plan.untouched_count, 0);
  CHECK_EQ_U64(h.plan.untouched_pages, 0);
  synth_free(&h);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  test_all_leaf();
  test_cold();
  test_random();
  test_off();
  TEST_DONE();
}
