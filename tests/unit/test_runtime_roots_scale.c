/* Global roots and weak slots at scale: 160,000 of each registered, most removed in a
 * shuffled order (the removals are timed and printed, never asserted), some registered
 * twice. Afterwards exactly the slots still registered act: the objects of remaining global
 * roots survive a collection and move with it, those only held by removed roots die (seen
 * through remaining weak slots, which are cleared), removed weak slots are left alone. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fixture.h"

enum { SLOTS = 160000, KEPT_EVERY = 16 };

static void *globals[SLOTS];
static void *weaks[SLOTS];

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int main(void) {
  ugc_heap *heap = fixture_heap_sized(256u << 20, 64u << 20);
  ugc_mutator *m = fixture_attach(heap);
  ugc_type_id t_leaf = fixture_leaf_type(heap, "leaf");

  for (size_t i = 0; i < SLOTS; i++) {
    globals[i] = ugc_alloc(m, t_leaf, 16);
    REQUIRE(globals[i]);
    memcpy(globals[i], &i, sizeof i);
    weaks[i] = globals[i];
    ugc_global_root_add(heap, &globals[i]);
    ugc_weak_add(heap, &weaks[i]);
  }
  /* Slots 1, 17, 33, ... are registered twice: one removal leaves them registered. */
  for (size_t i = 1; i < SLOTS; i += KEPT_EVERY) {
    ugc_global_root_add(heap, &globals[i]);
    ugc_weak_add(heap, &weaks[i]);
  }
  size_t order[SLOTS];
  for (size_t i = 0; i < SLOTS; i++)
    order[i] = i;
  uint64_t seed = 0x243F6A8885A308D3u;
  for (size_t i = SLOTS - 1; i > 0; i--) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    size_t j = (size_t)(seed >> 33) % (i + 1);
    size_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  /* Keep the global roots of i % KEPT_EVERY == 0 and the weak slots of i % KEPT_EVERY == 2;
   * remove every other registration once. */
  size_t removals = 0;
  uint64_t start = now_ns();
  for (size_t k = 0; k < SLOTS; k++) {
    size_t i = order[k];
    if (i % KEPT_EVERY != 0) {
      ugc_global_root_remove(heap, &globals[i]);
      removals++;
    }
    if (i % KEPT_EVERY != 2) {
      ugc_weak_remove(heap, &weaks[i]);
      removals++;
    }
  }
  uint64_t elapsed = now_ns() - start;
  printf("roots_scale: %zu removals among %d global roots and %d weak slots in %.1f ms\n", removals,
         SLOTS, SLOTS, elapsed / 1e6);

  void *removed_weak_values[SLOTS / KEPT_EVERY];
  for (size_t i = 3, n = 0; i < SLOTS; i += KEPT_EVERY)
    removed_weak_values[n++] = weaks[i];
  /* Removed global roots are ordinary memory now: the collector must not update them. */
  void *stale = globals[4];
  ugc_collect(m, UGC_COLLECT_FULL);
  CHECK(globals[4] == stale);
  size_t live = 0;
  for (size_t i = 0; i < SLOTS; i++) {
    bool kept = i % KEPT_EVERY == 0 || i % KEPT_EVERY == 1; /* 1: registered twice */
    if (kept) {
      size_t id = 0;
      memcpy(&id, globals[i], sizeof id);
      CHECK_EQ_U64(id, i);
      live++;
    }
    if (i % KEPT_EVERY == 2) /* a remaining weak slot to an object no root holds */
      CHECK(weaks[i] == NULL);
    if (i % KEPT_EVERY == 1) /* registered twice, removed once: still weak, still live */
      CHECK(weaks[i] == globals[i]);
  }
  for (size_t i = 3, n = 0; i < SLOTS; i += KEPT_EVERY)
    CHECK(weaks[i] == removed_weak_values[n++]); /* removed: never cleared nor updated */
  ugc_error error;
  CHECK(ugc_verify(m, &error) == 0);
  printf("roots_scale: %zu objects kept by the remaining roots\n", live);
  for (size_t i = 0; i < SLOTS; i += KEPT_EVERY) {
    ugc_global_root_remove(heap, &globals[i]);
    ugc_global_root_remove(heap, &globals[i + 1]);
    ugc_weak_remove(heap, &weaks[i + 1]);
    ugc_weak_remove(heap, &weaks[i + 2]);
  }
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
