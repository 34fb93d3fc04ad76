/* Persistent job threads shared by the worker pool and the compaction threads (see
 * thread_pool.h). */
#include "os/thread_pool.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "os/cancel.h"
#include "os/inject.h"
#include "os/log.h"
#include "os/signals.h"

uint64_t ugc_thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void init_sync(ugc_thread_pool *pool) {
  pthread_mutex_init(&pool->lock, NULL);
  pthread_cond_init(&pool->wake_cond, NULL);
  pthread_cond_init(&pool->done_cond, NULL);
}

void ugc_thread_pool_init(ugc_thread_pool *pool, unsigned count, const char *name,
                          ugc_pool_body body, void *data) {
  memset(pool, 0, sizeof *pool);
  pool->count = count;
  pool->name = name;
  pool->body = body;
  pool->data = data;
  init_sync(pool);
}

void ugc_thread_pool_on_last(ugc_thread_pool *pool, void (*fn)(void *, uint64_t)) {
  pool->on_last = fn;
}

typedef struct thread_start {
  ugc_thread_pool *pool;
  unsigned index;
  uint64_t seen; /* generation at creation: a new thread waits for the next kick */
} thread_start;

/* Lock held. */
static void job_left(ugc_thread_pool *pool, uint64_t generation) {
  if (--pool->left == 0) {
    pthread_cond_broadcast(&pool->done_cond);
    if (pool->on_last && !pool->closed) {
      pthread_mutex_unlock(&pool->lock);
      pool->on_last(pool->data, generation);
      pthread_mutex_lock(&pool->lock);
    }
  }
}

static void *pool_thread_main(void *raw) {
  thread_start start = *(thread_start *)raw;
  free(raw);
  ugc_thread_pool *pool = start.pool;
  uint64_t seen = start.seen;
  pthread_mutex_lock(&pool->lock);
  for (;;) {
    while (!pool->stopping && pool->generation == seen)
      pthread_cond_wait(&pool->wake_cond, &pool->lock);
    if (pool->stopping)
      break;
    seen = pool->generation;
    if (pool->closed) { /* woke too late: the job's owner finished it without us */
      job_left(pool, seen);
      continue;
    }
    pool->busy++;
    pthread_mutex_unlock(&pool->lock);
    uint64_t cpu_start = ugc_thread_cpu_ns();
    pool->body(pool->data, start.index);
    atomic_fetch_add_explicit(&pool->cpu_ns, ugc_thread_cpu_ns() - cpu_start, memory_order_relaxed);
    pthread_mutex_lock(&pool->lock);
    if (--pool->busy == 0 && pool->closed)
      pthread_cond_broadcast(&pool->done_cond);
    job_left(pool, seen);
  }
  pthread_mutex_unlock(&pool->lock);
  return NULL;
}

unsigned ugc_thread_pool_start(ugc_thread_pool *pool, unsigned wanted) {
  pid_t self = getpid();
  if (pool->owner_pid == self)
    return pool->started;
  if (pool->started) /* a child the fork handlers did not see: the threads are not ours */
    return 0;
  pool->owner_pid = self;
  if (wanted > pool->count)
    wanted = pool->count;
  if (!wanted)
    return 0;
  if (!pool->threads)
    pool->threads = calloc(pool->count, sizeof *pool->threads);
  if (!pool->threads)
    return 0;
  for (unsigned i = 0; i < wanted; i++) {
    thread_start *start = malloc(sizeof *start);
    if (!start)
      break;
    *start = (thread_start){pool, i, pool->generation};
    if ((pool->inject && ugc_inject(pool->inject)) ||
        ugc_thread_create_quiet(&pool->threads[i], pool_thread_main, start, pool->name) != 0) {
      free(start);
      break;
    }
    pool->started++;
  }
  if (pool->started < wanted)
    ugc_warn("started %u of %u %s threads; the rest of the work runs on fewer", pool->started,
             wanted, pool->name);
  return pool->started;
}

uint64_t ugc_thread_pool_kick(ugc_thread_pool *pool) {
  if (!pool->started || pool->owner_pid != getpid())
    return 0;
  pthread_mutex_lock(&pool->lock);
  uint64_t generation = ++pool->generation;
  pool->closed = false;
  pool->left = pool->started;
  pthread_cond_broadcast(&pool->wake_cond);
  pthread_mutex_unlock(&pool->lock);
  return generation;
}

void ugc_thread_pool_wait(ugc_thread_pool *pool) {
  if (pool->owner_pid != getpid())
    return;                      /* fork child: nothing of the parent's job runs here */
  int cancel = ugc_cancel_off(); /* the caller may be an embedder's thread (os/cancel.h) */
  pthread_mutex_lock(&pool->lock);
  while (pool->left)
    pthread_cond_wait(&pool->done_cond, &pool->lock);
  pthread_mutex_unlock(&pool->lock);
  ugc_cancel_restore(cancel);
}

bool ugc_thread_pool_join(ugc_thread_pool *pool, void (*fn)(void *), void *arg) {
  if (pool->owner_pid != getpid())
    return false;
  int cancel = ugc_cancel_off(); /* cancelled inside, the job would never end */
  pthread_mutex_lock(&pool->lock);
  bool joined = pool->left && !pool->closed;
  if (joined) {
    uint64_t generation = pool->generation;
    pool->left++;
    pool->busy++;
    pthread_mutex_unlock(&pool->lock);
    fn(arg);
    pthread_mutex_lock(&pool->lock);
    if (--pool->busy == 0 && pool->closed)
      pthread_cond_broadcast(&pool->done_cond);
    job_left(pool, generation);
  }
  pthread_mutex_unlock(&pool->lock);
  ugc_cancel_restore(cancel);
  return joined;
}

void ugc_thread_pool_close(ugc_thread_pool *pool) {
  if (pool->owner_pid != getpid())
    return;
  int cancel = ugc_cancel_off();
  pthread_mutex_lock(&pool->lock);
  pool->closed = true;
  while (pool->busy)
    pthread_cond_wait(&pool->done_cond, &pool->lock);
  pthread_mutex_unlock(&pool->lock);
  ugc_cancel_restore(cancel);
}

uint64_t ugc_thread_pool_cpu_ns(ugc_thread_pool *pool) {
  return atomic_load_explicit(&pool->cpu_ns, memory_order_relaxed);
}

void ugc_thread_pool_fork_prepare(ugc_thread_pool *pool) {
  pthread_mutex_lock(&pool->lock);
}

void ugc_thread_pool_fork_parent(ugc_thread_pool *pool) {
  pthread_mutex_unlock(&pool->lock);
}

void ugc_thread_pool_fork_child(ugc_thread_pool *pool) {
  /* The threads do not exist here; the array is reused by the child's own. */
  init_sync(pool);
  pool->started = 0;
  pool->left = 0;
  pool->busy = 0;
  pool->owner_pid = 0;
}

void ugc_thread_pool_destroy(ugc_thread_pool *pool) {
  if (pool->started && pool->owner_pid == getpid()) {
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake_cond);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->started; i++)
      pthread_join(pool->threads[i], NULL);
  }
  free(pool->threads);
  pthread_mutex_destroy(&pool->lock);
  pthread_cond_destroy(&pool->wake_cond);
  pthread_cond_destroy(&pool->done_cond);
  memset(pool, 0, sizeof *pool);
}
