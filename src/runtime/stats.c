/* Statistics: the public readers (the histograms themselves are runtime/histogram.c). */
#include <stdio.h>
#include <string.h>

#include "runtime/heap.h"

void ugc_stats_lock(ugc_heap *heap) {
  pthread_mutex_lock(&heap->stats_lock);
}

void ugc_stats_unlock(ugc_heap *heap) {
  pthread_mutex_unlock(&heap->stats_lock);
}

/* The heap lock keeps out the pause (which updates most fields), the stats lock the end of
 * a concurrent compaction (which folds its counters in, on whichever thread finishes it).
 * Only the stall histogram changes without either: faulting threads record into it with
 * atomic updates, inside signal handlers. A copy may catch one of those half done, so its
 * count is taken from the buckets copied. */
void ugc_stats_get(ugc_heap *heap, ugc_stats *stats) {
  pthread_mutex_lock(&heap->lock);
  pthread_mutex_lock(&heap->stats_lock);
  *stats = heap->stats;
  pthread_mutex_unlock(&heap->stats_lock);
  uint64_t stall_count = 0;
  for (size_t i = 0; i < UGC_HISTOGRAM_BUCKETS; i++)
    stall_count += stats->stall.buckets[i];
  stats->stall.count = stall_count;
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
          "\"verify_failures\":%llu,\"verify_ns\":%llu,\"histogram_unit\":\"us\",",
          ugc_heap_backend(heap), U64(s.cycles), U64(s.allocated_bytes), U64(s.live_bytes_last),
          U64(s.live_bytes_peak), U64(s.freed_bytes), U64(s.heap_used_bytes), U64(s.heap_max_bytes),
          U64(s.nonmoving_used_bytes), U64(s.large_used_bytes), U64(s.gc_cpu_ns),
          U64(s.verify_cycles), U64(s.verify_failures), U64(s.verify_ns));
  write_histogram(out, "pause", &s.pause, ",");
  write_histogram(out, "pause_mark", &s.pause_mark, ",");
  write_histogram(out, "pause_compact", &s.pause_compact, ",");
  write_histogram(out, "stall", &s.stall, ",");
  fprintf(
      out,
      "\"marking\":{\"concurrent_cycles\":%llu,\"concurrent_ns\":%llu,"
      "\"barrier_values\":%llu,\"black_bytes\":%llu,\"final_objects\":%llu,"
      "\"remark_retries\":%llu,\"plan_concurrent_ns\":%llu,\"alloc_waits\":%llu,\"alloc_wait_ns\":%"
      "llu,"
      "\"alloc_waits_marking\":%llu,\"alloc_wait_build_ns\":%llu,\"assists\":%llu,\"assist_bytes\":"
      "%llu,\"assist_ns\":%llu},",
      U64(s.mark_concurrent_cycles), U64(s.mark_concurrent_ns), U64(s.mark_barrier_values),
      U64(s.mark_black_bytes), U64(s.mark_final_objects), U64(s.mark_remark_retries),
      U64(s.plan_concurrent_ns), U64(s.alloc_waits), U64(s.alloc_wait_ns),
      U64(s.alloc_waits_marking), U64(s.alloc_wait_build_ns), U64(s.mark_assists),
      U64(s.mark_assist_bytes), U64(s.mark_assist_ns));
  fprintf(out,
          "\"compaction\":{\"pages_total\":%llu,\"pages_in_place\":%llu,"
          "\"pages_slid_whole\":%llu,\"pages_recycled\":%llu,\"pages_fresh\":%llu,"
          "\"pages_by_mutator\":%llu,\"pages_by_gc\":%llu,\"pages_helped\":%llu,"
          "\"copy_ioctls\":%llu,"
          "\"move_ioctls\":%llu,\"continue_ioctls\":%llu,\"zeropage_ioctls\":%llu,"
          "\"madvise_calls\":%llu,\"bytes_copied\":%llu,\"concurrent_ns\":%llu,"
          "\"forwarding_ns\":%llu,\"memcpy_ns\":%llu,\"map_ns\":%llu,\"madvise_ns\":%llu,"
          "\"wait_ns\":%llu,\"handoff_ns\":%llu,\"handoff_max_ns\":%llu,"
          "\"update_pages_by_gc\":%llu,\"update_pages_by_mutator\":%llu,"
          "\"update_pages_in_pause\":%llu,\"compactions_in_pause\":%llu,\"mprotect_calls\":%llu,"
          "\"vmas_peak\":%llu,"
          "\"runs_extended\":%llu,\"cycles_merged\":%llu,\"kept_bytes_copied\":%llu,"
          "\"pages_moved_huge\":%llu,\"pages_retained_reused\":%llu,"
          "\"pages_recycled_huge\":%llu,\"pages_untouched\":%llu,"
          "\"pages_by_waiting_mutators\":%llu}}\n",
          U64(c->pages_total), U64(c->pages_in_place), U64(c->pages_slid_whole),
          U64(c->pages_recycled), U64(c->pages_fresh), U64(c->pages_by_mutator),
          U64(c->pages_by_gc), U64(c->pages_helped), U64(c->copy_ioctls), U64(c->move_ioctls),
          U64(c->continue_ioctls), U64(c->zeropage_ioctls), U64(c->madvise_calls),
          U64(c->bytes_copied), U64(c->concurrent_ns), U64(c->forwarding_ns), U64(c->memcpy_ns),
          U64(c->map_ns), U64(c->madvise_ns), U64(c->wait_ns), U64(c->handoff_ns),
          U64(c->handoff_max_ns), U64(c->update_pages_by_gc), U64(c->update_pages_by_mutator),
          U64(c->update_pages_in_pause), U64(c->compactions_in_pause), U64(c->mprotect_calls),
          U64(c->vmas_peak), U64(c->runs_extended), U64(c->cycles_merged),
          U64(c->kept_bytes_copied), U64(c->pages_moved_huge), U64(c->pages_retained_reused),
          U64(c->pages_recycled_huge), U64(c->pages_untouched), U64(c->pages_by_waiting_mutators));
}

uint64_t ugc_collections(const ugc_heap *heap) {
  /* Stored with a relaxed atomic store at the end of every collection (collect.c). */
  return __atomic_load_n(&heap->stats.cycles, __ATOMIC_RELAXED);
}
