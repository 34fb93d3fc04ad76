/* Statistics: log-linear histograms and the public readers. */
#include <stdio.h>
#include <string.h>

#include "compact/concurrent.h"
#include "runtime/heap.h"

/* Values 0..7 get a bucket each; above, 8 sub-buckets per power of two. */
static size_t bucket_of(uint64_t ns) {
  if (ns < 8)
    return (size_t)ns;
  unsigned exponent = 63u - (unsigned)__builtin_clzll(ns); /* >= 3 */
  size_t sub = (size_t)(ns >> (exponent - 3)) & 7u;
  return (size_t)(exponent - 2) * 8 + sub;
}

/* The largest value that falls in bucket `index`. */
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

void ugc_stats_get(ugc_heap *heap, ugc_stats *stats) {
  pthread_mutex_lock(&heap->lock);
  *stats = heap->stats;
  /* Live figures, between cycles too. TLAB bytes count once their TLAB ends. */
  stats->heap_used_bytes = heap->moving.top - heap->moving.base;
  stats->heap_max_bytes = heap->config.heap_max;
  stats->nonmoving_used_bytes = heap->nonmoving.used_bytes;
  stats->large_used_bytes = heap->large.used_bytes;
  pthread_mutex_unlock(&heap->lock);
}

static void write_histogram(FILE *out, const char *name, const ugc_histogram *h, const char *sep) {
  fprintf(out,
          "\"%s\":{\"count\":%llu,\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"max\":%.3f,"
          "\"sum\":%.3f}%s",
          name, (unsigned long long)h->count, ugc_histogram_percentile(h, 0.50) / 1e3,
          ugc_histogram_percentile(h, 0.95) / 1e3, ugc_histogram_percentile(h, 0.99) / 1e3,
          h->max_ns / 1e3, h->sum_ns / 1e3, sep);
}

#define U64(field) (unsigned long long)(field)

void ugc_stats_write_json(ugc_heap *heap, FILE *out) {
  ugc_stats s;
  ugc_stats_get(heap, &s);
  const ugc_compaction_stats *c = &s.compaction;
  fprintf(out,
          "{\"backend\":\"%s\",\"cycles\":%llu,\"allocated_bytes\":%llu,"
          "\"live_bytes_last\":%llu,\"live_bytes_peak\":%llu,\"freed_bytes\":%llu,"
          "\"heap_used_bytes\":%llu,\"heap_max_bytes\":%llu,\"nonmoving_used_bytes\":%llu,"
          "\"large_used_bytes\":%llu,\"gc_cpu_ns\":%llu,\"verify_cycles\":%llu,"
          "\"verify_failures\":%llu,\"histogram_unit\":\"us\",",
          ugc_heap_backend(heap), U64(s.cycles), U64(s.allocated_bytes), U64(s.live_bytes_last),
          U64(s.live_bytes_peak), U64(s.freed_bytes), U64(s.heap_used_bytes), U64(s.heap_max_bytes),
          U64(s.nonmoving_used_bytes), U64(s.large_used_bytes), U64(s.gc_cpu_ns),
          U64(s.verify_cycles), U64(s.verify_failures));
  write_histogram(out, "pause", &s.pause, ",");
  write_histogram(out, "pause_mark", &s.pause_mark, ",");
  write_histogram(out, "pause_compact", &s.pause_compact, ",");
  write_histogram(out, "stall", &s.stall, ",");
  fprintf(out,
          "\"marking\":{\"concurrent_cycles\":%llu,\"concurrent_ns\":%llu,"
          "\"barrier_values\":%llu,\"black_bytes\":%llu,\"final_objects\":%llu},",
          U64(s.mark_concurrent_cycles), U64(s.mark_concurrent_ns), U64(s.mark_barrier_values),
          U64(s.mark_black_bytes), U64(s.mark_final_objects));
  fprintf(out,
          "\"compaction\":{\"pages_total\":%llu,\"pages_in_place\":%llu,"
          "\"pages_slid_whole\":%llu,\"pages_recycled\":%llu,\"pages_fresh\":%llu,"
          "\"pages_by_mutator\":%llu,\"pages_by_gc\":%llu,\"pages_helped\":%llu,"
          "\"copy_ioctls\":%llu,"
          "\"move_ioctls\":%llu,\"continue_ioctls\":%llu,\"zeropage_ioctls\":%llu,"
          "\"madvise_calls\":%llu,\"bytes_copied\":%llu,\"concurrent_ns\":%llu,"
          "\"forwarding_ns\":%llu,\"memcpy_ns\":%llu,\"map_ns\":%llu,\"madvise_ns\":%llu,"
          "\"wait_ns\":%llu,\"handoff_ns\":%llu,\"handoff_max_ns\":%llu}}\n",
          U64(c->pages_total), U64(c->pages_in_place), U64(c->pages_slid_whole),
          U64(c->pages_recycled), U64(c->pages_fresh), U64(c->pages_by_mutator),
          U64(c->pages_by_gc), U64(c->pages_helped), U64(c->copy_ioctls), U64(c->move_ioctls),
          U64(c->continue_ioctls), U64(c->zeropage_ioctls), U64(c->madvise_calls),
          U64(c->bytes_copied), U64(c->concurrent_ns), U64(c->forwarding_ns), U64(c->memcpy_ns),
          U64(c->map_ns), U64(c->madvise_ns), U64(c->wait_ns), U64(c->handoff_ns),
          U64(c->handoff_max_ns));
}

/* The same as ugc_stats_record_pause, for histograms that several threads (and signal
 * handlers) update at once: every field is changed with an atomic operation. */
void ugc_histogram_record_atomic(ugc_histogram *histogram, uint64_t ns) {
  __atomic_fetch_add(&histogram->count, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&histogram->sum_ns, ns, __ATOMIC_RELAXED);
  uint64_t max = __atomic_load_n(&histogram->max_ns, __ATOMIC_RELAXED);
  while (ns > max && !__atomic_compare_exchange_n(&histogram->max_ns, &max, ns, true,
                                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
    ;
  __atomic_fetch_add(&histogram->buckets[bucket_of(ns)], 1, __ATOMIC_RELAXED);
}
