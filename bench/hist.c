/* The bench's histograms are the library's (runtime/histogram.c): allocated here, and turned
 * into the bench_dist that results carry. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "runtime/histogram.h"

bench_hist *bench_hist_new(void) {
  return calloc(1, sizeof(bench_hist));
}

void bench_hist_free(bench_hist *h) {
  free(h);
}

void bench_hist_add(bench_hist *h, uint64_t ns) {
  if (h)
    ugc_stats_record_pause(h, ns);
}

void bench_hist_merge(bench_hist *into, const bench_hist *from) {
  if (into && from)
    ugc_histogram_merge(into, from);
}

void bench_hist_to_dist(const bench_hist *h, bench_dist *out) {
  memset(out, 0, sizeof *out);
  if (!h)
    return;
  out->count = h->count;
  out->sum = h->sum_ns;
  out->max = h->max_ns;
  if (!h->count)
    return;
  out->p50 = ugc_histogram_percentile(h, 0.50);
  out->p95 = ugc_histogram_percentile(h, 0.95);
  out->p99 = ugc_histogram_percentile(h, 0.99);
  for (int i = 0; i < BENCH_QUANTILES; i++)
    out->q[i] = ugc_histogram_percentile(h, i / 100.0);
}
