/* Clock and fatal-error helpers used by every workload. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_now_s(void) { return bench_now_ns() / 1e9; }

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
