/* Persistent GC threads for concurrent compaction (see compact_threads.h). */
#include "compact/compact_threads.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "os/inject.h"
#include "os/log.h"
#include "os/signals.h"

typedef struct thread_start {
  ugc_compact_threads *pool;
  unsigned index;
  uint64_t seen; /* generation at creation: a new thread waits for the next kick */
} thread_start;

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *compact_thread_main(void *arg) {
  thread_start start = *(thread_start *)arg;
  free(arg);
  ugc_compact_threads *t = start.pool;
  uint64_t seen = start.seen;
  pthread_mutex_lock(&t->lock);
  for (;;) {
    while (!t->stopping && t->generation == seen)
      pthread_cond_wait(&t->kick_cond, &t->lock);
    if (t->stopping)
      break;
    seen = t->generation;
    ugc_concurrent *job = t->job;
    pthread_mutex_unlock(&t->lock);

    uint64_t cpu0 = thread_cpu_ns();
    ugc_concurrent_gc_work(job, t->batches[start.index]);
    atomic_fetch_add_explicit(&t->cpu_ns, thread_cpu_ns() - cpu0, memory_order_relaxed);

    pthread_mutex_lock(&t->lock);
    if (--t->running == 0) {
      pthread_cond_broadcast(&t->done_cond);
      if (t->on_idle) {
        pthread_mutex_unlock(&t->lock);
        t->on_idle(t->on_idle_data, seen);
        pthread_mutex_lock(&t->lock);
      }
    }
  }
  pthread_mutex_unlock(&t->lock);
  return NULL;
}

void ugc_compact_threads_init(ugc_compact_threads *t, unsigned count) {
  memset(t, 0, sizeof *t);
  t->count = count ? count : 1;
  pthread_mutex_init(&t->lock, NULL);
  pthread_cond_init(&t->kick_cond, NULL);
  pthread_cond_init(&t->done_cond, NULL);
}

/* Threads are started lazily, and again in a fork child, where the parent's threads do not
 * exist (ugc_compact_threads_fork_child forgot them). */
static void start_threads(ugc_compact_threads *t) {
  pid_t self = getpid();
  if (t->started && t->owner_pid == self)
    return;
  if (t->started) /* a child the atfork handlers did not see: the parent's threads */
    return;       /* are not ours to use; the caller builds the pages itself */
  if (!t->threads)
    t->threads = calloc(t->count, sizeof *t->threads);
  if (!t->batches)
    t->batches = calloc(t->count, sizeof *t->batches);
  if (!t->threads || !t->batches)
    return;
  t->owner_pid = self;
  for (unsigned i = 0; i < t->count; i++) {
    if (!t->batches[i]) {
      void *batch = mmap(NULL, UGC_CONCURRENT_BATCH_PAGES * UGC_PAGE_SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (batch == MAP_FAILED)
        break;
      t->batches[i] = batch;
    }
    thread_start *start = malloc(sizeof *start);
    if (!start)
      break;
    start->pool = t;
    start->index = i;
    start->seen = t->generation;
    if (ugc_inject("compact.threads") ||
        ugc_thread_create_quiet(&t->threads[i], compact_thread_main, start, "uffdgc-compact") !=
            0) {
      free(start);
      break;
    }
    t->started++;
  }
  if (t->started < t->count)
    ugc_warn("started %u of %u compaction threads", t->started, t->count);
}

void ugc_compact_threads_on_idle(ugc_compact_threads *t, void (*fn)(void *, uint64_t), void *data) {
  t->on_idle = fn;
  t->on_idle_data = data;
}

uint64_t ugc_compact_threads_next_generation(const ugc_compact_threads *t) {
  return t->generation + 1;
}

int ugc_compact_threads_kick(ugc_compact_threads *t, ugc_concurrent *job) {
  start_threads(t);
  if (t->started == 0 || t->owner_pid != getpid())
    return -1;
  pthread_mutex_lock(&t->lock);
  t->job = job;
  t->running = t->started;
  t->generation++;
  pthread_cond_broadcast(&t->kick_cond);
  pthread_mutex_unlock(&t->lock);
  return 0;
}

void ugc_compact_threads_wait(ugc_compact_threads *t) {
  if (t->owner_pid != getpid())
    return; /* fork child: nothing of the parent's job runs here */
  pthread_mutex_lock(&t->lock);
  while (t->running)
    pthread_cond_wait(&t->done_cond, &t->lock);
  pthread_mutex_unlock(&t->lock);
}

void ugc_compact_threads_fork_prepare(ugc_compact_threads *t) {
  pthread_mutex_lock(&t->lock);
}

void ugc_compact_threads_fork_parent(ugc_compact_threads *t) {
  pthread_mutex_unlock(&t->lock);
}

void ugc_compact_threads_fork_child(ugc_compact_threads *t) {
  pthread_mutex_init(&t->lock, NULL);
  pthread_cond_init(&t->kick_cond, NULL);
  pthread_cond_init(&t->done_cond, NULL);
  t->started = 0;
  t->running = 0;
  t->owner_pid = 0;
}

void ugc_compact_threads_destroy(ugc_compact_threads *t) {
  if (t->started && t->owner_pid == getpid()) {
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_broadcast(&t->kick_cond);
    pthread_mutex_unlock(&t->lock);
    for (unsigned i = 0; i < t->started; i++)
      pthread_join(t->threads[i], NULL);
  }
  for (unsigned i = 0; t->batches && i < t->count; i++)
    if (t->batches[i])
      munmap(t->batches[i], UGC_CONCURRENT_BATCH_PAGES * UGC_PAGE_SIZE);
  free(t->batches);
  free(t->threads);
  pthread_mutex_destroy(&t->lock);
  pthread_cond_destroy(&t->kick_cond);
  pthread_cond_destroy(&t->done_cond);
  memset(t, 0, sizeof *t);
}
