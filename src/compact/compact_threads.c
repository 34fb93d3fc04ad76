/* Persistent GC threads for concurrent compaction (see compact_threads.h) on the shared
 * thread skeleton, os/thread_pool.c. */
#include "compact/compact_threads.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os/inject.h"
#include "os/log.h"

static void compact_body(void *data, unsigned index) {
  ugc_compact_threads *t = data;
  if (ugc_inject("compact.late_start")) /* tests: the mutators fault first */
    usleep(50 * 1000);
  ugc_concurrent_gc_work(t->job, t->batches[index]);
}

static void compact_last(void *data, uint64_t generation) {
  ugc_compact_threads *t = data;
  if (t->on_idle)
    t->on_idle(t->on_idle_data, generation);
}

void ugc_compact_threads_init(ugc_compact_threads *t, unsigned count) {
  memset(t, 0, sizeof *t);
  ugc_thread_pool_init(&t->pool, count ? count : 1, "uffdgc-compact", compact_body, t);
  t->pool.inject = "compact.threads";
  ugc_thread_pool_on_last(&t->pool, compact_last);
  pthread_mutex_init(&t->kick_lock, NULL);
  pthread_mutex_init(&t->assist_lock, NULL);
}

/* A thread doing a job's work itself needs a batch buffer (pages of large objects are
 * updated through one even when to-space pages are built in place). */
static void run_here(ugc_compact_threads *t, ugc_concurrent *job) {
  if (!t->spare_batch) {
    void *batch = mmap(NULL, UGC_CONCURRENT_BATCH_PAGES * UGC_PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (batch == MAP_FAILED)
      ugc_fatal("compaction: no memory for a batch buffer to finish the compaction with");
    t->spare_batch = batch;
  }
  ugc_concurrent_gc_work(job, t->spare_batch);
}

/* One batch buffer per thread, then as many threads as there are buffers. */
static unsigned start_threads(ugc_compact_threads *t) {
  unsigned count = t->pool.count, with_batch = 0;
  if (!t->batches)
    t->batches = calloc(count, sizeof *t->batches);
  for (; t->batches && with_batch < count; with_batch++) {
    if (t->batches[with_batch])
      continue;
    void *batch = mmap(NULL, UGC_CONCURRENT_BATCH_PAGES * UGC_PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (batch == MAP_FAILED)
      break;
    t->batches[with_batch] = batch;
  }
  return ugc_thread_pool_start(&t->pool, with_batch);
}

void ugc_compact_threads_on_idle(ugc_compact_threads *t, void (*fn)(void *, uint64_t), void *data) {
  t->on_idle = fn;
  t->on_idle_data = data;
}

uint64_t ugc_compact_threads_next_generation(const ugc_compact_threads *t) {
  return t->pool.generation + 1;
}

int ugc_compact_threads_kick(ugc_compact_threads *t, ugc_concurrent *job) {
  if (!start_threads(t))
    return -1;
  t->job = job; /* no thread reads it before the kick's lock publishes it */
  return ugc_thread_pool_kick(&t->pool) ? 0 : -1;
}

void ugc_compact_threads_defer(ugc_compact_threads *t, ugc_concurrent *job) {
  pthread_mutex_lock(&t->kick_lock);
  t->deferred_job = job;
  t->kick_pending = true;
  pthread_mutex_unlock(&t->kick_lock);
}

void ugc_compact_threads_start_deferred(ugc_compact_threads *t) {
  ugc_concurrent *unstarted = NULL;
  pthread_mutex_lock(&t->kick_lock);
  if (t->kick_pending) {
    t->kick_pending = false;
    if (ugc_compact_threads_kick(t, t->deferred_job) != 0)
      unstarted = t->deferred_job;
  }
  pthread_mutex_unlock(&t->kick_lock);
  if (unstarted) { /* no thread could be started: done here, still correct, just slower */
    ugc_warn("compaction: no GC thread could be started; this thread builds the pages");
    run_here(t, unstarted);
  }
}

void ugc_compact_threads_run_deferred_here(ugc_compact_threads *t) {
  pthread_mutex_lock(&t->kick_lock);
  ugc_concurrent *job = t->kick_pending ? t->deferred_job : NULL;
  t->kick_pending = false;
  pthread_mutex_unlock(&t->kick_lock);
  if (job)
    run_here(t, job);
}

static void assist_body(void *data) {
  ugc_compact_threads *t = data;
  t->assist_pages = ugc_concurrent_gc_work(t->job, t->assist_batch); /* job: from the kick */
}

size_t ugc_compact_threads_assist(ugc_compact_threads *t) {
  if (pthread_mutex_trylock(&t->assist_lock) != 0)
    return 0;
  if (!t->assist_batch) {
    void *batch = mmap(NULL, UGC_CONCURRENT_BATCH_PAGES * UGC_PAGE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    t->assist_batch = batch == MAP_FAILED ? NULL : batch;
  }
  t->assist_pages = 0;
  if (t->assist_batch)
    ugc_thread_pool_join(&t->pool, assist_body, t);
  size_t pages = t->assist_pages;
  pthread_mutex_unlock(&t->assist_lock);
  return pages;
}

void ugc_compact_threads_fork_prepare(ugc_compact_threads *t) {
  pthread_mutex_lock(&t->kick_lock);
  ugc_thread_pool_fork_prepare(&t->pool);
}

void ugc_compact_threads_fork_parent(ugc_compact_threads *t) {
  ugc_thread_pool_fork_parent(&t->pool);
  pthread_mutex_unlock(&t->kick_lock);
}

void ugc_compact_threads_fork_child(ugc_compact_threads *t) {
  ugc_thread_pool_fork_child(&t->pool);
  pthread_mutex_init(&t->kick_lock, NULL);
  pthread_mutex_init(&t->assist_lock, NULL);
  t->kick_pending = false;
}

void ugc_compact_threads_wait(ugc_compact_threads *t) {
  ugc_thread_pool_wait(&t->pool);
}

uint64_t ugc_compact_threads_take_cpu_ns(ugc_compact_threads *t) {
  return atomic_exchange(&t->pool.cpu_ns, 0);
}

void ugc_compact_threads_destroy(ugc_compact_threads *t) {
  unsigned count = t->pool.count;
  ugc_thread_pool_destroy(&t->pool);
  for (unsigned i = 0; t->batches && i < count; i++)
    if (t->batches[i])
      munmap(t->batches[i], UGC_CONCURRENT_BATCH_PAGES * UGC_PAGE_SIZE);
  free(t->batches);
  if (t->spare_batch)
    munmap(t->spare_batch, UGC_CONCURRENT_BATCH_PAGES * UGC_PAGE_SIZE);
  if (t->assist_batch)
    munmap(t->assist_batch, UGC_CONCURRENT_BATCH_PAGES * UGC_PAGE_SIZE);
  pthread_mutex_destroy(&t->kick_lock);
  pthread_mutex_destroy(&t->assist_lock);
  memset(t, 0, sizeof *t);
}
