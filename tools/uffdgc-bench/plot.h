/* --plot DIR: data files and PNG charts drawn by gnuplot, when it is installed. */
#ifndef UFFDGC_BENCH_PLOT_H
#define UFFDGC_BENCH_PLOT_H

#include "runner.h"

/* Writes the .dat files and plots.gp into DIR and runs gnuplot; 0 on success or when gnuplot is
 * missing (a hint is printed), -1 when DIR cannot be written. */
int bench_plot(const char *dir, const bench_row *rows, size_t count);

#endif
