/* Writes results as JSON. The key names are an interface (scripts and docs read them):
 * keep them stable. Durations in the *_us objects are microseconds, times in *_s seconds. */
#include "json.h"

#include "mmu.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void put_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c == '\n')
      fputs("\\n", f);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

static void put_u64(FILE *f, const char *key, uint64_t v, bool comma) {
  fprintf(f, "\"%s\": %" PRIu64 "%s", key, v, comma ? ", " : "");
}

static void put_num(FILE *f, const char *key, double v, bool comma) {
  fprintf(f, "\"%s\": %.6f%s", key, v, comma ? ", " : "");
}

static void put_us(FILE *f, const char *key, uint64_t ns, bool comma) {
  put_num(f, key, ns / 1e3, comma);
}

/* {count, p50, [p95,] p99, max} in microseconds. */
static void put_dist(FILE *f, const char *key, const bench_dist *d, bool with_p95) {
  fprintf(f, "\"%s\": {", key);
  put_u64(f, "count", d->count, true);
  put_us(f, "p50", d->p50, true);
  if (with_p95)
    put_us(f, "p95", d->p95, true);
  put_us(f, "p99", d->p99, true);
  put_us(f, "max", d->max, false);
  fputc('}', f);
}

static void put_compaction(FILE *f, const bench_compaction *c) {
  fputs("\"compaction\": {", f);
  put_u64(f, "pages_total", c->pages_total, true);
  put_u64(f, "pages_in_place", c->pages_in_place, true);
  put_u64(f, "pages_slid_whole", c->pages_slid_whole, true);
  put_u64(f, "pages_recycled", c->pages_recycled, true);
  put_u64(f, "pages_fresh", c->pages_fresh, true);
  put_u64(f, "pages_moved_huge", c->pages_moved_huge, true);
  put_u64(f, "pages_retained_reused", c->pages_retained_reused, true);
  put_u64(f, "pages_recycled_huge", c->pages_recycled_huge, true);
  put_u64(f, "pages_untouched", c->pages_untouched, true);
  put_u64(f, "pages_by_mutator", c->pages_by_mutator, true);
  put_u64(f, "pages_by_gc", c->pages_by_gc, true);
  put_u64(f, "pages_by_waiting_mutators", c->pages_by_waiting_mutators, true);
  put_u64(f, "copy_ioctls", c->copy_ioctls, true);
  put_u64(f, "move_ioctls", c->move_ioctls, true);
  put_u64(f, "moves_misreported", c->moves_misreported, true);
  put_u64(f, "continue_ioctls", c->continue_ioctls, true);
  put_u64(f, "zeropage_ioctls", c->zeropage_ioctls, true);
  put_u64(f, "madvise_calls", c->madvise_calls, true);
  put_u64(f, "bytes_copied", c->bytes_copied, true);
  put_num(f, "concurrent_s", c->concurrent_s, true);
  bench_compaction_rates rates;
  bench_compaction_rates_of(c, &rates);
  put_u64(f, "pages_built", rates.pages_built, true);
  put_num(f, "compaction_s", rates.compaction_s, true);
  put_num(f, "gb_per_s", rates.gb_per_s, true);
  put_num(f, "ns_per_page_build", rates.ns_per_page_build, true);
  put_num(f, "ns_per_page_map", rates.ns_per_page_map, true);
  put_num(f, "work_s", rates.work_s, true);
  put_num(f, "kernel_share", rates.kernel_share, true);
  put_num(f, "handoff_s", c->handoff_s, true);
  put_num(f, "handoff_max_s", c->handoff_max_s, true);
  put_u64(f, "mprotect_calls", c->mprotect_calls, true);
  put_u64(f, "heap_vmas_peak", c->heap_vmas_peak, true);
  put_u64(f, "runs_extended", c->runs_extended, true);
  fputs("\"breakdown_s\": {", f);
  put_num(f, "forwarding", c->forwarding_s, true);
  put_num(f, "memcpy", c->memcpy_s, true);
  put_num(f, "map", c->map_s, true);
  put_num(f, "madvise", c->madvise_s, true);
  put_num(f, "wait", c->wait_s, false);
  fputs("}}", f);
}

/* latency: the units split by whether a cycle overlapped them, the ratio of their p99s
 * (0 when either set is empty) and the MMU at the three windows the footer prints. */
static void put_unit_split(FILE *f, const bench_result *r) {
  fputs(",\n   ", f);
  put_u64(f, "timed_cycles", r->timed_cycles, true);
  put_dist(f, "unit_during_cycle_us", &r->unit_during_cycle, false);
  fputs(", ", f);
  put_dist(f, "unit_idle_us", &r->unit_idle, false);
  fputs(", ", f);
  put_dist(f, "unit_compacting_us", &r->unit_compacting, false);
  fputs(", ", f);
  put_dist(f, "unit_marking_us", &r->unit_marking, false);
  fputs(", ", f);
  double ratio = r->unit_idle.p99 && r->unit_during_cycle.count
                     ? (double)r->unit_during_cycle.p99 / (double)r->unit_idle.p99
                     : 0;
  put_num(f, "unit_p99_during_over_idle", ratio, true);
  double windows[BENCH_MMU_REPORTED], mmu[BENCH_MMU_REPORTED];
  bench_mmu_reported_windows(windows);
  bool truncated = false;
  bool any = bench_mmu_curve(r, windows, BENCH_MMU_REPORTED, mmu, &truncated);
  fputs("\"mmu_at\": {", f);
  for (size_t i = 0; i < BENCH_MMU_REPORTED; i++) {
    char key[16];
    snprintf(key, sizeof key, "%gms", windows[i] * 1e3);
    /* No pause seen: the mutator had the whole run. Window longer than the run: null. */
    if (any && mmu[i] < 0)
      fprintf(f, "\"%s\": null%s", key, i + 1 < BENCH_MMU_REPORTED ? ", " : "");
    else
      put_num(f, key, any ? mmu[i] : 1.0, i + 1 < BENCH_MMU_REPORTED);
  }
  fputc('}', f);
}

/* The pause spans as recorded (seconds since the workload started, thread) and the MMU
 * curve of the worst thread. */
static void put_timeline(FILE *f, const bench_result *r) {
  uint32_t kept = r->pause_span_count < BENCH_PAUSE_SPANS ? r->pause_span_count : BENCH_PAUSE_SPANS;
  double windows[64], mmu[64];
  bool truncated = false;
  size_t n = bench_mmu_windows(windows, 64);
  bool any = bench_mmu_curve(r, windows, n, mmu, &truncated);
  fprintf(f, "\"pause_timeline\": {\"spans_seen\": %" PRIu32 ", \"truncated\": %s, ",
          r->pause_span_count, truncated ? "true" : "false");
  fputs("\"spans_s\": [", f);
  for (uint32_t i = 0; i < kept; i++)
    fprintf(f, "%s[%.9f, %.9f, %" PRIu32 "]", i ? ", " : "", r->pause_spans[i].start_s,
            r->pause_spans[i].end_s, r->pause_spans[i].thread);
  fputs("], \"mmu\": [", f);
  bool first = true;
  for (size_t i = 0; i < n && any; i++) {
    if (mmu[i] < 0)
      continue;
    fprintf(f, "%s{\"window_ms\": %.6f, \"mmu\": %.6f}", first ? "" : ", ", windows[i] * 1e3,
            mmu[i]);
    first = false;
  }
  fputs("]}", f);
}

static void put_row(FILE *f, const bench_row *row) {
  const bench_result *r = row->result;
  fputs("  {", f);
  fputs("\"workload\": ", f);
  put_string(f, row->workload->name);
  fputs(", \"backend\": ", f);
  put_string(f, r && r->backend[0] ? r->backend : row->backend_requested);
  fputs(", \"backend_requested\": ", f);
  put_string(f, row->backend_requested);
  if (!row->skipped[0] && r && r->delivery[0]) {
    fputs(", \"delivery\": ", f);
    put_string(f, r->delivery);
  } else if (row->delivery) {
    fputs(", \"delivery\": ", f);
    put_string(f, row->delivery);
  }
  if (row->skipped[0]) {
    fputs(", \"skipped\": ", f);
    put_string(f, row->skipped);
    fputs("}", f);
    return;
  }
  fputs(", \"ok\": ", f);
  fputs(row->failed ? "false" : "true", f);
  if (row->failed) {
    fputs(", \"error\": ", f);
    put_string(f, r->error);
  }
  fputs(", \"kernel\": ", f);
  put_string(f, r->kernel);
  fputs(",\n   ", f);
  put_u64(f, "threads", r->threads, true);
  if (r->huge_pages[0]) {
    fputs("\"settings\": {", f);
    put_u64(f, "gc_threads", r->gc_threads, true);
    put_u64(f, "compact_threads", r->compact_threads, true);
    put_u64(f, "concurrent_mark", (uint64_t)r->concurrent_mark, true);
    fputs("\"huge_pages\": ", f);
    put_string(f, r->huge_pages);
    fputs("}, ", f);
  }
  put_u64(f, "heap_max_bytes", r->heap_max_bytes, true);
  put_num(f, "wall_s", r->wall_s, true);
  put_num(f, "mutator_cpu_s", r->mutator_cpu_s, true);
  put_num(f, "gc_cpu_s", r->gc_cpu_s, true);
  put_num(f, "gc_pause_total_s", r->gc_total_pause_s, true);
  put_num(f, "user_cpu_s", r->user_cpu_s, true);
  put_num(f, "sys_cpu_s", r->sys_cpu_s, true);
  put_num(f, "sys_cpu_share", bench_sys_share(r), true);
  put_u64(f, "minor_faults", r->minor_faults, true);
  put_u64(f, "major_faults", r->major_faults, true);
  put_u64(f, "gc_cycles", r->gc_cycles, true);
  put_u64(f, "mark_concurrent_cycles", r->mark_concurrent_cycles, true);
  put_u64(f, "mark_remark_retries", r->mark_remark_retries, true);
  put_u64(f, "alloc_waits", r->alloc_waits, true);
  put_num(f, "alloc_wait_s", r->alloc_wait_s, true);
  put_u64(f, "alloc_waits_marking", r->alloc_waits_marking, true);
  put_num(f, "alloc_wait_build_s", r->alloc_wait_build_s, true);
  put_u64(f, "mark_assists", r->mark_assists, true);
  put_num(f, "mark_assist_mb", r->mark_assist_mb, true);
  put_num(f, "mark_assist_s", r->mark_assist_s, false);
  fputs(",\n   ", f);
  put_dist(f, "pause_us", &r->pause, true);
  fputs(",\n   \"pause_kind_us\": {", f);
  put_dist(f, "mark", &r->pause_mark, false);
  fputs(", ", f);
  put_dist(f, "compact", &r->pause_compact, false);
  fputs("},\n   ", f);
  put_dist(f, "stall_us", &r->stall, false);
  fputs(",\n   ", f);
  put_dist(f, "unit_us", &r->unit, false);
  if (r->unit.count)
    put_unit_split(f, r);
  fputs(",\n   ", f);
  put_compaction(f, &r->compaction);
  fputs(",\n   ", f);
  put_u64(f, "live_bytes_peak", r->live_bytes_peak, true);
  put_u64(f, "heap_used_bytes", r->heap_used_bytes, true);
  put_u64(f, "rss_peak_bytes", r->rss_peak_bytes, true);
  put_num(f, "rss_peak_over_live", bench_rss_peak_over_live(r), true);
  put_u64(f, "rss_after_gc_bytes", r->rss_after_gc_bytes, true);
  put_u64(f, "rss_cycle_peak_bytes", r->rss_cycle_peak_bytes, true);
  put_u64(f, "cycle_footprint_bytes", r->cycle_footprint_bytes, true);
  put_u64(f, "shmem_peak_bytes", r->shmem_peak_bytes, true);
  put_u64(f, "vma_peak", r->vma_peak, true);
  fputs("\n   ", f);
  put_timeline(f, r);
  fputs(",\n   \"verify\": {", f);
  put_u64(f, "cycles_checked", r->verify_cycles, true);
  put_u64(f, "failures", r->verify_failures, true);
  put_u64(f, "digest_checks", r->digest_checks, true);
  put_u64(f, "digest_mismatches", r->digest_mismatches, false);
  fputs("}}", f);
}

int bench_write_json(const char *path, const bench_row *rows, size_t count) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "uffdgc-bench: --json: cannot write '%s': %s\n", path, strerror(errno));
    return -1;
  }
  fputs("[\n", f);
  for (size_t i = 0; i < count; i++) {
    put_row(f, &rows[i]);
    fputs(i + 1 < count ? ",\n" : "\n", f);
  }
  fputs("]\n", f);
  if (fclose(f) != 0) {
    fprintf(stderr, "uffdgc-bench: --json: error writing '%s': %s\n", path, strerror(errno));
    return -1;
  }
  return 0;
}
