/* The GC threads of concurrent compaction: they live across cycles (so the compaction pause
 * never pays for thread creation), sleep between cycles, and each runs
 * ugc_concurrent_gc_work with its own batch buffer when a compaction is kicked off. */
#ifndef UGC_COMPACT_COMPACT_THREADS_H
#define UGC_COMPACT_COMPACT_THREADS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "compact/concurrent.h"

typedef struct ugc_compact_threads {
  unsigned count;   /* threads wanted */
  unsigned started; /* threads running (0 until the first kick, and in a fork child) */
  pthread_t *threads;
  void **batches; /* one batch buffer per thread */
  pid_t owner_pid;
  pthread_mutex_t lock;
  pthread_cond_t kick_cond, done_cond;
  uint64_t generation; /* bumped per kick */
  unsigned running;    /* threads still inside the current job */
  bool stopping;
  ugc_concurrent *job;
  _Atomic uint64_t cpu_ns; /* thread CPU time spent in jobs */
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
/* fork(): prepare takes the pool's lock (no job may be running: the caller waited for
 * it), parent releases it, child re-initialises the lock and condition variables and
 * forgets the parent's threads (the next kick starts new ones). */
void ugc_compact_threads_fork_prepare(ugc_compact_threads *t);
void ugc_compact_threads_fork_parent(ugc_compact_threads *t);
void ugc_compact_threads_fork_child(ugc_compact_threads *t);
/* Stops and joins the threads, frees the buffers. */
void ugc_compact_threads_destroy(ugc_compact_threads *t);

#endif
