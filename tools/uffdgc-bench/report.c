/* The footer follows Whippet's benchmark driver, so numbers can be read side by side:
 *   Completed N major collections (0 minor).
 *   T ms total time (S stopped).
 *   P50 ms median pause time, P95 p95, MAX max.
 *   Heap size is H MB (max M MB); peak live data L MB.
 * A "pause" is one whole stop of the world: a cycle stops once with marking inside the
 * pause, twice with concurrent marking (the initial pause, then the final pause with the
 * rest of marking and the compaction phase); the phases, the stalls and the compaction's
 * throughput and per-page costs
 * follow on lines of their own. The table has one row per (workload, backend). */
#include "report.h"

#include "mmu.h"

#include <string.h>

#define MB 1e6

static double us(uint64_t ns) {
  return ns / 1e3;
}

/* latency: units during a cycle against idle ones, and the MMU at 1, 10 and 100 ms. */
static void print_unit_split(FILE *out, const char *w, const char *b, const bench_result *r) {
  const bench_dist *d = &r->unit_during_cycle, *i = &r->unit_idle;
  fprintf(out,
          "[%s/%s] %llu cycles overlapped the timed phase; units during a cycle: %llu, %.2f us "
          "median, %.2f p99, %.1f max; idle: %llu, %.2f us median, %.2f p99, %.1f max",
          w, b, (unsigned long long)r->timed_cycles, (unsigned long long)d->count, us(d->p50),
          us(d->p99), us(d->max), (unsigned long long)i->count, us(i->p50), us(i->p99), us(i->max));
  if (d->count && i->p99)
    fprintf(out, "; p99 during/idle %.2fx", (double)d->p99 / (double)i->p99);
  fputs(".\n", out);
  /* The two phases apart: a compaction's stalls against marking's barriers and assists. */
  const bench_dist *phases[2] = {&r->unit_marking, &r->unit_compacting};
  const char *names[2] = {"overlapping marking only", "overlapping a compaction"};
  fprintf(out, "[%s/%s] units during a cycle", w, b);
  for (int k = 0; k < 2; k++) {
    fprintf(out, "%s %s: %llu, %.2f us p99", k ? ";" : "", names[k],
            (unsigned long long)phases[k]->count, us(phases[k]->p99));
    if (phases[k]->count && i->p99)
      fprintf(out, " (%.2fx idle)", (double)phases[k]->p99 / (double)i->p99);
  }
  fputs(".\n", out);
  double windows[BENCH_MMU_REPORTED], mmu[BENCH_MMU_REPORTED];
  bench_mmu_reported_windows(windows);
  bool truncated = false;
  bool any = bench_mmu_curve(r, windows, BENCH_MMU_REPORTED, mmu, &truncated);
  fprintf(out, "[%s/%s] MMU:", w, b);
  for (size_t k = 0; k < BENCH_MMU_REPORTED; k++) {
    if (any && mmu[k] < 0)
      fprintf(out, " %g ms -", windows[k] * 1e3);
    else
      fprintf(out, " %g ms %.3f", windows[k] * 1e3, any ? mmu[k] : 1.0);
    fputs(k + 1 < BENCH_MMU_REPORTED ? "," : "", out);
  }
  fprintf(out, "%s.\n", truncated ? " (first part of the run: timeline truncated)" : "");
}

void bench_print_footer(FILE *out, const bench_row *row) {
  const char *w = row->workload->name;
  if (row->skipped[0]) {
    fprintf(out, "[%s/%s] skipped: %s\n", w, row->backend_requested, row->skipped);
    return;
  }
  const bench_result *r = row->result;
  char b[2 * BENCH_NAME_LEN + 8];
  snprintf(b, sizeof b, "%s", bench_row_label(row));
  if (row->failed) {
    fprintf(out, "[%s/%s] FAILED: %s\n", w, b, r->error);
    return;
  }
  fprintf(out, "[%s/%s] Completed %llu major collections (0 minor).\n", w, b,
          (unsigned long long)r->gc_cycles);
  if (r->huge_pages[0]) {
    fprintf(out, "[%s/%s] settings: %u GC threads", w, b, r->gc_threads);
    if (strcmp(r->backend, "stw") != 0) /* stw compacts in the pause, with all of them */
      fprintf(out, ", %u of them compacting", r->compact_threads);
    fprintf(out, ", huge pages %s, %s marking.\n", r->huge_pages,
            r->concurrent_mark ? "concurrent" : "stop-the-world");
  }
  fprintf(out, "[%s/%s] %.3f ms total time (%.3f stopped).\n", w, b, r->wall_s * 1e3,
          r->gc_total_pause_s * 1e3);
  fprintf(out, "[%s/%s] %.3f ms median pause time, %.3f p95, %.3f max.\n", w, b, r->pause.p50 / 1e6,
          r->pause.p95 / 1e6, r->pause.max / 1e6);
  fprintf(out, "[%s/%s] Heap size is %.3f MB (max %.3f MB); peak live data %.3f MB.\n", w, b,
          r->heap_used_bytes / MB, r->heap_max_bytes / MB, r->live_bytes_peak / MB);
  fprintf(out,
          "[%s/%s] CPU: user %.3f s, system %.3f s (%.1f%% of the process's CPU); %llu minor, "
          "%llu major page faults; peak RSS %.1f MB",
          w, b, r->user_cpu_s, r->sys_cpu_s, 100 * bench_sys_share(r),
          (unsigned long long)r->minor_faults, (unsigned long long)r->major_faults,
          r->rss_peak_bytes / MB);
  if (r->live_bytes_peak)
    fprintf(out, ", %.2fx peak live", bench_rss_peak_over_live(r));
  fputs(".\n", out);
  if (r->cycle_footprint_bytes)
    fprintf(out,
            "[%s/%s] peak RSS during a collection cycle %.1f MB: %.2fx its live bytes + "
            "allocation headroom (%.1f MB).\n",
            w, b, r->rss_cycle_peak_bytes / MB,
            (double)r->rss_cycle_peak_bytes / (double)r->cycle_footprint_bytes,
            r->cycle_footprint_bytes / MB);
  if (r->pause_mark.count && strcmp(b, "bdw") != 0)
    fprintf(out,
            "[%s/%s] pause phases: mark+plan %.3f ms median, %.3f max; compaction "
            "%.3f ms median, %.3f max.\n",
            w, b, r->pause_mark.p50 / 1e6, r->pause_mark.max / 1e6, r->pause_compact.p50 / 1e6,
            r->pause_compact.max / 1e6);
  if (r->alloc_waits)
    fprintf(out,
            "[%s/%s] heap full during a cycle: %llu allocations waited %.3f ms for it (%llu "
            "of them while marking ran; %.3f ms of the wait building compaction pages).\n",
            w, b, (unsigned long long)r->alloc_waits, r->alloc_wait_s * 1e3,
            (unsigned long long)r->alloc_waits_marking, r->alloc_wait_build_s * 1e3);
  if (r->mark_assists)
    fprintf(out, "[%s/%s] mutator assists: %llu allocations marked %.1f MB in %.3f ms.\n", w, b,
            (unsigned long long)r->mark_assists, r->mark_assist_mb, r->mark_assist_s * 1e3);
  if (r->stall.count)
    fprintf(out, "[%s/%s] %llu stalls: %.1f us median, %.1f p99, %.1f max.\n", w, b,
            (unsigned long long)r->stall.count, us(r->stall.p50), us(r->stall.p99),
            us(r->stall.max));
  bench_compaction_rates rates;
  bench_compaction_rates_of(&r->compaction, &rates);
  if (rates.pages_built) {
    fprintf(
        out,
        "[%s/%s] compaction: %llu pages built (%llu by GC threads, %llu by "
        "mutators; %llu more by mutators waiting for it), %.1f MB in %.1f ms %s: %.2f GB/s.\n",
        w, b, (unsigned long long)rates.pages_built,
        (unsigned long long)(r->compaction.pages_by_gc - r->compaction.pages_by_waiting_mutators),
        (unsigned long long)r->compaction.pages_by_mutator,
        (unsigned long long)r->compaction.pages_by_waiting_mutators, rates.compacted_bytes / MB,
        rates.compaction_s * 1e3, r->compaction.concurrent_s > 0 ? "concurrent" : "in pauses",
        rates.gb_per_s);
    fprintf(out, "[%s/%s] per page: build %.0f ns, map %.0f ns.\n", w, b, rates.ns_per_page_build,
            rates.ns_per_page_map);
    const bench_compaction *c = &r->compaction;
    double total = c->pages_total ? (double)c->pages_total : 1.0;
    fprintf(out,
            "[%s/%s] pages: %.1f%% in place (%.1f%% as whole huge pages, %.1f%% untouched), %.1f%% "
            "recycled (%.1f%% as "
            "whole huge pages), "
            "%.1f%% slid whole, %.1f%% fresh; work %.1f ms (build + map + madvise, all threads), "
            "%.1f%% of it in the kernel; %llu kept from-space pages reused by allocation.\n",
            w, b, 100.0 * (double)c->pages_in_place / total,
            100.0 * (double)c->pages_moved_huge / total, 100.0 * (double)c->pages_untouched / total,
            100.0 * (double)c->pages_recycled / total,
            100.0 * (double)c->pages_recycled_huge / total,
            100.0 * (double)c->pages_slid_whole / total, 100.0 * (double)c->pages_fresh / total,
            rates.work_s * 1e3, 100.0 * rates.kernel_share,
            (unsigned long long)c->pages_retained_reused);
    if (r->compaction.handoff_s > 0 && r->gc_cycles)
      fprintf(out, "[%s/%s] kernel hand-off in the compaction pause: %.1f us mean, %.1f max.\n", w,
              b, r->compaction.handoff_s * 1e6 / (double)r->gc_cycles,
              r->compaction.handoff_max_s * 1e6);
  }
  if (strcmp(b, "bdw") != 0)
    fprintf(out,
            "[%s/%s] memory: RSS peak %.1f MB, of it shmem (memfd heap) peak %.1f MB (sampled); "
            "mappings: process peak %llu (sampled), heap's protected part peak %llu; compaction "
            "work (build + map + release, all threads) %.1f ms.\n",
            w, b, r->rss_peak_bytes / MB, r->shmem_peak_bytes / MB, (unsigned long long)r->vma_peak,
            (unsigned long long)r->compaction.heap_vmas_peak,
            (r->compaction.memcpy_s + r->compaction.map_s + r->compaction.madvise_s) * 1e3);
  if (r->unit.count)
    fprintf(out, "[%s/%s] %llu units: %.2f us median, %.2f p99, %.1f max.\n", w, b,
            (unsigned long long)r->unit.count, us(r->unit.p50), us(r->unit.p99), us(r->unit.max));
  if (r->unit.count)
    print_unit_split(out, w, b, r);
  if (r->verify_cycles || r->digest_checks)
    fprintf(out,
            "[%s/%s] verified %llu times, %llu failures; %llu digest checks, %llu "
            "mismatches.\n",
            w, b, (unsigned long long)r->verify_cycles, (unsigned long long)r->verify_failures,
            (unsigned long long)r->digest_checks, (unsigned long long)r->digest_mismatches);
}

const bench_row *bench_bdw_row_for(const bench_row *rows, size_t count, const bench_row *row) {
  for (size_t i = 0; i < count; i++)
    if (rows[i].workload == row->workload && strcmp(rows[i].backend_requested, "bdw") == 0 &&
        rows[i].result && !rows[i].failed && !rows[i].skipped[0])
      return &rows[i];
  return NULL;
}

static void print_rule(FILE *out) {
  for (int i = 0; i < 176; i++)
    fputc('-', out);
  fputc('\n', out);
}

bool bench_skip_is_first(const bench_row *rows, const bench_row *row) {
  for (const bench_row *other = rows; other < row; other++)
    if (strcmp(other->backend_requested, row->backend_requested) == 0 &&
        strcmp(other->skipped, row->skipped) == 0)
      return false;
  return true;
}

/* Whether row's backend is skipped, for the same reason, in every row it has, on more
 * than one workload. */
static bool skipped_everywhere(const bench_row *rows, size_t count, const bench_row *row) {
  size_t workloads = 0;
  for (size_t i = 0; i < count; i++) {
    if (strcmp(rows[i].backend_requested, row->backend_requested) != 0)
      continue;
    if (strcmp(rows[i].skipped, row->skipped) != 0)
      return false;
    workloads++;
  }
  return workloads > 1;
}

static bool ran(const bench_row *row) {
  return row->result && !row->failed && !row->skipped[0];
}

static void print_legend(FILE *out, const bench_row *rows, size_t count) {
  fprintf(out,
          "wall s: the workload's wall time. gcs: collections. pause: one whole stop of the "
          "world, in us\n(with concurrent marking, the default, a cycle stops three times: an "
          "initial pause, a remark\npause and a compaction pause, all short; "
          "the footers give the phases apart).\nstall: a thread waiting for a page being compacted "
          "(concurrent "
          "backends), in us. unit p99:\n99th percentile of a timed unit of work (latency, "
          "compact). sys%%: system CPU as a share of the\nprocess's CPU (user + system). "
          "minflt k: minor page faults, thousands. RSS pk: peak resident set.\npk/live: RSS pk "
          "over the peak live bytes. RSS aft GC: resident set after a final collection.\nt/bdw, "
          "rss/bdw: time and RSS after GC relative to bdwgc (below 1: "
          "better than bdwgc). More in docs/benchmarks.md, \"Output\".\n");
  bool bdw = false;
  for (size_t i = 0; i < count; i++)
    bdw |= strcmp(rows[i].backend_requested, "bdw") == 0;
  if (bdw)
    fprintf(out, "bdw rows: only gcbench and frag have them: those two workloads are also compiled "
                 "for bdwgc\n(bench/shim.h); the others are written for uffdgc only.\n");
}

/* One "best" column of the winners table: the row with the lowest value, and how far
 * behind the next one is. */
static void print_best(FILE *out, const bench_row *rows, size_t count, const bench_workload *w,
                       double (*value)(const bench_result *), const char *fmt, bool last) {
  const bench_row *best = NULL, *next = NULL;
  for (size_t i = 0; i < count; i++) {
    const bench_row *row = &rows[i];
    if (row->workload != w || !ran(row) || value(row->result) < 0)
      continue;
    if (!best || value(row->result) < value(best->result)) {
      next = best;
      best = row;
    } else if (!next || value(row->result) < value(next->result)) {
      next = row;
    }
  }
  char cell[64] = "-";
  if (best) {
    int n = snprintf(cell, sizeof cell, "%s ", bench_row_label(best));
    n += snprintf(cell + n, sizeof cell - (size_t)n, fmt, value(best->result));
    if (next && value(best->result) > 0)
      snprintf(cell + n, sizeof cell - (size_t)n, " (%s %.2fx)", bench_row_label(next),
               value(next->result) / value(best->result));
  }
  fprintf(out, last ? " %s\n" : " %-34s", cell);
}

static double pause_max_ms(const bench_result *r) {
  return r->pause.count ? r->pause.max / 1e6 : -1;
}
static double wall_s(const bench_result *r) {
  return r->wall_s;
}
static double rss_after_mb(const bench_result *r) {
  return r->rss_after_gc_bytes / MB;
}

/* Per workload, which backend won on pause, on time and on memory. */
static void print_winners(FILE *out, const bench_row *rows, size_t count) {
  fprintf(out, "\nbest per workload (lowest; in brackets the runner-up and how many times "
               "higher it is):\n");
  fprintf(out, "%-12s %-34s %-34s %s\n", "workload", "pause (max)", "time (wall)",
          "memory (RSS after GC)");
  for (size_t i = 0; i < count; i++) {
    const bench_workload *w = rows[i].workload;
    bool first = true, any = false;
    for (size_t k = 0; k < count; k++) {
      first &= !(k < i && rows[k].workload == w);
      any |= rows[k].workload == w && ran(&rows[k]);
    }
    if (!first || !any)
      continue;
    fprintf(out, "%-12s", w->name);
    print_best(out, rows, count, w, pause_max_ms, "%.2f ms", false);
    print_best(out, rows, count, w, wall_s, "%.2f s", false);
    print_best(out, rows, count, w, rss_after_mb, "%.1f MB", true);
  }
}

void bench_print_table(FILE *out, const bench_row *rows, size_t count) {
  fprintf(out, "\n%-12s %-11s %8s %6s %9s %9s %9s %8s %8s %8s %5s %8s %8s %7s %8s %8s %8s\n",
          "workload", "backend", "wall s", "gcs", "pause p50", "p99", "max us", "stall50",
          "stall99", "unit p99", "sys%", "minflt k", "RSS pk", "pk/live", "RSS aft", "t/bdw",
          "rss/bdw");
  fprintf(out, "%-12s %-11s %8s %6s %9s %9s %9s %8s %8s %8s %5s %8s %8s %7s %8s %8s %8s\n", "", "",
          "", "", "us", "us", "", "us", "us", "us", "", "", "MB", "", "GC MB", "", "");
  print_rule(out);
  for (size_t i = 0; i < count; i++) {
    const bench_row *row = &rows[i];
    char b[2 * BENCH_NAME_LEN + 8];
    snprintf(b, sizeof b, "%s", bench_row_label(row));
    if (row->skipped[0]) {
      if (!skipped_everywhere(rows, count, row))
        fprintf(out, "%-12s %-11s skipped: %s\n", row->workload->name, b, row->skipped);
      continue;
    }
    const bench_result *r = row->result;
    if (row->failed) {
      fprintf(out, "%-12s %-11s FAILED: %s\n", row->workload->name, b, r->error);
      continue;
    }
    char unit[16] = "-", stall50[16] = "-", stall99[16] = "-", tr[16] = "", rr[16] = "";
    if (r->unit.count)
      snprintf(unit, sizeof unit, "%.1f", us(r->unit.p99));
    if (r->stall.count) {
      snprintf(stall50, sizeof stall50, "%.1f", us(r->stall.p50));
      snprintf(stall99, sizeof stall99, "%.1f", us(r->stall.p99));
    }
    const bench_row *bdw = bench_bdw_row_for(rows, count, row);
    if (bdw && bdw != row) {
      snprintf(tr, sizeof tr, "%.2f", r->wall_s / bdw->result->wall_s);
      snprintf(rr, sizeof rr, "%.2f",
               (double)r->rss_after_gc_bytes / (double)bdw->result->rss_after_gc_bytes);
    } else if (bdw) {
      snprintf(tr, sizeof tr, "1");
      snprintf(rr, sizeof rr, "1");
    }
    char peak_over_live[16] = "-";
    if (r->live_bytes_peak)
      snprintf(peak_over_live, sizeof peak_over_live, "%.2f", bench_rss_peak_over_live(r));
    fprintf(out,
            "%-12s %-11s %8.2f %6llu %9.0f %9.0f %9.0f %8s %8s %8s %5.1f %8.1f %8.1f %7s %8.1f %8s "
            "%8s\n",
            row->workload->name, b, r->wall_s, (unsigned long long)r->gc_cycles, us(r->pause.p50),
            us(r->pause.p99), us(r->pause.max), stall50, stall99, unit, 100 * bench_sys_share(r),
            r->minor_faults / 1e3, r->rss_peak_bytes / MB, peak_over_live,
            r->rss_after_gc_bytes / MB, tr, rr);
  }
  /* A backend skipped for the same reason on every workload: one line, not one per row. */
  for (size_t i = 0; i < count; i++)
    if (rows[i].skipped[0] && skipped_everywhere(rows, count, &rows[i]) &&
        bench_skip_is_first(rows, &rows[i]))
      fprintf(out, "%-12s %-11s skipped: %s\n", "(all)", rows[i].backend_requested,
              rows[i].skipped);
  print_rule(out);
  print_legend(out, rows, count);
  print_winners(out, rows, count);
  /* The bdw comparison once more, per workload, as sentences. */
  for (size_t i = 0; i < count; i++) {
    const bench_row *bdw = &rows[i];
    if (strcmp(bdw->backend_requested, "bdw") != 0 || bench_bdw_row_for(rows, count, bdw) != bdw)
      continue;
    fprintf(out, "%s, ours/bdw (time, RSS after GC):", bdw->workload->name);
    for (size_t k = 0; k < count; k++) {
      const bench_row *row = &rows[k];
      if (row == bdw || row->workload != bdw->workload || !row->result || row->failed ||
          row->skipped[0])
        continue;
      fprintf(out, " %s %.2fx %.2fx;", bench_row_label(row),
              row->result->wall_s / bdw->result->wall_s,
              (double)row->result->rss_after_gc_bytes / (double)bdw->result->rss_after_gc_bytes);
    }
    fputc('\n', out);
  }
}
