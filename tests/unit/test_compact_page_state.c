/* The per-page state machine under contention: threads race to claim every page; exactly one
 * wins each; losers wait for MAPPED and then see what the winner wrote before publishing. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "compact/page_state.h"
#include "test.h"

#define PAGES 4096
#define THREADS 4
#define ROUNDS 20

static ugc_page_states states;
static _Atomic uint32_t wins[PAGES];
static uint64_t payload[PAGES]; /* written by the winner before MAPPED, plain stores */
static _Atomic int losers_saw_bad;
static pthread_barrier_t start_line;

typedef struct racer {
  unsigned id;
  size_t won;
} racer;

static void *race(void *arg) {
  racer *self = arg;
  pthread_barrier_wait(&start_line);
  for (size_t k = 0; k < PAGES; k++) {
    /* Different orders so that threads collide both head-on and while overtaking. */
    size_t page = self->id % 2 ? PAGES - 1 - k : (k * 17 + self->id * 1031) % PAGES;
    enum ugc_page_claimer who = self->id % 2 ? UGC_PAGE_BY_MUTATOR : UGC_PAGE_BY_GC;
    if (ugc_page_try_claim(&states, page, who)) {
      atomic_fetch_add_explicit(&wins[page], 1, memory_order_relaxed);
      if (ugc_page_get(&states, page) != UGC_PAGE_CLAIMED || ugc_page_claimer(&states, page) != who)
        atomic_store(&losers_saw_bad, 1);
      payload[page] = page * 3 + 1;
      ugc_page_set(&states, page, k % 2 ? UGC_PAGE_BUILT : UGC_PAGE_CLAIMED);
      ugc_page_set(&states, page, UGC_PAGE_MAPPING);
      ugc_page_set(&states, page, UGC_PAGE_MAPPED);
      self->won++;
    } else {
      ugc_page_wait_mapped(&states, page);
      if (payload[page] != page * 3 + 1) /* release/acquire must make the data visible */
        atomic_store(&losers_saw_bad, 1);
    }
  }
  return NULL;
}

int main(void) {
  REQUIRE(ugc_page_states_alloc(&states, PAGES) == 0);
  CHECK_EQ_U64(states.count, PAGES);
  for (size_t i = 0; i < PAGES; i++)
    CHECK_EQ_U64(ugc_page_get(&states, i), UGC_PAGE_UNPROCESSED);

  REQUIRE(pthread_barrier_init(&start_line, NULL, THREADS) == 0);
  for (int round = 0; round < ROUNDS; round++) {
    memset(wins, 0, sizeof wins);
    memset(payload, 0, sizeof payload);
    racer racers[THREADS];
    pthread_t threads[THREADS];
    for (unsigned t = 0; t < THREADS; t++) {
      racers[t] = (racer){t, 0};
      REQUIRE(pthread_create(&threads[t], NULL, race, &racers[t]) == 0);
    }
    size_t total = 0;
    for (unsigned t = 0; t < THREADS; t++) {
      pthread_join(threads[t], NULL);
      total += racers[t].won;
    }
    CHECK_EQ_U64(total, PAGES);
    for (size_t i = 0; i < PAGES; i++) {
      CHECK_EQ_U64(atomic_load(&wins[i]), 1);
      CHECK_EQ_U64(ugc_page_get(&states, i), UGC_PAGE_MAPPED);
      if (ugc_test_failures)
        break;
    }
    CHECK(!atomic_load(&losers_saw_bad));
    /* A claim on a claimed or mapped page fails; the next cycle starts from scratch. */
    CHECK(!ugc_page_try_claim(&states, 0, UGC_PAGE_BY_GC));
    if (round % 2) {
      ugc_page_states_reset(&states);
    } else { /* realloc to the same or a smaller size reuses the mapping, zeroed */
      size_t mapped = states.mapped_bytes;
      REQUIRE(ugc_page_states_alloc(&states, PAGES) == 0);
      CHECK_EQ_U64(states.mapped_bytes, mapped);
    }
    for (size_t i = 0; i < PAGES; i++)
      if (ugc_page_get(&states, i) != UGC_PAGE_UNPROCESSED || ugc_page_claimer(&states, i)) {
        CHECK(!"reset left a page claimed");
        break;
      }
  }
  pthread_barrier_destroy(&start_line);

  /* Reset for the next alloc: it clears what a longer earlier use left past the last count
   * too (here: page PAGES + 5 of a longer array), and that alloc clears nothing. */
  REQUIRE(ugc_page_states_alloc(&states, PAGES + 8) == 0);
  CHECK(ugc_page_try_claim(&states, PAGES + 5, UGC_PAGE_BY_GC));
  REQUIRE(ugc_page_states_alloc(&states, PAGES) == 0);
  CHECK(ugc_page_try_claim(&states, 7, UGC_PAGE_BY_GC));
  ugc_page_states_reset_for_next(&states);
  CHECK_EQ_U64(ugc_page_get(&states, 7), UGC_PAGE_UNPROCESSED);
  CHECK_EQ_U64(ugc_page_get(&states, PAGES + 5), UGC_PAGE_UNPROCESSED);
  REQUIRE(ugc_page_states_alloc(&states, PAGES + 8) == 0);
  for (size_t i = 0; i < PAGES + 8; i++)
    if (ugc_page_get(&states, i) != UGC_PAGE_UNPROCESSED) {
      CHECK(!"alloc after reset_for_next left a page claimed");
      break;
    }

  /* Growth maps a bigger array and keeps the old one mapped until the next reset (never
   * unmapped in the pause that grew it); free empties the struct and may be repeated. */
  size_t old_bytes = states.mapped_bytes;
  REQUIRE(ugc_page_states_alloc(&states, 3 * PAGES) == 0);
  CHECK(states.mapped_bytes >= 3 * PAGES * sizeof(uint32_t));
  CHECK(states.retired != NULL && states.retired_bytes == old_bytes);
  for (size_t i = 0; i < 3 * PAGES; i++)
    if (ugc_page_get(&states, i) != UGC_PAGE_UNPROCESSED) {
      CHECK(!"a grown array holds a claimed page");
      break;
    }
  CHECK(ugc_page_try_claim(&states, 3 * PAGES - 1, UGC_PAGE_BY_MUTATOR));
  CHECK_EQ_U64(ugc_page_claimer(&states, 3 * PAGES - 1), UGC_PAGE_BY_MUTATOR);
  ugc_page_states_reset_for_next(&states);
  CHECK(states.retired == NULL && states.retired_bytes == 0);
  /* A small growth maps at least twice the old size: a heap growing by a few pages per
   * cycle does not remap every cycle. */
  size_t grown = states.mapped_bytes;
  REQUIRE(ugc_page_states_alloc(&states, grown / sizeof(uint32_t) + 1) == 0);
  CHECK(states.mapped_bytes >= 2 * grown);
  CHECK_EQ_U64(ugc_page_get(&states, 3 * PAGES - 1), UGC_PAGE_UNPROCESSED);
  REQUIRE(ugc_page_states_alloc(&states, grown / sizeof(uint32_t) + 2) == 0);
  CHECK(states.mapped_bytes >= 2 * grown && states.retired_bytes == grown);
  ugc_page_states_reset(&states);
  CHECK(states.retired == NULL);
  ugc_page_states_free(&states);
  CHECK(states.words == NULL && states.count == 0 && states.mapped_bytes == 0);
  ugc_page_states_free(&states);
  REQUIRE(ugc_page_states_alloc(&states, 0) == 0);
  ugc_page_states_reset(&states);
  ugc_page_states_free(&states);
  TEST_DONE();
}
