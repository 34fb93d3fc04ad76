/* Command line of uffdgc-bench. */
#ifndef UFFDGC_BENCH_OPTIONS_H
#define UFFDGC_BENCH_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bench.h"

#define BENCH_MAX_BACKENDS 8

typedef struct bench_options {
  const bench_workload *workloads[32];
  size_t workload_count;
  const char *backends[BENCH_MAX_BACKENDS];
  size_t backend_count;
  const char *deliveries[2]; /* --delivery: "sigbus" and/or "thread"; none = default/env */
  size_t delivery_count;
  size_t heap;      /* 0 = each workload's default */
  unsigned threads; /* mutators of mt and compact; default 2 */
  unsigned scale;   /* default BENCH_DEFAULT_SCALE */
  unsigned repeat;  /* runs per row; the median by wall time is reported */
  bool verify;
  bool compare_bdw;
  const char *json_path;
  const char *plot_dir;
} bench_options;

#define BENCH_DEFAULT_SCALE 3

/* Every backend name uffdgc knows, in the order `--backend all` runs them. */
extern const char *const bench_backend_names[];
extern const size_t bench_backend_name_count;

/* 0: run; 1: --help was printed (exit 0); 2: bad usage, message printed (exit 2). */
int bench_parse_options(int argc, char **argv, bench_options *options);
void bench_print_usage(FILE *out);

#endif
