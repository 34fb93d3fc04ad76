/* A log-linear histogram (8 sub-buckets per power of two) for durations the bench measures
 * itself: latency units, bdwgc pauses. Recording is a few instructions and never allocates,
 * so it can run inside bdwgc's event callback. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define SUB_BITS 3
#define SUB (1u << SUB_BITS)
#define BUCKETS (64 * SUB)

struct bench_hist {
  uint64_t count, sum, max;
  uint64_t buckets[BUCKETS];
};

bench_hist *bench_hist_new(void) {
  return calloc(1, sizeof(bench_hist));
}

void bench_hist_free(bench_hist *h) {
  free(h);
}

static unsigned bucket_of(uint64_t ns) {
  if (ns < SUB)
    return (unsigned)ns;
  unsigned top = 63 - (unsigned)__builtin_clzll(ns); /* >= SUB_BITS */
  unsigned sub = (unsigned)(ns >> (top - SUB_BITS)) & (SUB - 1);
  return (top - SUB_BITS + 1) * SUB + sub;
}

/* The upper bound of a bucket: percentiles never under-report. */
static uint64_t bucket_high(unsigned b) {
  if (b < SUB)
    return b;
  unsigned top = b / SUB + SUB_BITS - 1, sub = b % SUB;
  uint64_t low = ((uint64_t)(SUB + sub)) << (top - SUB_BITS);
  return low + (1ull << (top - SUB_BITS)) - 1;
}

void bench_hist_add(bench_hist *h, uint64_t ns) {
  if (!h)
    return;
  h->count++;
  h->sum += ns;
  if (ns > h->max)
    h->max = ns;
  h->buckets[bucket_of(ns)]++;
}

void bench_hist_merge(bench_hist *into, const bench_hist *from) {
  if (!into || !from)
    return;
  into->count += from->count;
  into->sum += from->sum;
  if (from->max > into->max)
    into->max = from->max;
  for (unsigned b = 0; b < BUCKETS; b++)
    into->buckets[b] += from->buckets[b];
}

static uint64_t percentile(const bench_hist *h, double p) {
  if (!h->count)
    return 0;
  uint64_t rank = (uint64_t)(p * (double)h->count);
  if (rank >= h->count)
    rank = h->count - 1;
  uint64_t seen = 0;
  for (unsigned b = 0; b < BUCKETS; b++) {
    seen += h->buckets[b];
    if (seen > rank) {
      uint64_t v = bucket_high(b);
      return v < h->max ? v : h->max;
    }
  }
  return h->max;
}

void bench_hist_to_dist(const bench_hist *h, bench_dist *out) {
  memset(out, 0, sizeof *out);
  if (!h)
    return;
  out->count = h->count;
  out->sum = h->sum;
  out->max = h->max;
  out->p50 = percentile(h, 0.50);
  out->p95 = percentile(h, 0.95);
  out->p99 = percentile(h, 0.99);
  for (int i = 0; i < BENCH_QUANTILES; i++)
    out->q[i] = percentile(h, i / 100.0);
}
