/* Clock, fatal-error and compaction-rate helpers used by every workload and the driver. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

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
