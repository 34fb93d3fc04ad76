#include "runtime/workers.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "os/log.h"
#include "os/signals.h"

uint64_t ugc_thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void init_sync(ugc_workers *workers) {
  pthread_mutex_init(&workers->lock, NULL);
  pthread_cond_init(&workers->start_cond, NULL);
  pthread_cond_init(&workers->done_cond, NULL);
}

void ugc_workers_init(ugc_workers *workers, unsigned count) {
  memset(workers, 0, sizeof *workers);
  workers->count = count ? count : 1;
  init_sync(workers);
}

static void run_share(ugc_workers *workers, unsigned worker) {
  uint64_t cpu_start = ugc_thread_cpu_ns();
  for (;;) {
    size_t begin = atomic_fetch_add_explicit(&workers->next, workers->grain, memory_order_relaxed);
    if (begin >= workers->n)
      break;
    size_t end = begin + workers->grain < workers->n ? begin + workers->grain : workers->n;
    for (size_t i = begin; i < end; i++)
      workers->fn(workers->ctx, i, worker);
  }
  if (worker != 0) /* the caller's time is counted by the caller */
    atomic_fetch_add_explicit(&workers->cpu_ns, ugc_thread_cpu_ns() - cpu_start,
                              memory_order_relaxed);
}

typedef struct helper_arg {
  ugc_workers *workers;
  unsigned worker;
  uint64_t seen; /* the generation before the helper's first job */
} helper_arg;

static void *helper_main(void *raw) {
  helper_arg arg = *(helper_arg *)raw;
  free(raw);
  ugc_workers *workers = arg.workers;
  uint64_t seen = arg.seen;
  pthread_mutex_lock(&workers->lock);
  for (;;) {
    while (workers->generation == seen && !workers->stopping)
      pthread_cond_wait(&workers->start_cond, &workers->lock);
    if (workers->stopping)
      break;
    seen = workers->generation;
    if (workers->closed)
      continue; /* woke too late: the caller has finished this job alone */
    workers->busy++;
    pthread_mutex_unlock(&workers->lock);
    run_share(workers, arg.worker);
    pthread_mutex_lock(&workers->lock);
    if (--workers->busy == 0 && workers->closed)
      pthread_cond_signal(&workers->done_cond);
  }
  pthread_mutex_unlock(&workers->lock);
  return NULL;
}

/* Starts the helpers; on failure runs with fewer (the work still gets done by worker 0). */
static void start_helpers(ugc_workers *workers) {
  workers->owner_pid = getpid();
  if (workers->count <= 1)
    return;
  workers->threads = calloc(workers->count - 1, sizeof(pthread_t));
  if (!workers->threads)
    return;
  for (unsigned i = 1; i < workers->count; i++) {
    helper_arg *arg = malloc(sizeof *arg);
    if (!arg)
      break;
    arg->workers = workers;
    arg->worker = i;
    arg->seen = workers->generation;
    if (ugc_thread_create_quiet(&workers->threads[i - 1], helper_main, arg, "uffdgc-mark") != 0) {
      free(arg);
      ugc_warn("could not start GC worker thread %u; collecting with %u", i, i);
      break;
    }
    workers->started++;
  }
}

void ugc_workers_start(ugc_workers *workers, size_t n, size_t grain, ugc_work_fn fn, void *ctx) {
  if (workers->owner_pid != getpid())
    start_helpers(workers);
  pthread_mutex_lock(&workers->lock);
  workers->fn = fn;
  workers->ctx = ctx;
  workers->n = n;
  workers->grain = grain ? grain : 1;
  atomic_store_explicit(&workers->next, 0, memory_order_relaxed);
  workers->closed = false;
  workers->generation++;
  if (workers->started && n)
    pthread_cond_broadcast(&workers->start_cond);
  pthread_mutex_unlock(&workers->lock);
}

void ugc_workers_finish(ugc_workers *workers) {
  run_share(workers, 0);
  pthread_mutex_lock(&workers->lock);
  workers->closed = true;
  while (workers->busy)
    pthread_cond_wait(&workers->done_cond, &workers->lock);
  pthread_mutex_unlock(&workers->lock);
}

void ugc_workers_run(ugc_workers *workers, size_t n, size_t grain, ugc_work_fn fn, void *ctx) {
  if (!n)
    return;
  ugc_workers_start(workers, n, grain, fn, ctx);
  ugc_workers_finish(workers);
}

void ugc_workers_destroy(ugc_workers *workers) {
  if (workers->owner_pid == getpid() && workers->started) {
    pthread_mutex_lock(&workers->lock);
    workers->stopping = true;
    pthread_cond_broadcast(&workers->start_cond);
    pthread_mutex_unlock(&workers->lock);
    for (unsigned i = 0; i < workers->started; i++)
      pthread_join(workers->threads[i], NULL);
  }
  free(workers->threads);
  pthread_mutex_destroy(&workers->lock);
  pthread_cond_destroy(&workers->start_cond);
  pthread_cond_destroy(&workers->done_cond);
  memset(workers, 0, sizeof *workers);
}

void ugc_workers_after_fork_child(ugc_workers *workers) {
  /* The helpers do not exist here; their memory is all we can reclaim. */
  free(workers->threads);
  workers->threads = NULL;
  workers->started = 0;
  workers->busy = 0;
  workers->owner_pid = 0;
  init_sync(workers);
}
