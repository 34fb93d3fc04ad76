/* The bdwgc side of the shim (compiled only when libgc-dev is installed, with BENCH_BDW).
 *
 * bdwgc runs with its defaults: conservative, non-moving, non-incremental, one mutator.
 * Pauses are timed with its collection-event callback (start to end of each collection);
 * "live" is estimated from its counters right after a collection (heap - free - allocated
 * since). */
#include <stdio.h>
#include <string.h>

#include "shim.h"

static bench_hist *pause_hist;
static bench_ctx *bdw_ctx; /* for the pause timeline */
static uint64_t pause_start_ns;
static uint64_t live_peak;

/* Called by bdwgc with its allocation lock held: only timestamps, no GC calls. */
static void on_collection_event(GC_EventType event) {
  if (event == GC_EVENT_START)
    pause_start_ns = bench_now_ns();
  else if (event == GC_EVENT_END && pause_start_ns) {
    uint64_t end = bench_now_ns();
    bench_hist_add(pause_hist, end - pause_start_ns);
    bench_record_pause(bdw_ctx, 0, pause_start_ns, end);
  }
}

int bench_bdw_setup(bench_ctx *ctx) {
  pause_hist = bench_hist_new();
  bdw_ctx = ctx;
  GC_set_max_heap_size(ctx->heap_max);
  GC_INIT();
  GC_set_on_collection_event(on_collection_event);
  snprintf(ctx->result->backend, sizeof ctx->result->backend, "bdw");
  return 0;
}

static void note_live(void) {
  struct GC_prof_stats_s st;
  GC_get_prof_stats(&st, sizeof st);
  uint64_t used = st.heapsize_full - st.free_bytes_full;
  uint64_t live = used > st.bytes_allocd_since_gc ? used - st.bytes_allocd_since_gc : 0;
  if (live > live_peak)
    live_peak = live;
}

void shim_sample_tick(shim *s) {
  uint64_t cycles = GC_get_gc_no();
  if (cycles != s->ctx->last_cycles) {
    s->ctx->last_cycles = cycles;
    note_live();
    bench_sample_memory(s->ctx);
  }
}

void shim_collect(shim *s) {
  GC_gcollect();
  s->ctx->last_cycles = GC_get_gc_no();
  note_live();
  bench_sample_memory(s->ctx);
}

void bench_bdw_finish(bench_ctx *ctx) {
  bench_result *r = ctx->result;
  GC_gcollect();
  note_live();
  bench_sample_memory(ctx);
  r->rss_after_gc_bytes = bench_rss_bytes();
  r->gc_cycles = GC_get_gc_no();
  r->heap_max_bytes = ctx->heap_max;
  r->heap_used_bytes = GC_get_heap_size();
  r->live_bytes_peak = live_peak;
  bench_hist_to_dist(pause_hist, &r->pause);
  r->gc_total_pause_s = r->pause.sum / 1e9;
  r->gc_cpu_s = r->gc_total_pause_s; /* one collector thread, inside the pauses */
  bench_hist_free(pause_hist);
  pause_hist = NULL;
}
