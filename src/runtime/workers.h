/* The collector's worker pool: runs fn(ctx, i, worker) for every i in [0, n) on all its
 * threads at once, the calling thread included (worker 0). Used for parallel marking (one
 * index per worker) and parallel page building (one index per page).
 *
 * Threads start on first use, so heaps that never collect never spawn any, and a child
 * process after fork() (where the pool's threads do not exist) starts its own. */
#ifndef UGC_RUNTIME_WORKERS_H
#define UGC_RUNTIME_WORKERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef void (*ugc_work_fn)(void *ctx, size_t index, unsigned worker);

typedef struct ugc_workers {
  unsigned count;        /* threads taking part, the caller included (>= 1) */
  pthread_t *threads;    /* count - 1 helpers */
  unsigned started;      /* helpers running */
  pid_t owner_pid;       /* process that started them */
  pthread_mutex_t lock;
  pthread_cond_t start_cond, done_cond;
  uint64_t generation;   /* bumped per job */
  unsigned busy;         /* helpers still inside the current job */
  bool stopping;
  /* The current job. */
  ugc_work_fn fn;
  void *ctx;
  size_t n, grain;
  _Atomic size_t next;
  _Atomic uint64_t cpu_ns; /* CPU time the helper threads spent in jobs */
} ugc_workers;

void ugc_workers_init(ugc_workers *workers, unsigned count);
void ugc_workers_destroy(ugc_workers *workers);

/* Runs the job and returns when every index is done. Indices are claimed `grain` at a
 * time (>= 1). Not reentrant: one job at a time (the collector holds the heap lock). */
void ugc_workers_run(ugc_workers *workers, size_t n, size_t grain, ugc_work_fn fn, void *ctx);

/* After fork() in the child: forget the parent's threads and locks. */
void ugc_workers_after_fork_child(ugc_workers *workers);

/* CPU time of the calling thread, in nanoseconds. */
uint64_t ugc_thread_cpu_ns(void);

#endif
