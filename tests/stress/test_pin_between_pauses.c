/* A pin made after the plan was computed between the pauses of a concurrent cycle: the
 * plan moves the object, so the compaction pause must see the new pin and plan again. A
 * test hook holds every cycle right after its plan while another mutator pins an object
 * that has garbage below it; after the cycle the object must be where it was pinned, while
 * an unpinned twin moved; digests and the verifier clean. Skips when marking is not
 * concurrent (no pauses to pin between).
 *
 * UGC_TEST_ITERATIONS (default 20) cycles. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "runtime/concurrent_mark.h"

#define WAIT_SECONDS 60
#define GARBAGE 4000

static ugc_heap *heap;
static ugc_type_id leaf_type;
static void *target, *twin; /* global roots: the object to pin and an unpinned neighbour */
static atomic_uint window_gen, pinned_gen;
static atomic_bool window_open, stop;
static _Atomic(uintptr_t) pinned_address;

static void hold_after_plan(void *data) {
  (void)data;
  unsigned gen = atomic_fetch_add(&window_gen, 1) + 1;
  atomic_store(&window_open, true);
  time_t deadline = time(NULL) + 10;
  while (atomic_load(&pinned_gen) != gen && !atomic_load(&stop) && time(NULL) < deadline)
    nanosleep(&(struct timespec){0, 100 * 1000}, NULL);
  atomic_store(&window_open, false);
}

/* Pins `target` in every window; waits between windows at safepoints. */
static void *pinner_main(void *arg) {
  (void)arg;
  ugc_mutator *m = fixture_attach(heap);
  unsigned seen = 0;
  time_t deadline = time(NULL) + WAIT_SECONDS;
  while (!atomic_load(&stop)) {
    ugc_safepoint(m);
    if (!atomic_load(&window_open) || atomic_load(&window_gen) == seen) {
      nanosleep(&(struct timespec){0, 50 * 1000}, NULL);
      REQUIRE(time(NULL) < deadline);
      continue;
    }
    seen = atomic_load(&window_gen);
    ugc_pin(m, target);
    atomic_store(&pinned_address, (uintptr_t)target);
    atomic_store(&pinned_gen, seen);
    deadline = time(NULL) + WAIT_SECONDS;
  }
  ugc_thread_detach(m);
  return NULL;
}

int main(void) {
  unsigned iterations = 20;
  const char *text = getenv("UGC_TEST_ITERATIONS");
  if (text && atoi(text) > 0)
    iterations = (unsigned)atoi(text);
  ugc_config config = fixture_config((size_t)64 << 20, 0);
  config.verify = 1;
  heap = fixture_heap(&config);
  leaf_type = fixture_leaf_type(heap, "leaf");
  ugc_mutator *m = fixture_attach(heap);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  if (!stats.mark_concurrent_cycles) {
    ugc_thread_detach(m);
    ugc_heap_destroy(heap);
    SKIP("concurrent marking is off (UFFDGC_CONCURRENT_MARK=0): no pauses to pin between");
  }
  ugc_global_root_add(heap, &target);
  ugc_global_root_add(heap, &twin);
  pthread_t pinner;
  REQUIRE(pthread_create(&pinner, NULL, pinner_main, NULL) == 0);
  ugc_cmark_set_after_plan_hook(heap, hold_after_plan, NULL);
  unsigned kept = 0, twin_moved = 0;
  for (unsigned i = 0; i < iterations; i++) {
    /* Garbage that dies in this cycle below both: what is above it moves. The twin lies
     * pages away from the target, outside the pages the pin keeps. */
    for (int g = 0; g < GARBAGE; g++)
      ugc_alloc(m, leaf_type, 48);
    twin = ugc_alloc(m, leaf_type, 64);
    for (int g = 0; g < GARBAGE; g++)
      ugc_alloc(m, leaf_type, 48);
    target = ugc_alloc(m, leaf_type, 64);
    memset(target, 0x5A, 64);
    void *twin_before = twin;
    unsigned gen = atomic_load(&pinned_gen);
    uint64_t digest = ugc_graph_digest(m);
    ugc_collect(m, UGC_COLLECT_FULL);
    ugc_collect(m, UGC_COLLECT_FINISH);
    CHECK_EQ_U64(ugc_graph_digest(m), digest);
    ugc_error error;
    CHECK(ugc_verify(m, &error) == 0);
    if (atomic_load(&pinned_gen) == gen)
      continue; /* the window timed out: nothing pinned in this cycle */
    kept += (uintptr_t)target == atomic_load(&pinned_address);
    CHECK((uintptr_t)target == atomic_load(&pinned_address));
    twin_moved += twin != twin_before;
    CHECK_EQ_U64(ugc_pin_count(m, target), 1);
    ugc_unpin(m, target);
  }
  atomic_store(&stop, true);
  ugc_cmark_set_after_plan_hook(heap, NULL, NULL);
  ugc_blocking_enter(m);
  pthread_join(pinner, NULL);
  ugc_blocking_leave(m);
  printf("pin_between_pauses: backend %s, %u cycles, pinned object kept in %u, its twin moved "
         "in %u\n",
         ugc_heap_backend(heap), iterations, kept, twin_moved);
  CHECK(kept >= iterations / 2);
  CHECK(twin_moved >= iterations / 2);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
