/* Runs one (workload, backend) in a forked child and collects its result. */
#ifndef UFFDGC_BENCH_RUNNER_H
#define UFFDGC_BENCH_RUNNER_H

#include "options.h"

typedef struct bench_row {
  const bench_workload *workload;
  const char *backend_requested; /* "auto", "stw", ..., or "bdw" */
  const char *delivery;          /* --delivery for this row; NULL = default or env */
  char skipped[512];             /* non-empty: not run, and why (a whole ugc_error message) */
  bool failed;
  bench_result *result; /* the median run (by wall time) */
} bench_row;

/* Runs the row `options->repeat` times; fills row->result, or row->failed with
 * row->result->error explaining. */
void bench_run_row(const bench_options *options, bench_row *row);

/* The row's name in footers, tables and plots: the backend that ran, with "/thread" when
 * a concurrent backend used handler-thread delivery ("copy/thread"). */
const char *bench_row_label(const bench_row *row);

#endif
