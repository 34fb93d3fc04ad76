/* Heap sizing and the early trigger of concurrent cycles (see sizing.h). */
#include "runtime/sizing.h"

#include "os/time.h"
#include "runtime/heap.h"

/* The room left is this many times what the last cycles allocated while marking: rates
 * vary from cycle to cycle, and running out costs a wait. */
#define HEADROOM_MARGIN 1.5
/* The room is at least heap_max / this: the collector thread may be descheduled for a
 * while before it starts a cycle, longer than any cycle measured so far. */
#define HEADROOM_FLOOR_DIVISOR 16
/* Weight of the newest cycle in the smoothed rate and marking time. */
#define SMOOTHING 0.5

static size_t occupancy(const ugc_heap *heap) {
  return (heap->moving.top - heap->moving.base) + heap->other_since_gc;
}

/* The window opens at the initial pause, not when allocation crossed the trigger: a cycle
 * asked for while the last compaction still runs waits for it, and counting that wait
 * would feed back. A larger headroom moves the trigger down, closer to the occupancy a
 * compaction leaves, so the next request comes during the compaction, waits longer, and
 * measures a longer window: on `cold` with the move backend the headroom reached the
 * whole heap, the trigger sat at the occupancy after every cycle, and cycles ran back to
 * back with mutators allocating black through each (60-70 MiB of floating garbage per
 * cycle at a 128 MiB heap, 0.8-1.8 s of waits for a full heap per run). */
void ugc_sizing_mark_started(ugc_heap *heap) {
  heap->sizing.start_ns = ugc_now_ns();
  heap->sizing.start_occupancy = occupancy(heap);
}

void ugc_sizing_mark_ended(ugc_heap *heap) {
  ugc_sizing *s = &heap->sizing;
  uint64_t now = ugc_now_ns();
  size_t occupied = occupancy(heap);
  /* TLABs handed out count whole: an upper bound of what was allocated. */
  double allocated = occupied > s->start_occupancy ? (double)(occupied - s->start_occupancy) : 0;
  double duration = now > s->start_ns ? (double)(now - s->start_ns) : 1;
  double rate = allocated / duration;
  /* Past the trigger: the wait for a compaction in progress included (see above). */
  double overshoot = occupied > heap->trigger_bytes ? (double)(occupied - heap->trigger_bytes) : 0;
  if (!s->estimated) {
    s->alloc_rate = rate;
    s->window_ns = duration;
    s->overshoot = overshoot;
    s->estimated = true;
    return;
  }
  /* A burst must raise the estimate at once; a quiet cycle lowers it only gradually. */
  s->alloc_rate = rate > s->alloc_rate ? rate : SMOOTHING * rate + (1 - SMOOTHING) * s->alloc_rate;
  s->window_ns =
      duration > s->window_ns ? duration : SMOOTHING * duration + (1 - SMOOTHING) * s->window_ns;
  s->overshoot =
      overshoot > s->overshoot ? overshoot : SMOOTHING * overshoot + (1 - SMOOTHING) * s->overshoot;
}

void ugc_sizing_ran_full(ugc_heap *heap) {
  heap->sizing.ran_full = true;
}

size_t ugc_sizing_headroom(const ugc_heap *heap) {
  const ugc_sizing *s = &heap->sizing;
  if (!heap->cmark)
    return 0;
  size_t floor = heap->config.heap_max / HEADROOM_FLOOR_DIVISOR;
  double room = s->estimated ? HEADROOM_MARGIN * s->alloc_rate * s->window_ns : 0;
  if (room < (double)floor)
    return floor;
  return room < (double)heap->config.heap_max ? (size_t)room : heap->config.heap_max;
}

size_t ugc_sizing_target(const ugc_heap *heap, size_t moving_live) {
  const ugc_config *config = &heap->config;
  double grown = (double)moving_live * config->growth_factor;
  size_t target = grown > (double)config->heap_max ? config->heap_max : (size_t)grown;
  return target > config->heap_initial ? target : config->heap_initial;
}

size_t ugc_sizing_reach(const ugc_heap *heap) {
  size_t headroom = ugc_sizing_headroom(heap);
  double overshoot = heap->sizing.overshoot;
  if (overshoot > (double)heap->config.heap_max)
    return heap->config.heap_max;
  return (size_t)overshoot > headroom ? (size_t)overshoot : headroom;
}

size_t ugc_sizing_next_trigger(ugc_heap *heap, size_t moving_live, size_t other_live) {
  const ugc_config *config = &heap->config;
  heap->sizing.ran_full = false;
  size_t target = ugc_sizing_target(heap, moving_live);
  /* The hard limit in the trigger's terms: the other spaces' live objects count against
   * heap_max too. Concurrent marking starts early enough to leave the headroom below it. */
  size_t limit = other_live < config->heap_max ? config->heap_max - other_live : 0;
  size_t headroom = ugc_sizing_headroom(heap);
  size_t early = limit > headroom ? limit - headroom : 0;
  size_t trigger = target < early ? target : early;
  /* Never below what survived: past it every allocation would start a cycle at once (the
   * heap is too small for the allocation rate; mutators then wait, see alloc.c). */
  size_t used = heap->moving.top - heap->moving.base;
  return trigger > used ? trigger : used;
}
