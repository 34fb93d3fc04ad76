/* Log-linear histograms: values 0..7 get a bucket each; above, 8 sub-buckets per power of
 * two, so a percentile is off by at most 1/8 of its value. */
#include "runtime/histogram.h"

#include <stdbool.h>
#include <string.h>

static size_t bucket_of(uint64_t ns) {
  if (ns < 8)
    return (size_t)ns;
  unsigned exponent = 63u - (unsigned)__builtin_clzll(ns); /* >= 3 */
  size_t sub = (size_t)(ns >> (exponent - 3)) & 7u;
  return (size_t)(exponent - 2) * 8 + sub;
}

/* The largest value that falls in bucket `index`: percentiles never under-report. */
static uint64_t bucket_high(size_t index) {
  if (index < 8)
    return index;
  unsigned exponent = (unsigned)(index / 8) + 2;
  uint64_t low = (uint64_t)(8 + index % 8) << (exponent - 3);
  return low + ((uint64_t)1 << (exponent - 3)) - 1;
}

void ugc_stats_record_pause(ugc_histogram *histogram, uint64_t ns) {
  histogram->count++;
  histogram->sum_ns += ns;
  if (ns > histogram->max_ns)
    histogram->max_ns = ns;
  histogram->buckets[bucket_of(ns)]++;
}

void ugc_histogram_record_atomic(ugc_histogram *histogram, uint64_t ns) {
  __atomic_fetch_add(&histogram->count, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&histogram->sum_ns, ns, __ATOMIC_RELAXED);
  uint64_t max = __atomic_load_n(&histogram->max_ns, __ATOMIC_RELAXED);
  while (ns > max && !__atomic_compare_exchange_n(&histogram->max_ns, &max, ns, true,
                                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    ;
  __atomic_fetch_add(&histogram->buckets[bucket_of(ns)], 1, __ATOMIC_RELAXED);
}

void ugc_histogram_merge(ugc_histogram *into, const ugc_histogram *from) {
  into->count += from->count;
  into->sum_ns += from->sum_ns;
  if (from->max_ns > into->max_ns)
    into->max_ns = from->max_ns;
  for (size_t i = 0; i < UGC_HISTOGRAM_BUCKETS; i++)
    into->buckets[i] += from->buckets[i];
}

uint64_t ugc_histogram_percentile(const ugc_histogram *histogram, double p) {
  if (!histogram || !histogram->count)
    return 0;
  if (p <= 0)
    p = 0;
  if (p >= 1)
    return histogram->max_ns;
  uint64_t rank = (uint64_t)(p * (double)histogram->count);
  if (rank >= histogram->count)
    rank = histogram->count - 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < UGC_HISTOGRAM_BUCKETS; i++) {
    seen += histogram->buckets[i];
    if (seen > rank) {
      uint64_t high = bucket_high(i);
      return high < histogram->max_ns ? high : histogram->max_ns;
    }
  }
  return histogram->max_ns;
}

void ugc_histogram_since(const ugc_histogram *now, const ugc_histogram *before,
                         ugc_histogram *out) {
  memset(out, 0, sizeof *out);
  out->count = now->count - before->count;
  out->sum_ns = now->sum_ns - before->sum_ns;
  size_t top = 0;
  for (size_t i = 0; i < UGC_HISTOGRAM_BUCKETS; i++) {
    out->buckets[i] = now->buckets[i] - before->buckets[i];
    if (out->buckets[i])
      top = i;
  }
  if (out->count) { /* the largest value of the top bucket, and never above the real one */
    uint64_t high = bucket_high(top);
    out->max_ns = high < now->max_ns ? high : now->max_ns;
  }
}
