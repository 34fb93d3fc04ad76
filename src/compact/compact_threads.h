/* The GC threads of concurrent compaction: they live across cycles (so the compaction pause
 * never pays for thread creation), sleep between cycles, and each runs
 * ugc_concurrent_gc_work with its own batch buffer when a compaction is kicked off. */
#ifndef UGC_COMPACT_COMPACT_THREADS_H
#define UGC_COMPACT_COMPACT_THREADS_H

#include <pthread.h>
#include <stdbool.h>
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
  /* A kick deferred from the compaction pause to just after it (see
   * ugc_compact_threads_defer): kick_pending under kick_lock. */
  pthread_mutex_t kick_lock;
  bool kick_pending;
  ugc_concurrent *deferred_job;
  void *spare_batch; /* for a thread that does a deferred job's work itself */
  /* One outside thread at a time helps a running job (ugc_compact_threads_assist). */
  pthread_mutex_t assist_lock;
  void *assist_batch;
  size_t assist_pages; /* taken by the assist in progress (assist_lock held) */
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
/* Deferred kick. The compaction pause sets the job up but wakes no thread: on a machine with
 * few CPUs a woken GC thread preempts the thread that is ending the pause, which then waits
 * out the GC thread's time slice with the world stopped (1-9 ms at 256 MiB on 2 vCPUs,
 * growing with the pages to build). The collector kicks the job right after the world
 * resumes (ugc_compact_threads_start_deferred); a thread that must complete the job before
 * that (a compact_wait in the pause, verify mode 2) takes it and does the work itself
 * (ugc_compact_threads_run_deferred_here). kick_lock orders the two: the job is kicked
 * once or done by the taker, never neither. */
void ugc_compact_threads_defer(ugc_compact_threads *t, ugc_concurrent *job);
/* Kicks the deferred job if it is still pending; when no thread can be started, does its
 * work here. */
void ugc_compact_threads_start_deferred(ugc_compact_threads *t);
/* Takes a still pending deferred job and does its work here (before
 * ugc_compact_threads_wait). */
void ugc_compact_threads_run_deferred_here(ugc_compact_threads *t);
/* The calling thread (a mutator that has nothing else to do: it waits for heap memory the
 * next cycle gives back, or for a collection it asked for, which cannot start before this
 * compaction ends) builds pages of the running job beside the GC threads, until none is
 * left to take. Returns the pages it took; 0 at once when no job runs or another thread
 * assists already. */
size_t ugc_compact_threads_assist(ugc_compact_threads *t);
/* Waits until every thread has returned from the current job. */
void ugc_compact_threads_wait(ugc_compact_threads *t);
/* fork(): the pool's own handlers and the kick lock (no job may be running at prepare: the
 * caller waited for it); the child's next kick starts new threads. */
void ugc_compact_threads_fork_prepare(ugc_compact_threads *t);
void ugc_compact_threads_fork_parent(ugc_compact_threads *t);
void ugc_compact_threads_fork_child(ugc_compact_threads *t);
/* Takes the CPU time the threads spent in jobs since the last call. */
uint64_t ugc_compact_threads_take_cpu_ns(ugc_compact_threads *t);
/* Stops and joins the threads, frees the buffers. */
void ugc_compact_threads_destroy(ugc_compact_threads *t);

#endif
