/* Human-readable output: a Whippet-style footer per run and the comparison table. */
#ifndef UFFDGC_BENCH_REPORT_H
#define UFFDGC_BENCH_REPORT_H

#include <stdio.h>

#include "runner.h"

void bench_print_footer(FILE *out, const bench_row *row);
void bench_print_table(FILE *out, const bench_row *rows, size_t count);
/* Whether no earlier row skipped the same backend for the same reason (footers and the
 * table say such a reason once). */
bool bench_skip_is_first(const bench_row *rows, const bench_row *row);
/* The bdw row of the same workload, or NULL. */
const bench_row *bench_bdw_row_for(const bench_row *rows, size_t count, const bench_row *row);

#endif
