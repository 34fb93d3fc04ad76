/* Heap sizing (runtime/sizing.c) and the extent a backend keeps memory for
 * (ugc_heap_next_extent), driven directly on a heap that no mutator uses:
 *   - the headroom is what mutators allocated between a cycle's initial pause and its
 *     compaction pause, times the margin (1.5), at least heap_max / 16; what was allocated
 *     before the initial pause (while the cycle waited for the last compaction, say) does
 *     not count: counting it fed back into ever earlier triggers;
 *   - the extent is max(heap_initial, live x growth_factor) plus the headroom, at most
 *     heap_max (a live set below heap_initial / growth_factor once lost the headroom), or
 *     plus how far occupancy went past the trigger, when cycles start late;
 *   - after a mutator found the heap full, the extent is heap_max until the next
 *     collection's trigger is computed. */
#include <time.h>

#include "fixture.h"
#include "runtime/heap.h"

#define MiB ((size_t)1 << 20)

enum { HEAP_MAX = 512, HEAP_INITIAL = 64 }; /* MiB; the headroom floor is 32 MiB */

static void sleep_ms(long ms) {
  struct timespec pause = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
  nanosleep(&pause, NULL);
}

/* One measured window: `before` bytes allocated before the initial pause, `during` between
 * it and the compaction pause, `ms` milliseconds apart. Occupancy is faked through
 * other_since_gc (allocation in the other spaces counts as moving-space allocation does). */
static void window(ugc_heap *heap, size_t before, size_t during, long ms) {
  pthread_mutex_lock(&heap->lock);
  size_t saved = heap->other_since_gc;
  heap->other_since_gc += before;
  ugc_sizing_mark_started(heap);
  pthread_mutex_unlock(&heap->lock);
  sleep_ms(ms);
  pthread_mutex_lock(&heap->lock);
  heap->other_since_gc += during;
  ugc_sizing_mark_ended(heap);
  heap->other_since_gc = saved;
  pthread_mutex_unlock(&heap->lock);
}

static ugc_heap *sizing_heap(void) {
  ugc_config config = fixture_config((size_t)HEAP_MAX * MiB, (size_t)HEAP_INITIAL * MiB);
  config.backend = "stw";
  config.concurrent_mark = 1;
  return fixture_heap(&config);
}

static bool near(size_t value, size_t expected) {
  size_t slack = MiB / 4; /* the rate is a double: rounding only */
  return value + slack >= expected && value <= expected + slack;
}

static void headroom_from_marking_window(void) {
  ugc_heap *heap = sizing_heap();
  CHECK_EQ_U64(ugc_sizing_headroom(heap), (size_t)HEAP_MAX * MiB / 16); /* nothing measured */
  /* 200 MiB allocated before the initial pause, 40 MiB in the window. */
  window(heap, 200 * MiB, 40 * MiB, 20);
  size_t headroom = ugc_sizing_headroom(heap);
  printf("headroom after 40 MiB in the window (200 MiB before it): %.1f MiB\n",
         (double)headroom / MiB);
  CHECK(near(headroom, 60 * MiB));
  /* A quiet window (nothing allocated) halves the estimate, down to the floor. */
  window(heap, 0, 0, 20);
  window(heap, 0, 0, 20);
  headroom = ugc_sizing_headroom(heap);
  printf("after two quiet windows: %.1f MiB\n", (double)headroom / MiB);
  CHECK(headroom < 60 * MiB);
  CHECK(headroom >= (size_t)HEAP_MAX * MiB / 16);
  ugc_heap_destroy(heap);
}

static void extent_covers_the_next_cycle(void) {
  ugc_heap *heap = sizing_heap();
  window(heap, 0, 100 * MiB, 10); /* headroom 150 MiB */
  size_t headroom = ugc_sizing_headroom(heap);
  pthread_mutex_lock(&heap->lock);
  size_t small = ugc_heap_next_extent(heap, 1 * MiB);       /* 2 MiB x 2 < heap_initial */
  size_t large = ugc_heap_next_extent(heap, 100 * MiB);     /* 200 MiB + headroom */
  size_t too_large = ugc_heap_next_extent(heap, 300 * MiB); /* over heap_max */
  pthread_mutex_unlock(&heap->lock);
  printf("headroom %.1f MiB; extents %.1f, %.1f, %.1f MiB\n", (double)headroom / MiB,
         (double)small / MiB, (double)large / MiB, (double)too_large / MiB);
  CHECK(near(small, (size_t)HEAP_INITIAL * MiB + headroom));
  CHECK(near(large, 200 * MiB + headroom));
  CHECK_EQ_U64(too_large, (size_t)HEAP_MAX * MiB);
  ugc_heap_destroy(heap);
}

/* A cycle asked for while a compaction still ran starts late: occupancy goes further past
 * the trigger than the headroom (measured from the initial pause) says. The extent covers
 * that overshoot; the trigger does not move for it. */
static void extent_covers_a_late_start(void) {
  ugc_heap *heap = sizing_heap();
  window(heap, 0, 10 * MiB, 10); /* headroom: the floor, 32 MiB */
  size_t headroom = ugc_sizing_headroom(heap);
  pthread_mutex_lock(&heap->lock);
  size_t trigger_before = ugc_sizing_next_trigger(heap, 1 * MiB, 0);
  heap->trigger_bytes = trigger_before;
  pthread_mutex_unlock(&heap->lock);
  /* 60 MiB past the trigger (64 MiB) by the compaction pause, 10 MiB of it after the
   * initial pause. */
  window(heap, trigger_before + 50 * MiB, 10 * MiB, 10);
  pthread_mutex_lock(&heap->lock);
  size_t reach = ugc_sizing_reach(heap);
  size_t extent = ugc_heap_next_extent(heap, 1 * MiB);
  size_t trigger_after = ugc_sizing_next_trigger(heap, 1 * MiB, 0);
  pthread_mutex_unlock(&heap->lock);
  printf("headroom %.1f MiB, reach %.1f MiB, extent %.1f MiB, trigger %.1f -> %.1f MiB\n",
         (double)ugc_sizing_headroom(heap) / MiB, (double)reach / MiB, (double)extent / MiB,
         (double)trigger_before / MiB, (double)trigger_after / MiB);
  CHECK_EQ_U64(ugc_sizing_headroom(heap), headroom);
  CHECK(near(reach, 60 * MiB));
  CHECK(near(extent, (size_t)HEAP_INITIAL * MiB + 60 * MiB));
  CHECK_EQ_U64(trigger_after, trigger_before);
  ugc_heap_destroy(heap);
}

static void full_heap_keeps_everything(void) {
  ugc_heap *heap = sizing_heap();
  pthread_mutex_lock(&heap->lock);
  ugc_sizing_ran_full(heap);
  CHECK_EQ_U64(ugc_heap_next_extent(heap, 1 * MiB), (size_t)HEAP_MAX * MiB);
  (void)ugc_sizing_next_trigger(heap, 1 * MiB, 0); /* the end of the collection */
  size_t after = ugc_heap_next_extent(heap, 1 * MiB);
  pthread_mutex_unlock(&heap->lock);
  CHECK(after < (size_t)HEAP_MAX * MiB);
  ugc_heap_destroy(heap);
}

int main(void) {
  headroom_from_marking_window();
  extent_covers_the_next_cycle();
  extent_covers_a_late_start();
  full_heap_keeps_everything();
  return ugc_test_failures ? 1 : 0;
}
