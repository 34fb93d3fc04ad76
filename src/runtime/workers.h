/* The collector's worker pool: runs fn(ctx, i, worker) for every i in [0, n) on all its
 * threads at once, the calling thread included (worker 0). Used for parallel marking (one
 * index per worker) and parallel page building (one index per page).
 *
 * Threads start on first use, so heaps that never collect never spawn any, and a child
 * process after fork() (where the pool's threads do not exist) starts its own. */
#ifndef UGC_RUNTIME_WORKERS_H
#define UGC_RUNTIME_WORKERS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "os/thread_pool.h"

typedef void (*ugc_work_fn)(void *ctx, size_t index, unsigned worker);

typedef struct ugc_workers {
  unsigned count;       /* threads taking part, the caller included (>= 1) */
  ugc_thread_pool pool; /* count - 1 helpers, workers 1 .. count - 1 */
  /* The current job. */
  ugc_work_fn fn;
  void *ctx;
  size_t n, grain;
  _Atomic size_t next;
} ugc_workers;

void ugc_workers_init(ugc_workers *workers, unsigned count);
void ugc_workers_destroy(ugc_workers *workers);

/* Runs the job and returns when every index is done. Indices are claimed `grain` at a
 * time (>= 1). Not reentrant: one job at a time (the collector holds the heap lock).
 * The same as ugc_workers_start followed by ugc_workers_finish. */
void ugc_workers_run(ugc_workers *workers, size_t n, size_t grain, ugc_work_fn fn, void *ctx);

/* The two halves of ugc_workers_run, for a caller that works on its own first and brings
 * the helpers in only once there is enough to share (parallel marking):
 * ugc_workers_start wakes the helpers on the job and returns at once; ugc_workers_finish
 * runs the indices nobody claimed yet on the calling thread (worker 0), then waits for the
 * helpers that joined. Helpers that had not woken up by then skip the job. */
void ugc_workers_start(ugc_workers *workers, size_t n, size_t grain, ugc_work_fn fn, void *ctx);
void ugc_workers_finish(ugc_workers *workers);

/* After fork() in the child: forget the parent's threads and locks. */
void ugc_workers_after_fork_child(ugc_workers *workers);

/* CPU time the helper threads spent in jobs so far (the caller's is its own). */
uint64_t ugc_workers_cpu_ns(ugc_workers *workers);

#endif
