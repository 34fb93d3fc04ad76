/* Persistent GC threads for concurrent compaction (see compact_threads.h) on the shared
 * thread skeleton, os/thread_pool.c. */
#include "compact/compact_threads.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void compact_body(void *data, unsigned index) {
  ugc_compact_threads *t = data;
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
  memset(t, 0, sizeof *t);
}
