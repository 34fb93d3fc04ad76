/* The event listener (include/uffdgc.h) and the per-cycle reports that follow the same
 * points: the embedder's callbacks and the UFFDGC_TRACE lines of the concurrent phase.
 *
 * The collector calls these at fixed points; this file keeps the order the header promises
 * although the points run on different threads: a concurrent compaction may complete (and
 * report) before the collecting thread has resumed the world and reported pause_done, so
 * its report waits here until pause_done went out. */
#ifndef UGC_RUNTIME_EVENTS_H
#define UGC_RUNTIME_EVENTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "uffdgc.h"

typedef struct ugc_compaction_report {
  uint64_t concurrent_ns; /* end of the pause to the last page mapped */
  uint64_t pages_by_gc, pages_by_mutator, pages_helped;
} ugc_compaction_report;

typedef struct ugc_events {
  pthread_mutex_t lock; /* serialises callbacks, registration and the fields below */
  ugc_event_listener listener;
  uint64_t cycle;          /* the cycle started last */
  uint64_t pause_ns;       /* its pause, for pause_done */
  uint64_t pause_reported; /* the last cycle whose pause_done went out */
  bool in_flight;          /* a concurrent compaction of `cycle` runs */
  bool report_waiting;     /* it finished before pause_done went out: `waiting` holds it */
  ugc_compaction_report waiting;
  ugc_histogram stall_before; /* stalls before this compaction (trace only) */
} ugc_events;

void ugc_events_init(ugc_events *events);
void ugc_events_destroy(ugc_events *events);

/* ---- the collecting thread, world stopped, heap lock held (collect.c) ---- */
void ugc_event_cycle_start(ugc_heap *heap, uint64_t cycle);
void ugc_event_mark_done(ugc_heap *heap, uint64_t live_bytes, uint64_t mark_ns);
void ugc_event_heap_resized(ugc_heap *heap, uint64_t old_bytes, uint64_t new_bytes);
/* The pause ends (reported by ugc_event_pause_done once the world runs again). */
void ugc_event_pause_end(ugc_heap *heap, uint64_t pause_ns);

/* ---- the collecting thread, after ugc_world_resume (collect.c) ---- */
/* Reports pause_done, then compaction_done when the compaction is complete already (it ran
 * in the pause, or a concurrent one finished meanwhile). */
void ugc_event_pause_done(ugc_heap *heap);

/* ---- concurrent backends ---- */
/* In the pause, once the compaction really goes on concurrently (not for an in-pause
 * fallback): compaction_done then waits for ugc_compaction_finished. */
void ugc_compaction_started(ugc_heap *heap);
/* When the compaction is complete (from-space released, statistics folded): reports
 * compaction_done and the trace line of the concurrent phase. Any thread, any locks of the
 * backend held; not inside a signal handler. */
void ugc_compaction_finished(ugc_heap *heap, const ugc_compaction_report *report);

/* ---- allocation (alloc.c) ---- */
/* Reports alloc_failure, then calls the configured oom_handler. */
void ugc_alloc_failed(ugc_heap *heap, size_t requested_bytes);

#endif
