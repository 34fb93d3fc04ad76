/* The --json output: an array with one object per (workload, backend) row. */
#ifndef UFFDGC_BENCH_JSON_H
#define UFFDGC_BENCH_JSON_H

#include "runner.h"

/* Writes the rows to `path`; 0 on success, -1 with a message on stderr. */
int bench_write_json(const char *path, const bench_row *rows, size_t count);

#endif
