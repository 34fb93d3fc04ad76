/* mt: N mutator threads (--threads) each running the whole gcbench concurrently on one
 * heap; every collection must stop them all at safepoints. */
#include <pthread.h>
#include <stdio.h>

#include "shim.h"

int gcbench_body(shim *s, unsigned scale);

typedef struct mt_thread {
  pthread_t thread;
  bench_ctx *ctx;
  int status;
} mt_thread;

static void *mt_main(void *arg) {
  mt_thread *t = (mt_thread *)arg;
  shim s;
  shim_attach(&s, t->ctx);
  t->status = gcbench_body(&s, t->ctx->scale);
  shim_detach(&s);
  return NULL;
}

int mt_run(bench_ctx *ctx);

int mt_run(bench_ctx *ctx) {
  unsigned n = ctx->threads ? ctx->threads : 2;
  if (n > 64)
    n = 64;
  mt_thread threads[64];
  ctx->single_threaded = false; /* digests race with the other threads' mutations */
  for (unsigned i = 0; i < n; i++) {
    threads[i].ctx = ctx;
    threads[i].status = 0;
    if (pthread_create(&threads[i].thread, NULL, mt_main, &threads[i]))
      bench_fail(ctx, "pthread_create failed");
  }
  int failed = 0;
  for (unsigned i = 0; i < n; i++) {
    pthread_join(threads[i].thread, NULL);
    failed |= threads[i].status;
  }
  if (failed)
    bench_fail(ctx, "a thread's long-lived data was corrupted");
  return 0;
}
