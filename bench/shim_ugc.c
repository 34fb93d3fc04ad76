/* The uffdgc side of the shim: heap creation with the bench's types, per-thread attach,
 * explicit collections with digest checks, and the statistics that end up in a result. */
#include <stdio.h>
#include <string.h>

#include "os/procstat.h"
#include "runtime/heap.h"
#include "shim.h"

static const uint32_t node_refs[] = {0, 8};

/* The event listener keeps ctx->cycle_events odd from a cycle's first pause to the end of
 * its compaction, so a timed loop can tell whether a cycle overlapped a unit. */
static void on_cycle_start(void *data, uint64_t cycle) {
  (void)cycle;
  __atomic_fetch_add(&((bench_ctx *)data)->cycle_events, 1, __ATOMIC_RELEASE);
}

/* ctx->compaction_events is odd from the end of a cycle's last pause to the end of its
 * compaction (pause_done comes once per cycle, before compaction_done). */
static void on_pause_done(void *data, uint64_t cycle, uint64_t pause_ns) {
  (void)cycle;
  (void)pause_ns;
  __atomic_fetch_add(&((bench_ctx *)data)->compaction_events, 1, __ATOMIC_RELEASE);
}

static void on_compaction_done(void *data, uint64_t cycle, uint64_t concurrent_ns) {
  (void)cycle;
  (void)concurrent_ns;
  __atomic_fetch_add(&((bench_ctx *)data)->compaction_events, 1, __ATOMIC_RELEASE);
  __atomic_fetch_add(&((bench_ctx *)data)->cycle_events, 1, __ATOMIC_RELEASE);
}

int bench_ugc_setup(bench_ctx *ctx, const char *backend) {
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = ctx->heap_max;
  /* The first trigger must fit in small heaps; otherwise keep the library's default. */
  if (config.heap_initial > ctx->heap_max / 2)
    config.heap_initial = ctx->heap_max / 2;
  if (ctx->trigger_at_max) {
    config.heap_initial = ctx->heap_max;
    config.growth_factor = 1000.0;
  }
  config.backend = backend;
  if (ctx->delivery)
    config.delivery = ctx->delivery;
  config.verify = ctx->verify ? 1 : 0;
  ugc_error error = {0};
  ugc_heap *heap = ugc_heap_create(&config, &error);
  if (!heap) {
    snprintf(ctx->result->error, sizeof ctx->result->error, "%s", error.message);
    return error.code == UGC_ERR_UNAVAILABLE ? -2 : -1;
  }
  const ugc_type_desc descs[3] = {
      {.name = "bench.node",
       .layout = UGC_LAYOUT_FIXED,
       .fixed_size = sizeof(bnode),
       .ref_offsets = node_refs,
       .ref_count = 2},
      {.name = "bench.array", .layout = UGC_LAYOUT_REF_ARRAY, .fixed_size = sizeof(barray)},
      {.name = "bench.leaf", .layout = UGC_LAYOUT_LEAF},
  };
  for (int i = 0; i < 3; i++) {
    ugc_type_id id = ugc_type_register(heap, &descs[i], &error);
    if (!id) {
      snprintf(ctx->result->error, sizeof ctx->result->error, "type %s: %.200s", descs[i].name,
               error.message);
      ugc_heap_destroy(heap);
      return -1;
    }
    ctx->types[BENCH_T_NODE + i] = id;
  }
  ctx->heap = heap;
  const ugc_event_listener listener = {.data = ctx,
                                       .cycle_start = on_cycle_start,
                                       .pause_done = on_pause_done,
                                       .compaction_done = on_compaction_done};
  ugc_set_event_listener(heap, &listener);
  snprintf(ctx->result->backend, sizeof ctx->result->backend, "%s", ugc_heap_backend(heap));
  ugc_config settings;
  ugc_heap_config(heap, &settings);
  snprintf(ctx->result->huge_pages, sizeof ctx->result->huge_pages, "%s",
           settings.huge_pages == UGC_HUGE_PAGES_ON ? "on" : "off");
  ctx->result->gc_threads = settings.gc_threads;
  ctx->result->compact_threads = settings.compact_threads;
  ctx->result->concurrent_mark = settings.concurrent_mark;
  return 0;
}

int shim_attach(shim *s, bench_ctx *ctx) {
  ugc_error error = {0};
  s->ctx = ctx;
  s->ticks = 0;
  s->thread = __atomic_fetch_add(&ctx->threads_attached, 1, __ATOMIC_RELAXED);
  s->m = ugc_thread_attach((ugc_heap *)ctx->heap, &error);
  if (!s->m)
    bench_fail(ctx, "ugc_thread_attach: %s", error.message);
  s->node = ctx->types[BENCH_T_NODE];
  s->array = ctx->types[BENCH_T_ARRAY];
  s->leaf = ctx->types[BENCH_T_LEAF];
  return 0;
}

void shim_detach(shim *s) {
  ugc_thread_detach(s->m);
  s->m = NULL;
}

uint64_t shim_gc_count(shim *s) {
  /* ugc_stats_get copies a few KiB; callers only do this every few thousand ticks. */
  static __thread ugc_stats stats;
  ugc_stats_get((ugc_heap *)s->ctx->heap, &stats);
  /* The footer's "heap size": the most the heap held when sampled. */
  uint64_t used = stats.heap_used_bytes + stats.nonmoving_used_bytes + stats.large_used_bytes;
  uint64_t *peak = &s->ctx->result->heap_used_bytes;
  uint64_t old = __atomic_load_n(peak, __ATOMIC_RELAXED);
  while (used > old && !__atomic_compare_exchange_n(peak, &old, used, false, __ATOMIC_RELAXED,
                                                    __ATOMIC_RELAXED)) {
  }
  return stats.cycles;
}

void shim_sample_tick(shim *s) {
  uint64_t cycles = shim_gc_count(s);
  if (__atomic_exchange_n(&s->ctx->last_cycles, cycles, __ATOMIC_RELAXED) != cycles)
    bench_sample_memory(s->ctx);
}

/* Bumped by the library at the end of every stop of the world. The bench reads it from the
 * heap's internals: the public API has no per-pause notification yet. */
static uint64_t pause_epoch(const shim *s) {
  return __atomic_load_n(&((const ugc_heap *)s->ctx->heap)->pause_epoch, __ATOMIC_ACQUIRE);
}

void *shim_alloc_timed(shim *s, ugc_type_id type, size_t bytes) {
  uint64_t epoch = pause_epoch(s), start = bench_now_ns();
  void *p = ugc_alloc(s->m, type, bytes);
  if (pause_epoch(s) != epoch)
    bench_record_pause(s->ctx, s->thread, start, bench_now_ns());
  return p;
}

void shim_safepoint_timed(shim *s) {
  uint64_t epoch = pause_epoch(s), start = bench_now_ns();
  ugc_safepoint(s->m);
  if (pause_epoch(s) != epoch)
    bench_record_pause(s->ctx, s->thread, start, bench_now_ns());
}

void shim_collect(shim *s) {
  bench_ctx *ctx = s->ctx;
  bool check = ctx->verify && ctx->single_threaded;
  uint64_t before = check ? ugc_graph_digest(s->m) : 0;
  uint64_t start = bench_now_ns();
  ugc_collect(s->m, UGC_COLLECT_FULL);
  bench_record_pause(ctx, s->thread, start, bench_now_ns());
  if (check) {
    bench_result *r = ctx->result;
    uint64_t after = ugc_graph_digest(s->m);
    r->digest_checks++;
    if (after != before) {
      r->digest_mismatches++;
      fprintf(stderr,
              "uffdgc-bench: %s/%s: graph digest changed across a collection "
              "(%016llx -> %016llx)\n",
              r->workload, r->backend, (unsigned long long)before, (unsigned long long)after);
    }
    ugc_error error = {0};
    size_t problems = ugc_verify(s->m, &error);
    r->verify_cycles++;
    if (problems) {
      r->verify_failures++;
      fprintf(stderr, "uffdgc-bench: %s/%s: ugc_verify found %zu problem(s): %s\n", r->workload,
              r->backend, problems, error.message);
    }
  }
  ctx->last_cycles = shim_gc_count(s);
  bench_sample_memory(ctx);
}

void bench_ugc_finish(bench_ctx *ctx) {
  bench_result *r = ctx->result;
  ugc_heap *heap = (ugc_heap *)ctx->heap;
  shim s;
  shim_attach(&s, ctx);
  /* Final collection, waiting for a concurrent compaction to end: "RSS after GC". */
  ugc_collect(s.m, UGC_COLLECT_FULL);
  ugc_collect(s.m, UGC_COLLECT_FINISH);
  if (ctx->verify) {
    ugc_error error = {0};
    size_t problems = ugc_verify(s.m, &error);
    r->verify_cycles++;
    if (problems) {
      r->verify_failures++;
      fprintf(stderr, "uffdgc-bench: %s/%s: final ugc_verify: %zu problem(s): %s\n", r->workload,
              r->backend, problems, error.message);
    }
  }
  bench_sample_memory(ctx);
  r->rss_after_gc_bytes = ugc_proc_rss_bytes();
  shim_detach(&s);

  static ugc_stats st;
  if (ctx->stats_snapshot)
    memcpy(&st, ctx->stats_snapshot, sizeof st);
  else
    ugc_stats_get(heap, &st);
  r->gc_cycles = st.cycles;
  r->mark_concurrent_cycles = st.mark_concurrent_cycles;
  r->mark_remark_retries = st.mark_remark_retries;
  r->alloc_waits = st.alloc_waits;
  r->alloc_wait_s = st.alloc_wait_ns / 1e9;
  r->alloc_waits_marking = st.alloc_waits_marking;
  r->alloc_wait_build_s = st.alloc_wait_build_ns / 1e9;
  r->mark_assists = st.mark_assists;
  r->mark_assist_mb = st.mark_assist_bytes / 1e6;
  r->mark_assist_s = st.mark_assist_ns / 1e9;
  r->heap_max_bytes = st.heap_max_bytes ? st.heap_max_bytes : ctx->heap_max;
  r->live_bytes_peak = st.live_bytes_peak;
  r->gc_cpu_s = st.gc_cpu_ns / 1e9;
  r->gc_total_pause_s = st.pause.sum_ns / 1e9;
  bench_hist_to_dist(&st.pause, &r->pause);
  bench_hist_to_dist(&st.pause_mark, &r->pause_mark);
  bench_hist_to_dist(&st.pause_compact, &r->pause_compact);
  bench_hist_to_dist(&st.stall, &r->stall);
  r->verify_cycles += st.verify_cycles;
  r->verify_failures += st.verify_failures;
  const ugc_compaction_stats *c = &st.compaction;
  bench_compaction *o = &r->compaction;
  o->pages_total = c->pages_total;
  o->pages_in_place = c->pages_in_place;
  o->pages_slid_whole = c->pages_slid_whole;
  o->pages_recycled = c->pages_recycled;
  o->pages_fresh = c->pages_fresh;
  o->pages_moved_huge = c->pages_moved_huge;
  o->pages_retained_reused = c->pages_retained_reused;
  o->pages_recycled_huge = c->pages_recycled_huge;
  o->pages_untouched = c->pages_untouched;
  o->moves_misreported = c->moves_misreported;
  o->pages_by_mutator = c->pages_by_mutator;
  o->pages_by_gc = c->pages_by_gc;
  o->pages_by_waiting_mutators = c->pages_by_waiting_mutators;
  o->copy_ioctls = c->copy_ioctls;
  o->move_ioctls = c->move_ioctls;
  o->continue_ioctls = c->continue_ioctls;
  o->zeropage_ioctls = c->zeropage_ioctls;
  o->madvise_calls = c->madvise_calls;
  o->bytes_copied = c->bytes_copied;
  o->concurrent_s = c->concurrent_ns / 1e9;
  o->forwarding_s = c->forwarding_ns / 1e9;
  o->memcpy_s = c->memcpy_ns / 1e9;
  o->map_s = c->map_ns / 1e9;
  o->madvise_s = c->madvise_ns / 1e9;
  o->wait_s = c->wait_ns / 1e9;
  o->handoff_s = c->handoff_ns / 1e9;
  o->handoff_max_s = c->handoff_max_ns / 1e9;
  o->mprotect_calls = c->mprotect_calls;
  o->heap_vmas_peak = c->vmas_peak;
  o->runs_extended = c->runs_extended;
  ugc_heap_destroy(heap);
  ctx->heap = NULL;
}
