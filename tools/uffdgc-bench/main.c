/* uffdgc-bench: runs the workloads of bench/ on the requested uffdgc backends (and bdwgc),
 * one forked child per run, then prints footers, a comparison table, and optionally JSON
 * and plots. See docs/benchmarks.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/availability.h"
#include "json.h"
#include "options.h"
#include "plot.h"
#include "report.h"
#include "runner.h"
#include "uffdgc.h"

/* Rows in run order: for each workload, each backend (an available concurrent one once
 * per --delivery mode; stw has no faults to deliver), then bdw when compared. */
static size_t plan_rows(const bench_options *o, bench_row *rows, size_t max) {
  size_t n = 0;
  for (size_t w = 0; w < o->workload_count; w++) {
    for (size_t b = 0; b < o->backend_count; b++) {
      const char *backend = o->backends[b];
      char reason[256] = "";
      bool available =
          strcmp(backend, "auto") == 0 || ugc_backend_available(backend, reason, sizeof reason);
      bool faults = strcmp(backend, "stw") != 0 && available;
      size_t modes = faults && o->delivery_count ? o->delivery_count : 1;
      for (size_t d = 0; d < modes && n < max; d++) {
        bench_row *row = &rows[n++];
        memset(row, 0, sizeof *row);
        row->workload = o->workloads[w];
        row->backend_requested = backend;
        row->delivery = faults && o->delivery_count ? o->deliveries[d] : NULL;
        if (!available && !ugc_backend_is_implemented(backend))
          snprintf(row->skipped, sizeof row->skipped,
                   "not implemented yet: uffdgc has no %s backend so far (docs/backends.md)",
                   backend);
        else if (!available)
          snprintf(row->skipped, sizeof row->skipped, "cannot run on this machine: %s",
                   reason[0] ? reason : "unavailable");
      }
    }
    if (o->compare_bdw && (o->workloads[w]->run_bdw || !bench_have_bdw) && n < max &&
        (strcmp(o->workloads[w]->name, "gcbench") == 0 ||
         strcmp(o->workloads[w]->name, "frag") == 0)) {
      bench_row *row = &rows[n++];
      memset(row, 0, sizeof *row);
      row->workload = o->workloads[w];
      row->backend_requested = "bdw";
      if (!bench_have_bdw)
        snprintf(row->skipped, sizeof row->skipped,
                 "bdwgc not built in: apt-get install libgc-dev, then make again");
    }
  }
  return n;
}

int main(int argc, char **argv) {
  bench_options options;
  int status = bench_parse_options(argc, argv, &options);
  if (status == 1)
    return 0;
  if (status)
    return 2;

  size_t max_rows = options.workload_count * (2 * options.backend_count + 1);
  bench_row *rows = calloc(max_rows, sizeof *rows);
  size_t count = plan_rows(&options, rows, max_rows);

  int failures = 0;
  for (size_t i = 0; i < count; i++) {
    if (!rows[i].skipped[0])
      bench_run_row(&options, &rows[i]);
    failures += rows[i].failed;
    if (!rows[i].skipped[0] || bench_skip_is_first(rows, &rows[i]))
      bench_print_footer(stdout, &rows[i]);
    fflush(stdout);
  }
  bench_print_table(stdout, rows, count);

  if (options.json_path && bench_write_json(options.json_path, rows, count) != 0)
    failures++;
  if (options.plot_dir && bench_plot(options.plot_dir, rows, count) != 0)
    failures++;
  if (failures)
    fprintf(stderr, "uffdgc-bench: %d run(s) failed\n", failures);
  for (size_t i = 0; i < count; i++)
    free(rows[i].result);
  free(rows);
  return failures ? 1 : 0;
}
