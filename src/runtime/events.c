/* The event listener and the reports that follow the cycle's points (see events.h). */
#include "runtime/events.h"

#include <string.h>

#include "runtime/heap.h"
#include "runtime/trace.h"

void ugc_events_init(ugc_events *events) {
  memset(events, 0, sizeof *events);
  pthread_mutex_init(&events->lock, NULL);
}

void ugc_events_destroy(ugc_events *events) {
  pthread_mutex_destroy(&events->lock);
}

void ugc_set_event_listener(ugc_heap *heap, const ugc_event_listener *listener) {
  pthread_mutex_lock(&heap->events.lock);
  if (listener)
    heap->events.listener = *listener;
  else
    memset(&heap->events.listener, 0, sizeof heap->events.listener);
  pthread_mutex_unlock(&heap->events.lock);
}

void ugc_event_mark_done(ugc_heap *heap, uint64_t live_bytes, uint64_t mark_ns) {
  ugc_events *events = &heap->events;
  pthread_mutex_lock(&events->lock);
  if (events->listener.mark_done)
    events->listener.mark_done(events->listener.data, events->cycle, live_bytes, mark_ns);
  pthread_mutex_unlock(&events->lock);
}

void ugc_event_heap_resized(ugc_heap *heap, uint64_t old_bytes, uint64_t new_bytes) {
  ugc_events *events = &heap->events;
  pthread_mutex_lock(&events->lock);
  if (events->listener.heap_resized)
    events->listener.heap_resized(events->listener.data, old_bytes, new_bytes);
  pthread_mutex_unlock(&events->lock);
}

void ugc_event_pause_end(ugc_heap *heap, uint64_t pause_ns) {
  pthread_mutex_lock(&heap->events.lock);
  heap->events.pause_ns = pause_ns;
  pthread_mutex_unlock(&heap->events.lock);
}

/* compaction_done and the trace line of the concurrent phase. Events lock held. */
static void report_compaction(ugc_heap *heap, const ugc_compaction_report *report) {
  ugc_events *events = &heap->events;
  if (report && heap->config.trace) {
    ugc_histogram stalls;
    ugc_stats_lock(heap);
    ugc_histogram_since(&heap->stats.stall, &events->stall_before, &stalls);
    ugc_stats_unlock(heap);
    ugc_trace_compaction(heap, events->cycle, report, &stalls);
  }
  if (events->listener.compaction_done)
    events->listener.compaction_done(events->listener.data, events->cycle,
                                     report ? report->concurrent_ns : 0);
}

/* pause_done of events->cycle, then its compaction_done if the compaction is complete
 * already. Events lock held. */
static void report_pause_done(ugc_heap *heap) {
  ugc_events *events = &heap->events;
  events->pause_reported = events->cycle;
  if (events->listener.pause_done)
    events->listener.pause_done(events->listener.data, events->cycle, events->pause_ns);
  if (events->report_waiting) {
    events->report_waiting = false;
    report_compaction(heap, &events->waiting);
  } else if (!events->in_flight) {
    report_compaction(heap, NULL); /* compacted in the pause */
  }
}

void ugc_event_pause_done(ugc_heap *heap) {
  pthread_mutex_lock(&heap->events.lock);
  report_pause_done(heap);
  pthread_mutex_unlock(&heap->events.lock);
}

void ugc_event_cycle_start(ugc_heap *heap, uint64_t cycle) {
  ugc_events *events = &heap->events;
  pthread_mutex_lock(&events->lock);
  /* The last pause's pause_done has not gone out: this is a fork child, forked by another
   * thread between that pause and its report (the collecting thread does not exist here;
   * the fork waited for the compaction). Report it now to keep the order. */
  if (events->cycle && events->pause_reported != events->cycle)
    report_pause_done(heap);
  events->cycle = cycle;
  events->in_flight = false;
  events->report_waiting = false;
  if (events->listener.cycle_start)
    events->listener.cycle_start(events->listener.data, cycle);
  pthread_mutex_unlock(&events->lock);
}

void ugc_compaction_started(ugc_heap *heap) {
  ugc_events *events = &heap->events;
  pthread_mutex_lock(&events->lock);
  events->in_flight = true;
  if (heap->config.trace) {
    ugc_stats_lock(heap);
    events->stall_before = heap->stats.stall;
    ugc_stats_unlock(heap);
  }
  pthread_mutex_unlock(&events->lock);
}

void ugc_compaction_finished(ugc_heap *heap, const ugc_compaction_report *report) {
  ugc_events *events = &heap->events;
  pthread_mutex_lock(&events->lock);
  if (events->in_flight) {
    events->in_flight = false;
    if (events->pause_reported == events->cycle) {
      report_compaction(heap, report);
    } else {
      events->waiting = *report;
      events->report_waiting = true;
    }
  }
  pthread_mutex_unlock(&events->lock);
}

void ugc_alloc_failed(ugc_heap *heap, size_t requested_bytes) {
  ugc_events *events = &heap->events;
  pthread_mutex_lock(&events->lock);
  if (events->listener.alloc_failure)
    events->listener.alloc_failure(events->listener.data, requested_bytes);
  pthread_mutex_unlock(&events->lock);
  if (heap->config.oom_handler)
    heap->config.oom_handler(heap, requested_bytes, heap->config.oom_data);
}
