/* The pause's worker pool (see workers.h) on the shared thread skeleton, os/thread_pool.c. */
#include "runtime/workers.h"

#include <string.h>

/* Claims `grain` indices at a time until none is left. */
static void run_share(ugc_workers *workers, unsigned worker) {
  for (;;) {
    size_t begin = atomic_fetch_add_explicit(&workers->next, workers->grain, memory_order_relaxed);
    if (begin >= workers->n)
      break;
    size_t end = begin + workers->grain < workers->n ? begin + workers->grain : workers->n;
    for (size_t i = begin; i < end; i++)
      workers->fn(workers->ctx, i, worker);
  }
}

static void helper_body(void *data, unsigned index) {
  run_share(data, index + 1); /* the caller is worker 0 */
}

void ugc_workers_init(ugc_workers *workers, unsigned count) {
  memset(workers, 0, sizeof *workers);
  workers->count = count ? count : 1;
  ugc_thread_pool_init(&workers->pool, workers->count - 1, "uffdgc-mark", helper_body, workers);
}

void ugc_workers_start(ugc_workers *workers, size_t n, size_t grain, ugc_work_fn fn, void *ctx) {
  ugc_thread_pool_start(&workers->pool, workers->count - 1);
  /* No helper is inside a job here (the last one was closed), so the job's fields are the
   * caller's; the kick's lock publishes them. */
  workers->fn = fn;
  workers->ctx = ctx;
  workers->n = n;
  workers->grain = grain ? grain : 1;
  atomic_store_explicit(&workers->next, 0, memory_order_relaxed);
  if (n)
    ugc_thread_pool_kick(&workers->pool);
}

void ugc_workers_finish(ugc_workers *workers) {
  run_share(workers, 0);
  ugc_thread_pool_close(&workers->pool);
}

void ugc_workers_run(ugc_workers *workers, size_t n, size_t grain, ugc_work_fn fn, void *ctx) {
  if (!n)
    return;
  ugc_workers_start(workers, n, grain, fn, ctx);
  ugc_workers_finish(workers);
}

uint64_t ugc_workers_cpu_ns(ugc_workers *workers) {
  return ugc_thread_pool_cpu_ns(&workers->pool);
}

void ugc_workers_destroy(ugc_workers *workers) {
  ugc_thread_pool_destroy(&workers->pool);
  memset(workers, 0, sizeof *workers);
}

void ugc_workers_after_fork_child(ugc_workers *workers) {
  ugc_thread_pool_fork_child(&workers->pool);
}
