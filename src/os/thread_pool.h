/* The skeleton both of the collector's thread pools share (runtime/workers.c, the pause's
 * worker pool, and compact/compact_threads.c, the GC threads of concurrent compaction):
 * persistent named threads that sleep between jobs, are woken per job ("kick"), each run
 * `body(data, index)` once per job, and account the CPU time they spend in it.
 *
 * Threads start once per process on demand (heaps that never collect spawn none); after
 * fork() the child forgets the parent's threads and starts its own. A child created without
 * the fork handlers (raw clone) never uses the parent's threads: kicks do nothing there.
 *
 * Two ways to end a job: ugc_thread_pool_wait waits until every thread has run it (the GC
 * threads, which must all finish their share); ugc_thread_pool_close lets threads that had
 * not woken yet skip it and waits only for those inside it (the worker pool, whose caller has
 * done the rest itself: a wake-up costs 15-35 us on a VM). */
#ifndef UGC_OS_THREAD_POOL_H
#define UGC_OS_THREAD_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef void (*ugc_pool_body)(void *data, unsigned index);

typedef struct ugc_thread_pool {
  const char *name;   /* thread name (at most 15 characters) */
  const char *inject; /* fault-injection point checked before each thread start, or NULL */
  unsigned count;     /* threads wanted */
  unsigned started;   /* threads running */
  pthread_t *threads;
  pid_t owner_pid; /* the process that started them (0: none started yet) */
  pthread_mutex_t lock;
  pthread_cond_t wake_cond, done_cond;
  uint64_t generation; /* bumped per kick */
  unsigned left;       /* threads that have neither run nor skipped the current job */
  unsigned busy;       /* threads inside the current job */
  bool closed;         /* threads waking from now on skip the current job */
  bool stopping;
  ugc_pool_body body;
  void *data;
  /* Called without the lock by the thread that completes a job last (see on_last). */
  void (*on_last)(void *data, uint64_t generation);
  _Atomic uint64_t cpu_ns; /* CPU time the threads spent in jobs */
} ugc_thread_pool;

/* Sets up a pool of `count` threads named `name` that run `body(data, index)`, index in
 * [0, count), for every job. No thread starts here. */
void ugc_thread_pool_init(ugc_thread_pool *pool, unsigned count, const char *name,
                          ugc_pool_body body, void *data);
/* Sets the callback the thread that completes a job last calls (after waking the waiters)
 * with the job's generation; NULL for none. Before the first start. */
void ugc_thread_pool_on_last(ugc_thread_pool *pool, void (*fn)(void *, uint64_t));
/* Starts up to `wanted` (<= count) threads, once per process: later calls return what the
 * first one started. Returns how many threads this process can kick (0 in a child that did
 * not go through ugc_thread_pool_fork_child). A failed start is warned about. */
unsigned ugc_thread_pool_start(ugc_thread_pool *pool, unsigned wanted);
/* Starts every started thread on a new job and returns its generation at once; 0 when no
 * thread of this process is there to run it. The previous job must be over. */
uint64_t ugc_thread_pool_kick(ugc_thread_pool *pool);
/* Waits until every thread has run the current job. */
void ugc_thread_pool_wait(ugc_thread_pool *pool);
/* An outside thread takes part in the current job: runs fn(arg) counted as one of its
 * threads (ugc_thread_pool_wait waits for it, and on_last comes after it, possibly from it).
 * Returns false without running fn when no job is in progress (every thread has left it,
 * or it is closed). */
bool ugc_thread_pool_join(ugc_thread_pool *pool, void (*fn)(void *), void *arg);
/* Threads that have not woken for the current job yet skip it; waits for those inside. */
void ugc_thread_pool_close(ugc_thread_pool *pool);
/* CPU time the threads spent in jobs so far. */
uint64_t ugc_thread_pool_cpu_ns(ugc_thread_pool *pool);
/* fork(): prepare takes the pool's lock (no job may run), parent releases it, child
 * re-initialises the lock and condition variables and forgets the parent's threads. */
void ugc_thread_pool_fork_prepare(ugc_thread_pool *pool);
void ugc_thread_pool_fork_parent(ugc_thread_pool *pool);
void ugc_thread_pool_fork_child(ugc_thread_pool *pool);
/* Stops and joins the threads (no job may run) and frees the pool's memory. */
void ugc_thread_pool_destroy(ugc_thread_pool *pool);

/* CPU time of the calling thread, in nanoseconds. */
uint64_t ugc_thread_cpu_ns(void);

#endif
