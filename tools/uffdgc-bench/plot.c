/* Charts: for each workload, the pause and stall distributions of every backend as
 * percentile curves (the histograms' quantiles), and for frag the RSS after each collection
 * over time. The data files stay next to the PNGs so they can be re-plotted. */
#include "plot.h"

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

/* One data file per (workload, kind): percentile, then one column per backend. Returns the
 * number of columns written (0 = nothing to plot). */
static int write_quantiles(const char *dir, const bench_row *rows, size_t count,
                           const bench_workload *w, const char *kind, FILE *gp) {
  const bench_row *cols[16];
  int n = 0;
  for (size_t i = 0; i < count && n < 16; i++) {
    if (rows[i].workload != w || !usable(&rows[i]))
      continue;
    const bench_dist *d =
        strcmp(kind, "pause") == 0 ? &rows[i].result->pause : &rows[i].result->stall;
    if (d->count)
      cols[n++] = &rows[i];
  }
  if (!n)
    return 0;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s-%s.dat", dir, w->name, kind);
  FILE *f = fopen(path, "w");
  if (!f)
    return 0;
  fprintf(f, "# percentile");
  for (int c = 0; c < n; c++)
    fprintf(f, " %s_us", backend_of(cols[c]));
  fputc('\n', f);
  for (int q = 0; q < BENCH_QUANTILES; q++) {
    fprintf(f, "%d", q);
    for (int c = 0; c < n; c++) {
      const bench_dist *d =
          strcmp(kind, "pause") == 0 ? &cols[c]->result->pause : &cols[c]->result->stall;
      fprintf(f, " %.3f", d->q[q] / 1e3);
    }
    fputc('\n', f);
  }
  fclose(f);
  fprintf(gp, "set output '%s/%s-%s.png'\n", dir, w->name, kind);
  fprintf(gp, "set title '%s: %s time distribution'\n", w->name, kind);
  fprintf(gp, "set xlabel 'percentile'; set ylabel '%s (us)'; set logscale y\n", kind);
  fprintf(gp, "plot ");
  for (int c = 0; c < n; c++)
    fprintf(gp, "%s'%s' using 1:%d with linespoints title '%s'", c ? ", " : "", path, c + 2,
            backend_of(cols[c]));
  fprintf(gp, "\nunset logscale y\n");
  return n;
}

static void write_rss(const char *dir, const bench_row *rows, size_t count, FILE *gp) {
  int n = 0;
  char plot[8192] = "";
  for (size_t i = 0; i < count; i++) {
    const bench_row *row = &rows[i];
    if (strcmp(row->workload->name, "frag") != 0 || !usable(row) || !row->result->rss_count)
      continue;
    char path[4096], name[64];
    snprintf(name, sizeof name, "%s", backend_of(row));
    for (char *c = name; *c; c++)
      if (*c == '/')
        *c = '-'; /* copy/thread -> copy-thread: a file name */
    snprintf(path, sizeof path, "%s/frag-rss-%s.dat", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
      continue;
    fprintf(f, "# seconds rss_mb\n");
    for (uint32_t k = 0; k < row->result->rss_count; k++)
      fprintf(f, "%.4f %.3f\n", row->result->rss[k].t_s, row->result->rss[k].rss / 1e6);
    fclose(f);
    size_t used = strlen(plot);
    snprintf(plot + used, sizeof plot - used, "%s'%s' using 1:2 with linespoints title '%s'",
             n++ ? ", " : "", path, backend_of(row));
  }
  if (!n)
    return;
  fprintf(gp, "set output '%s/frag-rss.png'\n", dir);
  fprintf(gp, "set title 'frag: RSS after each collection'\n");
  fprintf(gp, "set xlabel 'seconds'; set ylabel 'RSS (MB)'\n");
  fprintf(gp, "plot %s\n", plot);
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
  fprintf(gp, "set terminal pngcairo size 900,560 noenhanced\nset key left top\nset grid\n");
  const bench_workload *seen[64];
  size_t nseen = 0;
  for (size_t i = 0; i < count; i++) {
    bool dup = false;
    for (size_t k = 0; k < nseen; k++)
      dup |= seen[k] == rows[i].workload;
    if (dup || nseen == 64)
      continue;
    seen[nseen++] = rows[i].workload;
    write_quantiles(dir, rows, count, rows[i].workload, "pause", gp);
    write_quantiles(dir, rows, count, rows[i].workload, "stall", gp);
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
