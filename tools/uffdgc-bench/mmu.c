/* MMU from the pause timeline. The paused time inside a window [x, x + w] is
 * P(x + w) - P(x), with P the paused time before a point; it is piecewise linear in x and
 * changes slope only where a window edge meets a span edge, so the worst window starts at
 * one of s, e, s - w, e - w of some span (s, e), or at either end of the run. */
#include "mmu.h"

#include <math.h>
#include <stdlib.h>

static int by_start(const void *a, const void *b) {
  double x = ((const bench_pause_span *)a)->start_s, y = ((const bench_pause_span *)b)->start_s;
  return (x > y) - (x < y);
}

bool bench_timeline_of(const bench_result *r, uint32_t thread, bench_timeline *t) {
  size_t kept = r->pause_span_count < BENCH_PAUSE_SPANS ? r->pause_span_count : BENCH_PAUSE_SPANS;
  t->spans = NULL;
  t->before = NULL;
  t->count = 0;
  t->truncated = r->pause_span_count > BENCH_PAUSE_SPANS;
  t->length_s = r->wall_s;
  if (!kept || r->wall_s <= 0)
    return false;
  bench_pause_span *sorted = malloc(kept * sizeof *sorted);
  size_t n = 0;
  double last_end = 0; /* of all threads: a truncated timeline ends there for everyone */
  for (size_t i = 0; i < kept; i++) {
    if (r->pause_spans[i].end_s > last_end)
      last_end = r->pause_spans[i].end_s;
    if (r->pause_spans[i].thread == thread)
      sorted[n++] = r->pause_spans[i];
  }
  if (t->truncated && last_end < r->wall_s)
    t->length_s = last_end;
  if (!n) {
    free(sorted);
    return false;
  }
  t->spans = malloc(n * sizeof *t->spans);
  t->before = malloc((n + 1) * sizeof *t->before);
  qsort(sorted, n, sizeof *sorted, by_start);
  for (size_t i = 0; i < n; i++) {
    bench_pause_span s = sorted[i];
    if (s.end_s > t->length_s)
      s.end_s = t->length_s;
    if (s.start_s >= s.end_s)
      continue;
    if (t->count && s.start_s <= t->spans[t->count - 1].end_s) {
      if (s.end_s > t->spans[t->count - 1].end_s)
        t->spans[t->count - 1].end_s = s.end_s;
      continue;
    }
    t->spans[t->count++] = s;
  }
  free(sorted);
  t->before[0] = 0;
  for (size_t i = 0; i < t->count; i++)
    t->before[i + 1] = t->before[i] + (t->spans[i].end_s - t->spans[i].start_s);
  return t->count > 0;
}

void bench_timeline_free(bench_timeline *t) {
  free(t->spans);
  free(t->before);
  t->spans = NULL;
  t->before = NULL;
  t->count = 0;
}

/* Paused time in [0, x]. */
static double paused_before(const bench_timeline *t, double x) {
  size_t lo = 0, hi = t->count; /* first span starting at or after x */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (t->spans[mid].start_s < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0)
    return 0;
  const bench_pause_span *last = &t->spans[lo - 1];
  double end = x < last->end_s ? x : last->end_s;
  return t->before[lo - 1] + (end - last->start_s);
}

static double utilisation(const bench_timeline *t, double x, double w) {
  if (x < 0)
    x = 0;
  if (x > t->length_s - w)
    x = t->length_s - w;
  return 1.0 - (paused_before(t, x + w) - paused_before(t, x)) / w;
}

double bench_mmu(const bench_timeline *t, double w) {
  if (w <= 0 || w > t->length_s)
    return -1;
  double worst = utilisation(t, 0, w);
  double end = utilisation(t, t->length_s - w, w);
  if (end < worst)
    worst = end;
  for (size_t i = 0; i < t->count && worst > 0; i++) {
    const double starts[4] = {t->spans[i].start_s, t->spans[i].end_s, t->spans[i].start_s - w,
                              t->spans[i].end_s - w};
    for (int k = 0; k < 4; k++) {
      double u = utilisation(t, starts[k], w);
      if (u < worst)
        worst = u;
    }
  }
  return worst < 0 ? 0 : worst;
}

size_t bench_mmu_windows(double *out, size_t max) {
  size_t n = 0;
  for (int step = 0; step <= 6 * 8 && n < max; step++)
    out[n++] = 1e-4 * pow(10.0, step / 8.0);
  return n;
}

bool bench_mmu_curve(const bench_result *r, const double *windows, size_t n, double *out,
                     bool *truncated) {
  uint32_t kept = r->pause_span_count < BENCH_PAUSE_SPANS ? r->pause_span_count : BENCH_PAUSE_SPANS;
  uint32_t threads = 0;
  for (uint32_t i = 0; i < kept; i++)
    if (r->pause_spans[i].thread + 1 > threads)
      threads = r->pause_spans[i].thread + 1;
  *truncated = r->pause_span_count > BENCH_PAUSE_SPANS;
  bool any = false;
  for (size_t i = 0; i < n; i++)
    out[i] = -1;
  for (uint32_t thread = 0; thread < threads; thread++) {
    bench_timeline t;
    if (bench_timeline_of(r, thread, &t)) {
      any = true;
      for (size_t i = 0; i < n; i++) {
        double u = bench_mmu(&t, windows[i]);
        if (u >= 0 && (out[i] < 0 || u < out[i]))
          out[i] = u;
      }
    }
    bench_timeline_free(&t);
  }
  return any;
}

void bench_mmu_reported_windows(double out[BENCH_MMU_REPORTED]) {
  out[0] = 1e-3;
  out[1] = 1e-2;
  out[2] = 1e-1;
}
