/* Heap sizing and the collection trigger (see docs/design.md, "Heap sizing").
 *
 * The heap's target size follows the live data: max(heap_initial, live * growth_factor),
 * at most heap_max. With concurrent marking the cycle must also start early enough that
 * the mutators do not fill the heap up to heap_max while it marks: the trigger leaves room
 * for what they allocated during the last cycles' marking (allocation rate times marking
 * time, smoothed), with a margin. */
#ifndef UGC_RUNTIME_SIZING_H
#define UGC_RUNTIME_SIZING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ugc_sizing {
  /* The current cycle: its initial pause and the occupancy then (moving space + other
   * allocation). Memory comes back only at the final pause: that is the window to cover. */
  uint64_t start_ns;
  size_t start_occupancy;
  double alloc_rate; /* bytes per ns allocated in that window, smoothed */
  double window_ns;  /* its length, smoothed */
  /* How far occupancy went past the trigger by the final pause, smoothed as the rate: the
   * window above plus the wait of a cycle asked for while a compaction still ran. */
  double overshoot;
  bool estimated; /* a concurrent cycle has been measured */
  /* A mutator found the heap full since the last compaction pause: what it would have
   * allocated is not in the measured rate, and the next cycle will reach the limit too. */
  bool ran_full;
} ugc_sizing;

struct ugc_heap;

/* The initial pause of a concurrent cycle (heap lock held, TLABs retired). */
void ugc_sizing_mark_started(struct ugc_heap *heap);
/* The final pause of a concurrent cycle, before its TLABs are retired (heap lock held). */
void ugc_sizing_mark_ended(struct ugc_heap *heap);
/* A mutator found the heap full and waits for a collection (heap lock held). */
void ugc_sizing_ran_full(struct ugc_heap *heap);
/* The moving-space occupancy that starts the next collection, from the live bytes of the
 * moving space and of the other spaces after this collection; forgets ran_full (after the
 * compaction pause has chosen what to keep). Heap lock held. */
size_t ugc_sizing_next_trigger(struct ugc_heap *heap, size_t moving_live, size_t other_live);
/* The room the trigger leaves below the hard limit for allocation during marking. */
size_t ugc_sizing_headroom(const struct ugc_heap *heap);
/* The size target from the live data: live * growth_factor, between heap_initial and
 * heap_max. */
size_t ugc_sizing_target(const struct ugc_heap *heap, size_t moving_live);
/* How far past the trigger the next cycle's allocation is expected to reach: the headroom,
 * or more when cycles started late (asked for while a compaction still ran). */
size_t ugc_sizing_reach(const struct ugc_heap *heap);

#endif
