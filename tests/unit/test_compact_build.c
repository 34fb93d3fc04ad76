/* ugc_compact_build_page on synthetic heaps: every page built from from-space in a random
 * order (and by racing threads) must reproduce the model's compacted heap exactly. Also
 * prints a quick timing of the page builder (info, not asserted). */
#include <pthread.h>
#include <time.h>

#include "compact/page_state.h"
#include "test_compact_heap.h"

static int verbose;

/* One heap, built in a random page order, verified. */
static void run_case(const char *name, const synth_params *params, uint64_t seed) {
  synth_heap h;
  synth_build(&h, params, seed);
  synth_check_plan(&h);
  size_t copied = synth_build_all_random(&h, seed ^ 0xABCDEF);
  CHECK_EQ_U64(copied, h.live_bytes);
  int failed = synth_verify(&h);
  if (failed || verbose)
    fprintf(stderr,
            "%s seed %llu: %zu objects, old_top +%zu, dense_end +%zu, new_top +%zu, "
            "live %zu%s\n",
            name, (unsigned long long)seed, h.count, (size_t)(h.old_top - h.base),
            (size_t)(h.dense_end - h.base), (size_t)(h.new_top - h.base), h.live_bytes,
            failed ? " FAILED" : "");
  synth_free(&h);
}

/* ---- several threads race for the pages through the page state machine ---- */

typedef struct race {
  synth_heap *heap;
  ugc_page_states states;
  _Atomic uint32_t *builds; /* per page: how many times it was built */
  _Atomic size_t copied;
  size_t pages;
} race;

typedef struct racer {
  race *race;
  int mode; /* 0 ascending, 1 descending, 2 random start, stride */
  uint64_t seed;
} racer;

static void *racer_main(void *arg) {
  racer *self = arg;
  race *r = self->race;
  size_t start = self->mode == 2 ? rng_below(&self->seed, r->pages) : 0;
  for (size_t k = 0; k < r->pages; k++) {
    size_t page = self->mode == 0   ? k
                  : self->mode == 1 ? r->pages - 1 - k
                                    : (start + k * 7) % r->pages;
    if (!ugc_page_try_claim(&r->states, page, UGC_PAGE_BY_GC)) {
      continue;
    }
    size_t n =
        ugc_compact_build_page(&r->heap->plan, page, r->heap->delta, r->heap->space + 4096 * page);
    atomic_fetch_add(&r->copied, n);
    atomic_fetch_add(&r->builds[page], 1);
    ugc_page_set(&r->states, page, UGC_PAGE_BUILT);
    ugc_page_set(&r->states, page, UGC_PAGE_MAPPING);
    ugc_page_set(&r->states, page, UGC_PAGE_MAPPED);
  }
  /* Like a mutator touching every page afterwards: wait until each is mapped. */
  for (size_t page = 0; page < r->pages; page++)
    ugc_page_wait_mapped(&r->states, page);
  return NULL;
}

static void run_threads(const synth_params *params, uint64_t seed) {
  synth_heap h;
  synth_build(&h, params, seed);
  race r = {.heap = &h, .pages = h.space_bytes / 4096};
  REQUIRE(ugc_page_states_alloc(&r.states, r.pages) == 0);
  r.builds = calloc(r.pages, sizeof *r.builds);
  REQUIRE(r.builds);
  memset(h.space, 0xA5, h.space_bytes);
  racer racers[3] = {{&r, 0, 1}, {&r, 1, 2}, {&r, 2, seed}};
  pthread_t threads[3];
  for (int i = 0; i < 3; i++)
    REQUIRE(pthread_create(&threads[i], NULL, racer_main, &racers[i]) == 0);
  for (int i = 0; i < 3; i++)
    pthread_join(threads[i], NULL);
  for (size_t page = 0; page < r.pages; page++)
    CHECK_EQ_U64(atomic_load(&r.builds[page]), 1);
  CHECK_EQ_U64(atomic_load(&r.copied), h.live_bytes);
  CHECK(synth_verify(&h) == 0);
  free(r.builds);
  ugc_page_states_free(&r.states);
  synth_free(&h);
}

/* ---- timing ---- */

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void time_case(const char *name, const synth_params *params) {
  synth_heap h;
  synth_build(&h, params, 42);
  static char buffer[4096] __attribute__((aligned(64)));
  size_t pages = h.plan.page_count, rounds = 0;
  double best = 1e30;
  for (int round = 0; round < 15; round++, rounds++) {
    double start = now_ns();
    for (size_t p = 0; p < pages; p++)
      ugc_compact_build_page(&h.plan, p, h.delta, buffer);
    double per_page = (now_ns() - start) / (double)pages;
    if (per_page < best)
      best = per_page;
  }
  double start = now_ns();
  for (int round = 0; round < 5; round++)
    REQUIRE(ugc_compact_plan_compute(&h.plan) == 0);
  double plan_ns = (now_ns() - start) / 5;
  printf("info: build_page %-40s %6.0f ns/page (best of %zu rounds, %zu pages, %.0f%% live); "
         "plan_compute %.0f us for %zu KiB\n",
         name, best, rounds, pages, 100.0 * (double)h.live_bytes / (double)(h.old_top - h.base),
         plan_ns / 1000, (size_t)(h.old_top - h.base) / 1024);
  synth_free(&h);
}

int main(int argc, char **argv) {
  verbose = argc > 1;
  /* A 1 MiB mixed heap with a dense leading quarter. */
  synth_params mixed = {.heap_bytes = 1 << 20,
                        .live_prob = 0.5,
                        .dense_bytes = 256 << 10,
                        .dense_prob = 1.0,
                        .threshold = 0.95,
                        .shape = SHAPE_MIXED};
  run_case("mixed 1 MiB", &mixed, 1);
  {
    synth_heap h;
    synth_build(&h, &mixed, 1);
    CHECK(h.dense_end > h.base); /* the case really exercises a dense prefix */
    synth_free(&h);
  }
  run_threads(&mixed, 7);

  double thresholds[] = {0.0, 0.3, 0.8, 0.95, 1.0, 1.5};
  /* Many small heaps: straddlers at dense_end, partial last pages, page-aligned objects. */
  for (uint64_t seed = 0; seed < 400; seed++) {
    uint64_t rng = seed + 1000;
    synth_params p = {
        .heap_bytes = 8 * rng_below(&rng, 96 * 1024 / 8),
        .live_prob = rng_unit(&rng),
        .dense_bytes = rng_below(&rng, 64 * 1024),
        .dense_prob = 0.9 + 0.1 * rng_unit(&rng),
        .threshold = thresholds[rng_below(&rng, 6)],
        .shape = (int)rng_below(&rng, 4),
    };
    /* Every other heap through the portable copy of the builder (no POPCNT). */
    int previous = ugc_compact_select_popcnt(seed % 2);
    run_case(seed % 2 ? "small" : "small, portable popcount", &p, seed);
    ugc_compact_select_popcnt(previous);
  }

  /* Edge cases. */
  synth_params empty = {.heap_bytes = 0, .threshold = 0.95};
  run_case("empty", &empty, 3);
  synth_params all_live = {.heap_bytes = 300000, .live_prob = 1.0, .threshold = 0.95};
  run_case("all live, 0.95", &all_live, 4);
  all_live.threshold = 1.0;
  run_case("all live, 1.0", &all_live, 5);
  all_live.threshold = 1.5;
  run_case("all live, no prefix", &all_live, 6);
  all_live.threshold = 0.0;
  run_case("all live, 0.0", &all_live, 6);
  synth_params giant = {
      .heap_bytes = 512 << 10, .live_prob = 0.4, .threshold = 1.5, .shape = SHAPE_GIANT};
  run_case("giant array", &giant, 8);
  giant.threshold = 0.0;
  run_case("giant array, all dense", &giant, 9);
  giant.live_prob = 1.0;
  giant.threshold = 0.95;
  run_threads(&giant, 10);
  synth_params nothing_live = {.heap_bytes = 200000, .live_prob = 0.0, .threshold = 0.95};
  run_case("nothing live", &nothing_live, 11);
  nothing_live.threshold = 0.0;
  run_case("nothing live, all dense", &nothing_live, 12);

  /* Timing (info only): 32-byte objects with two references, half live; leaves; mixed. */
  synth_params pairs = {
      .heap_bytes = 8 << 20, .live_prob = 0.5, .threshold = 1.5, .shape = SHAPE_PAIRS};
  time_case("32-byte pairs, 50% live", &pairs);
  int previous = ugc_compact_select_popcnt(0);
  time_case("32-byte pairs, 50% live, portable", &pairs);
  ugc_compact_select_popcnt(previous);
  pairs.local_refs = 1;
  time_case("32-byte pairs, 50% live, local refs", &pairs);
  pairs.local_refs = 0;
  pairs.heap_bytes = 256 << 10;
  time_case("32-byte pairs, 50% live, 256 KiB (hot)", &pairs);
  pairs.heap_bytes = 8 << 20;
  pairs.live_prob = 0.9;
  time_case("32-byte pairs, 90% live", &pairs);
  pairs.live_prob = 1.0;
  pairs.threshold = 0.95;
  time_case("32-byte pairs, all live, dense", &pairs);
  synth_params leaves = {
      .heap_bytes = 8 << 20, .live_prob = 0.5, .threshold = 1.5, .shape = SHAPE_LEAVES};
  time_case("small leaves, 50% live", &leaves);
  mixed.heap_bytes = 8 << 20;
  mixed.dense_bytes = 0;
  time_case("mixed types, 50% live", &mixed);
  TEST_DONE();
}
