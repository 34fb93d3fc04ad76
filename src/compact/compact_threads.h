/* The GC threads of concurrent compaction: they live across cycles (so the compaction pause
 * never pays for thread creation), sleep between cycles, and each runs
 * ugc_concurrent_gc_work with its own batch buffer when a compaction is kicked off. */
#ifndef UGC_COMPACT_COMPACT_THREADS_H
#define UGC_COMPACT_COMPACT_THREADS_H

#include <stdint.h>

#include "compact/concurrent.h"
#include "os/thread_pool.h"

typedef struct ugc_compact_threads {
  ugc_thread_pool pool; /* one thread per batch buffer */
  void **batches;       /* one batch buffer per thread */
  ugc_concurrent *job;
  /* Called by the thread that finishes a job last, without the pool's lock, with the
   * generation of that job (see ugc_compact_threads_on_idle). */
  void (*on_idle)(void *data, uint64_t generation);
  void *on_idle_data;
} ugc_compact_threads;

/* Sets up a pool of `count` (>= 1) threads; they start on the first kick. */
void ugc_compact_threads_init(ugc_compact_threads *t, unsigned count);
/* Sets the callback the last thread of each job calls once its work is done (NULL: none).
 * Before the first kick. The callback may complete the job (ugc_compact_threads_wait
 * returns at once there) but must not kick a new one. */
void ugc_compact_threads_on_idle(ugc_compact_threads *t, void (*fn)(void *, uint64_t), void *data);
/* The generation the next kick will start (only the kicking thread may ask). */
uint64_t ugc_compact_threads_next_generation(const ugc_compact_threads *t);
/* Starts every thread on `job` (ugc_concurrent_gc_work) and returns at once.
 * 0, or -1 when no thread could be started (the caller must then do the work itself). */
int ugc_compact_threads_kick(ugc_compact_threads *t, ugc_concurrent *job);
/* Waits until every thread has returned from the current job. */
void ugc_compact_threads_wait(ugc_compact_threads *t);
/* fork(): the pool's own handlers, ugc_thread_pool_fork_* on t->pool (no job may be
 * running at prepare: the caller waited for it); the child's next kick starts new threads. */
/* Takes the CPU time the threads spent in jobs since the last call. */
uint64_t ugc_compact_threads_take_cpu_ns(ugc_compact_threads *t);
/* Stops and joins the threads, frees the buffers. */
void ugc_compact_threads_destroy(ugc_compact_threads *t);

#endif
