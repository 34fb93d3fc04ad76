/* Clock, memory-sample, fatal-error and compaction-rate helpers used by every workload and
 * the driver. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "os/procstat.h"

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_now_s(void) {
  return bench_now_ns() / 1e9;
}

void bench_record_pause(bench_ctx *ctx, uint32_t thread, uint64_t start_ns, uint64_t end_ns) {
  bench_result *r = ctx->result;
  double start = start_ns / 1e9 - ctx->t0, end = end_ns / 1e9 - ctx->t0;
  if (!ctx->t0 || end < 0)
    return; /* before the workload started (set-up) */
  uint32_t i = __atomic_fetch_add(&r->pause_span_count, 1, __ATOMIC_RELAXED);
  if (i < BENCH_PAUSE_SPANS)
    r->pause_spans[i] = (bench_pause_span){start > 0 ? start : 0, end, thread};
}

static pthread_mutex_t sample_lock = PTHREAD_MUTEX_INITIALIZER;

void bench_sample_memory(bench_ctx *ctx) {
  bench_result *r = ctx->result;
  uint64_t rss = ugc_proc_rss_bytes();
  ugc_rss status = {0};
  ugc_proc_rss(&status);
  long vmas = ugc_proc_vma_count();
  double t = bench_now_s() - ctx->t0;
  pthread_mutex_lock(&sample_lock);
  if (status.rss_shmem > r->shmem_peak_bytes)
    r->shmem_peak_bytes = status.rss_shmem;
  if (vmas > 0 && (uint64_t)vmas > r->vma_peak)
    r->vma_peak = (uint64_t)vmas;
  if (r->rss_count < BENCH_RSS_SAMPLES) {
    r->rss[r->rss_count].t_s = t;
    r->rss[r->rss_count].rss = rss;
    r->rss_count++;
  }
  pthread_mutex_unlock(&sample_lock);
}

void bench_compaction_rates_of(const bench_compaction *c, bench_compaction_rates *out) {
  memset(out, 0, sizeof *out);
  out->pages_built = c->pages_by_gc + c->pages_by_mutator;
  out->compacted_bytes = (double)out->pages_built * 4096.0;
  out->compaction_s = c->concurrent_s > 0 ? c->concurrent_s : c->map_s + c->memcpy_s + c->madvise_s;
  if (out->compaction_s > 0)
    out->gb_per_s = out->compacted_bytes / out->compaction_s / 1e9;
  if (out->pages_built) {
    out->ns_per_page_build = c->memcpy_s * 1e9 / (double)out->pages_built;
    out->ns_per_page_map = c->map_s * 1e9 / (double)out->pages_built;
  }
  out->work_s = c->memcpy_s + c->map_s + c->madvise_s;
  if (out->work_s > 0)
    out->kernel_share = (c->map_s + c->madvise_s) / out->work_s;
}

double bench_sys_share(const bench_result *r) {
  double cpu = r->user_cpu_s + r->sys_cpu_s;
  return cpu > 0 ? r->sys_cpu_s / cpu : 0;
}

double bench_rss_peak_over_live(const bench_result *r) {
  return r->live_bytes_peak ? (double)r->rss_peak_bytes / (double)r->live_bytes_peak : 0;
}

void bench_fail(bench_ctx *ctx, const char *fmt, ...) {
  /* Only ever called in the forked child: the parent sees the exit status and the message
   * on stderr, and marks the row failed. */
  char message[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  fprintf(stderr, "uffdgc-bench: %s/%s: %s\n", ctx->result->workload, ctx->result->backend,
          message);
  fflush(stderr);
  _exit(3);
}
