/* Charts, per workload: the pause distribution (whole pause, marking phase, compaction
 * phase) and the stall distribution of every backend as CDFs on a log axis with their
 * sample counts (from the histograms' percentiles), the MMU curves from the pause
 * timeline, and for frag the RSS after each collection over time. The data files and the
 * gnuplot script stay next to the PNGs so they can be re-plotted. */
#include "plot.h"

#include "mmu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* GNUPLOT=none hides gnuplot (CI's bare configuration proves the run works without it). */
static bool have_gnuplot(void) {
  const char *choice = getenv("GNUPLOT");
  if (choice && strcmp(choice, "none") == 0)
    return false;
  const char *path = getenv("PATH");
  if (!path)
    return false;
  char *copy = strdup(path), *save = NULL;
  bool found = false;
  for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
    char candidate[4096];
    snprintf(candidate, sizeof candidate, "%s/gnuplot", dir);
    found = access(candidate, X_OK) == 0;
  }
  free(copy);
  return found;
}

static bool usable(const bench_row *row) {
  return row->result && !row->failed && !row->skipped[0];
}

static const char *backend_of(const bench_row *row) {
  return bench_row_label(row);
}

/* File-name form of a row label: copy/thread -> copy-thread. */
static void file_label(const bench_row *row, char *out, size_t len) {
  snprintf(out, len, "%s", backend_of(row));
  for (char *c = out; *c; c++)
    if (*c == '/')
      *c = '-';
}

/* Rows of workload w that ran, at most max. */
static int rows_of(const bench_row *rows, size_t count, const bench_workload *w,
                   const bench_row **out, int max) {
  int n = 0;
  for (size_t i = 0; i < count && n < max; i++)
    if (rows[i].workload == w && usable(&rows[i]))
      out[n++] = &rows[i];
  return n;
}

/* One column of a distribution file: the percentiles 0..100 in milliseconds. */
static void put_quantile(FILE *f, const bench_dist *d, int q) {
  if (d->count)
    fprintf(f, " %.6f", d->q[q] / 1e6);
  else
    fprintf(f, " NaN");
}

/* A CDF panel: x = duration (log scale), y = percent of samples at or below it; one curve
 * per row that has samples, titled with its sample count. `column` picks the distribution
 * in the data file (1 whole pause, 2 marking, 3 compaction, 4 stalls). */
static void plot_cdf_panel(FILE *gp, const char *path, const bench_row **cols, int n, int column,
                           const char *title, const char *unit_label) {
  fprintf(gp, "set title '%s'\nset key below height 1\n", title);
  fprintf(gp,
          "set logscale x; set xlabel '%s, log scale'; set ylabel 'percent of them at or "
          "below'\nset yrange [0:100]; set format x '%%g'\n",
          unit_label);
  bool any = false;
  for (int c = 0; c < n; c++) {
    const bench_result *r = cols[c]->result;
    const bench_dist *d = column == 1   ? &r->pause
                          : column == 2 ? &r->pause_mark
                          : column == 3 ? &r->pause_compact
                                        : &r->stall;
    if (!d->count)
      continue;
    fprintf(gp, "%s'%s' using %d:1 with steps lw 2 title '%s (n=%llu)'", any ? ", " : "plot ", path,
            2 + c * 4 + column - 1, backend_of(cols[c]), (unsigned long long)d->count);
    any = true;
  }
  if (!any)
    fprintf(gp, "set label 1 'no samples' at graph 0.5, 0.5 center\nplot NaN notitle\n"
                "unset label 1\n");
  fputc('\n', gp);
}

/* W-pause.png (whole pause, marking phase, compaction phase) and, where there are stalls,
 * W-stall.png, from one data file: the percentile, then per row whole, mark, compact and
 * stall durations in milliseconds. */
static void write_distributions(const char *dir, const bench_row *rows, size_t count,
                                const bench_workload *w, FILE *gp) {
  const bench_row *cols[16];
  int n = rows_of(rows, count, w, cols, 16);
  if (!n)
    return;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s-pauses.dat", dir, w->name);
  FILE *f = fopen(path, "w");
  if (!f)
    return;
  fprintf(f, "# percentile; per backend: pause, marking phase, compaction phase, stall (ms)\n#");
  for (int c = 0; c < n; c++)
    fprintf(f, " %s", backend_of(cols[c]));
  fputc('\n', f);
  bool stalls = false;
  for (int q = 0; q < BENCH_QUANTILES; q++) {
    fprintf(f, "%d", q);
    for (int c = 0; c < n; c++) {
      const bench_result *r = cols[c]->result;
      put_quantile(f, &r->pause, q);
      put_quantile(f, &r->pause_mark, q);
      put_quantile(f, &r->pause_compact, q);
      put_quantile(f, &r->stall, q);
      stalls |= r->stall.count > 0;
    }
    fputc('\n', f);
  }
  fclose(f);
  fprintf(gp, "set terminal pngcairo size 1500,560 noenhanced\n");
  fprintf(gp, "set output '%s/%s-pause.png'\n", dir, w->name);
  fprintf(gp,
          "set multiplot layout 1,3 title '%s: stop-the-world pauses, one per collection "
          "(distribution; n = pauses)'\n",
          w->name);
  plot_cdf_panel(gp, path, cols, n, 1, "whole pause", "pause (ms)");
  plot_cdf_panel(gp, path, cols, n, 2, "marking phase (mark + plan)", "phase (ms)");
  plot_cdf_panel(gp, path, cols, n, 3, "compaction phase (stw: all copying)", "phase (ms)");
  fprintf(gp, "unset multiplot\n");
  if (stalls) {
    fprintf(gp, "set terminal pngcairo size 900,600 noenhanced\n");
    fprintf(gp, "set output '%s/%s-stall.png'\n", dir, w->name);
    char title[256];
    snprintf(title, sizeof title,
             "%s: stalls, a thread waiting for a page being compacted (distribution; n = stalls)",
             w->name);
    plot_cdf_panel(gp, path, cols, n, 4, title, "stall (ms)");
  }
  fprintf(gp, "unset logscale x; set autoscale; set format x\n");
}

/* W-mmu.png: minimum mutator utilisation against the window width, one curve per row. */
static void write_mmu(const char *dir, const bench_row *rows, size_t count, const bench_workload *w,
                      FILE *gp) {
  const bench_row *cols[16];
  int n = rows_of(rows, count, w, cols, 16);
  double windows[64], mmu[16][64];
  bool has[16], truncated[16], any = false;
  double longest_s = 0;
  size_t nw = bench_mmu_windows(windows, 64);
  for (int c = 0; c < n; c++) {
    has[c] = bench_mmu_curve(cols[c]->result, windows, nw, mmu[c], &truncated[c]);
    any |= has[c];
    if (has[c] && cols[c]->result->wall_s > longest_s)
      longest_s = cols[c]->result->wall_s;
  }
  if (!any)
    return;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s-mmu.dat", dir, w->name);
  FILE *f = fopen(path, "w");
  if (!f)
    return;
  fprintf(f, "# window_ms, then the MMU per backend:");
  for (int c = 0; c < n; c++)
    fprintf(f, " %s", backend_of(cols[c]));
  fputc('\n', f);
  for (size_t i = 0; i < nw; i++) {
    fprintf(f, "%.6f", windows[i] * 1e3);
    for (int c = 0; c < n; c++)
      if (has[c] && mmu[c][i] >= 0)
        fprintf(f, " %.6f", mmu[c][i]);
      else
        fprintf(f, " NaN");
    fputc('\n', f);
  }
  fclose(f);
  fprintf(gp, "set terminal pngcairo size 900,600 noenhanced\n");
  fprintf(gp, "set output '%s/%s-mmu.png'\n", dir, w->name);
  fprintf(gp,
          "set title '%s: minimum mutator utilisation (worst thread; pauses only, "
          "stalls not counted)'\n",
          w->name);
  fprintf(gp,
          "set logscale x; set format x '%%g'; set xlabel 'window (ms, log scale)'\n"
          "set ylabel 'least fraction of any window the mutator ran'; set yrange [0:1]\n"
          "set key below height 1; set xrange [%g:%g]\n",
          windows[0] * 1e3, longest_s * 1e3);
  bool first = true;
  for (int c = 0; c < n; c++) {
    if (!has[c])
      continue;
    const bench_result *r = cols[c]->result;
    uint32_t threads = 0;
    for (uint32_t k = 0; k < r->pause_span_count && k < BENCH_PAUSE_SPANS; k++)
      if (r->pause_spans[k].thread + 1 > threads)
        threads = r->pause_spans[k].thread + 1;
    fprintf(gp,
            "%s'%s' using 1:%d with linespoints lw 2 title '%s (%u stops seen by %u thread%s%s)'",
            first ? "plot " : ", ", path, c + 2, backend_of(cols[c]), r->pause_span_count, threads,
            threads == 1 ? "" : "s", truncated[c] ? ", first part of the run" : "");
    first = false;
  }
  fprintf(gp, "\nunset logscale x; set autoscale; set format x\n");
}

static void write_rss(const char *dir, const bench_row *rows, size_t count, FILE *gp) {
  int n = 0;
  char plot[8192] = "";
  for (size_t i = 0; i < count; i++) {
    const bench_row *row = &rows[i];
    if (strcmp(row->workload->name, "frag") != 0 || !usable(row) || !row->result->rss_count)
      continue;
    char path[4096], name[64];
    file_label(row, name, sizeof name);
    snprintf(path, sizeof path, "%s/frag-rss-%s.dat", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
      continue;
    fprintf(f, "# seconds rss_mb\n");
    for (uint32_t k = 0; k < row->result->rss_count; k++)
      fprintf(f, "%.4f %.3f\n", row->result->rss[k].t_s, row->result->rss[k].rss / 1e6);
    fclose(f);
    size_t used = strlen(plot);
    snprintf(plot + used, sizeof plot - used,
             "%s'%s' using 1:2 with linespoints lw 2 title '%s (%u samples, %.2f s)'",
             n++ ? ", " : "", path, backend_of(row), row->result->rss_count, row->result->wall_s);
  }
  if (!n)
    return;
  fprintf(gp, "set terminal pngcairo size 900,600 noenhanced\n");
  fprintf(gp, "set output '%s/frag-rss.png'\n", dir);
  fprintf(gp, "set title 'frag: resident set size over time (sampled after each collection)'\n");
  fprintf(gp, "set key below height 1; set xlabel 'seconds since the workload started'\n"
              "set ylabel 'RSS (MB)'; set yrange [0:*]\n");
  fprintf(gp, "plot %s\nset autoscale; set key default\n", plot);
}

int bench_plot(const char *dir, const bench_row *rows, size_t count) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "uffdgc-bench: --plot: cannot create '%s': %s\n", dir, strerror(errno));
    return -1;
  }
  char script[4096];
  snprintf(script, sizeof script, "%s/plots.gp", dir);
  FILE *gp = fopen(script, "w");
  if (!gp) {
    fprintf(stderr, "uffdgc-bench: --plot: cannot write '%s': %s\n", script, strerror(errno));
    return -1;
  }
  fprintf(gp, "set grid\n");
  const bench_workload *seen[64];
  size_t nseen = 0;
  for (size_t i = 0; i < count; i++) {
    bool dup = false;
    for (size_t k = 0; k < nseen; k++)
      dup |= seen[k] == rows[i].workload;
    if (dup || nseen == 64)
      continue;
    seen[nseen++] = rows[i].workload;
    write_distributions(dir, rows, count, rows[i].workload, gp);
    write_mmu(dir, rows, count, rows[i].workload, gp);
  }
  write_rss(dir, rows, count, gp);
  fclose(gp);
  if (!have_gnuplot()) {
    printf("plots: gnuplot is not installed; data and script are in %s. Install it with\n"
           "  apt-get install gnuplot-nox\nand run: gnuplot %s\n",
           dir, script);
    return 0;
  }
  char command[8300];
  snprintf(command, sizeof command, "gnuplot '%s'", script);
  int status = system(command);
  if (status != 0)
    fprintf(stderr, "uffdgc-bench: --plot: gnuplot exited with status %d\n", status);
  else
    printf("plots: PNG charts written to %s\n", dir);
  return 0;
}
