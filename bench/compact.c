/* compact: concurrent compaction of a large, sparsely live heap while mutators touch it
 * (the project's issue 4 measurement: pause, stall per fault, compaction throughput).
 *
 * The live set is C chains of CHAIN nodes (32-128 byte payloads, a `next` reference),
 * hanging off one table; it is about a quarter of the heap and spread over all of it:
 * chains are built position-major (position 0 of every chain, then position 1, ...) with
 * 2-3 garbage objects after each live node, so the nodes of one chain lie at eight places
 * across the heap and every page holds some live data. Per cycle:
 *
 *   1. (cycles after the first) refill: position-major again, three quarters of the live
 *      nodes are replaced by fresh copies, each followed by garbage. The survivors sit
 *      compacted at the bottom, the replacements spread over the rest: the heap is again
 *      ~25% live everywhere and the next compaction slides every page.
 *   2. ugc_collect: mark, plan, hand-off (the stw backend builds every page here).
 *   3. `--threads` mutator threads chase chains from random table slots (reading every
 *      node, checking its id, writing every other node) while the collecting thread waits
 *      for the compaction to end (UGC_COLLECT_FINISH): mutators that touch a page not
 *      built yet stall or build it themselves; the GC threads build the rest. They keep
 *      chasing until the compaction is over and at least MIN_CHASES each.
 *
 * The trigger is the whole heap, so the only collections are the measured ones; the result's
 * statistics are taken after the last of them (the driver's final collection is left out).
 * With --verify: graph digest before and after each collection (the
 * mutators are parked then, so nothing else mutates) and ugc_verify. uffdgc only. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

#include "os/procstat.h"
#include "shim.h"

enum {
  CHAIN = 8,        /* nodes per chain: one chase touches 8 places of the heap */
  MIN_PAYLOAD = 32, /* node payload bytes: 32, 40, ..., 128 */
  MAX_PAYLOAD = 128,
  MIN_CHASES = 500, /* per mutator per cycle, even when the compaction ended sooner */
  MAX_MUTATORS = 64,
  THINK_US = 200, /* a mutator sleeps this long after each chase (UGC_BENCH_THINK_US) */
};
/* Live bytes per heap byte, and heap bytes allocated per live node (itself included). */
#define LIVE_FRACTION 0.25
#define ALLOC_PER_LIVE 3.4 /* 1 live + 2.4 garbage on average: the heap fills to ~85-89% */
#define AVERAGE_OBJECT 88  /* header + mean payload of 32..128 */

/* A chain node; allocated with 32-128 payload bytes (the type's fixed part is the first 32:
 * `next` and `aux` are its reference slots). */
typedef struct cnode {
  struct cnode *next;
  void *aux;
  int64_t id;      /* chain * CHAIN + position, checked by every chase */
  int64_t touched; /* written by the chases */
} cnode;

typedef struct compact_state {
  bench_ctx *ctx;
  ugc_heap *heap;
  ugc_type_id node_type;
  uint64_t chains_count;
  barray *chains;  /* global root: chains[c] = first node of chain c */
  barray *cursors; /* global root: per chain, the node before the position being built */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  unsigned go;                      /* cycle number + 1 the mutators may chase in; under lock */
  unsigned finished;                /* mutators done with the current cycle; under lock */
  bool quit;                        /* under lock */
  _Atomic unsigned compaction_done; /* cycle number + 1 whose compaction has ended */
  _Atomic uint64_t bad_nodes;
  _Atomic uint64_t chases;
} compact_state;

typedef struct mutator_arg {
  pthread_t thread;
  compact_state *st;
  unsigned index;
  bench_hist *units;
} mutator_arg;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t random_payload(uint64_t *rng) {
  return MIN_PAYLOAD + 8 * (size_t)(bench_rand(rng) % ((MAX_PAYLOAD - MIN_PAYLOAD) / 8 + 1));
}

static cnode *alloc_node(compact_state *st, ugc_mutator *m, uint64_t *rng) {
  cnode *n = (cnode *)ugc_alloc(m, st->node_type, random_payload(rng));
  if (!n)
    bench_fail(st->ctx, "out of memory: the heap is too small for this workload");
  return n;
}

/* 2 or 3 dead objects (mean 2.4) after a live node: nodes and leaves of 32-128 bytes. */
static void alloc_garbage(compact_state *st, ugc_mutator *m, uint64_t *rng) {
  unsigned n = 2 + (bench_rand(rng) % 5 < 2);
  for (unsigned k = 0; k < n; k++) {
    if (bench_rand(rng) % 4 == 0) {
      char *leaf = (char *)ugc_alloc(m, st->ctx->types[BENCH_T_LEAF], random_payload(rng));
      if (!leaf)
        bench_fail(st->ctx, "out of memory allocating garbage");
      leaf[0] = (char)k;
    } else {
      alloc_node(st, m, rng)->id = -1;
    }
  }
}

/* Builds or rebuilds every chain position-major. `replace_percent` of the nodes at each
 * position are new (100 on the first build); the rest stay. Raw pointers are re-read from
 * the roots after every allocation: a collection could move them (it should not: the
 * trigger is the whole heap). */
static void build_chains(compact_state *st, ugc_mutator *m, uint64_t *rng,
                         unsigned replace_percent) {
  for (unsigned pos = 0; pos < CHAIN; pos++) {
    for (uint64_t c = 0; c < st->chains_count; c++) {
      cnode *prev = pos ? (cnode *)st->cursors->items[c] : NULL;
      cnode *cur = prev ? prev->next : (cnode *)st->chains->items[c];
      if (bench_rand(rng) % 100 < replace_percent) {
        cnode *fresh = alloc_node(st, m, rng);
        prev = pos ? (cnode *)st->cursors->items[c] : NULL;
        cur = prev ? prev->next : (cnode *)st->chains->items[c];
        fresh->id = (int64_t)(c * CHAIN + pos);
        if (cur) {
          fresh->touched = cur->touched;
          if (cur->next)
            ugc_write(m, fresh, (void **)&fresh->next, cur->next);
        }
        if (prev)
          ugc_write(m, prev, (void **)&prev->next, fresh);
        else
          ugc_write(m, st->chains, &st->chains->items[c], fresh);
        cur = fresh;
        ugc_write(m, st->cursors, &st->cursors->items[c], cur);
        alloc_garbage(st, m, rng);
      } else {
        ugc_write(m, st->cursors, &st->cursors->items[c], cur);
      }
      ugc_safepoint(m);
    }
  }
  for (uint64_t c = 0; c < st->chains_count; c++)
    st->cursors->items[c] = NULL;
}

/* One chase: a random chain from its head to its end. Returns false on a corrupted chain. */
static bool chase(compact_state *st, uint64_t *rng) {
  uint64_t c = bench_rand(rng) % st->chains_count;
  cnode *n = (cnode *)st->chains->items[c];
  unsigned k = 0;
  for (; n; n = n->next, k++) {
    if (k >= CHAIN || n->id != (int64_t)(c * CHAIN + k))
      return false;
    if (k & 1)
      n->touched++;
  }
  return k == CHAIN;
}

static void *mutator_main(void *raw) {
  mutator_arg *arg = (mutator_arg *)raw;
  compact_state *st = arg->st;
  shim s;
  shim_attach(&s, st->ctx);
  uint64_t rng = 0x94D049BB133111EBull ^ ((uint64_t)(arg->index + 1) << 32);
  prctl(PR_SET_TIMERSLACK, 1ul, 0ul, 0ul, 0ul); /* think times of tens of microseconds */
  const char *think_env = getenv("UGC_BENCH_THINK_US");
  long think_us = think_env ? atol(think_env) : THINK_US;
  if (think_us < 0)
    think_us = 0;
  struct timespec think = {think_us / 1000000, (think_us % 1000000) * 1000};
  unsigned seen = 0;
  for (;;) {
    ugc_blocking_enter(s.m);
    pthread_mutex_lock(&st->lock);
    while (st->go == seen && !st->quit)
      pthread_cond_wait(&st->cond, &st->lock);
    bool quit = st->quit;
    seen = st->go;
    pthread_mutex_unlock(&st->lock);
    ugc_blocking_leave(s.m);
    if (quit)
      break;
    uint64_t done = 0, bad = 0;
    while (done < MIN_CHASES || atomic_load(&st->compaction_done) != seen) {
      uint64_t t0 = now_ns();
      bad += !chase(st, &rng);
      bench_hist_add(arg->units, now_ns() - t0);
      done++;
      shim_safepoint(&s);
      if (think_us)
        nanosleep(&think, NULL);
    }
    atomic_fetch_add(&st->bad_nodes, bad);
    atomic_fetch_add(&st->chases, done);
    pthread_mutex_lock(&st->lock);
    st->finished++;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
  }
  shim_detach(&s);
  return NULL;
}

/* A collection, checked with --verify (the mutators are parked: nothing else mutates). */
static void collect_checked(compact_state *st, shim *s) {
  bench_ctx *ctx = st->ctx;
  bench_result *r = ctx->result;
  shim_gc_count(s); /* records the heap size at its fullest */
  uint64_t before = ctx->verify ? ugc_graph_digest(s->m) : 0;
  uint64_t start = bench_now_ns();
  ugc_collect(s->m, UGC_COLLECT_FULL);
  bench_record_pause(ctx, s->thread, start, bench_now_ns());
  if (!ctx->verify)
    return;
  uint64_t after = ugc_graph_digest(s->m);
  r->digest_checks++;
  if (after != before) {
    r->digest_mismatches++;
    fprintf(stderr,
            "uffdgc-bench: compact/%s: graph digest changed across a collection "
            "(%016llx -> %016llx)\n",
            r->backend, (unsigned long long)before, (unsigned long long)after);
  }
  ugc_error error = {0};
  size_t problems = ugc_verify(s->m, &error);
  r->verify_cycles++;
  if (problems) {
    r->verify_failures++;
    fprintf(stderr, "uffdgc-bench: compact/%s: ugc_verify found %zu problem(s): %s\n", r->backend,
            problems, error.message);
  }
}

/* Lets the mutators chase during the compaction of `cycle`, waits for its end, then for
 * the mutators to park again. */
static void chase_during_compaction(compact_state *st, shim *s, unsigned cycle, unsigned n) {
  pthread_mutex_lock(&st->lock);
  st->finished = 0;
  st->go = cycle + 1;
  pthread_cond_broadcast(&st->cond);
  pthread_mutex_unlock(&st->lock);
  ugc_collect(s->m, UGC_COLLECT_FINISH);
  atomic_store(&st->compaction_done, cycle + 1);
  ugc_blocking_enter(s->m);
  pthread_mutex_lock(&st->lock);
  while (st->finished < n)
    pthread_cond_wait(&st->cond, &st->lock);
  pthread_mutex_unlock(&st->lock);
  ugc_blocking_leave(s->m);
}

/* The RSS peak of one cycle: VmHWM restarted when the cycle begins (the run's peak so far is
 * kept in the result first) and read when its compaction has ended. */
static void cycle_peak_start(bench_ctx *ctx) {
  ugc_rss rss = {0};
  if (ugc_proc_rss(&rss) == 0 && rss.rss_peak > ctx->result->rss_peak_bytes)
    ctx->result->rss_peak_bytes = rss.rss_peak;
  ugc_proc_reset_peak_rss();
}

static void cycle_peak_end(bench_ctx *ctx, uint64_t footprint) {
  ugc_rss rss = {0};
  bench_result *r = ctx->result;
  if (ugc_proc_rss(&rss) != 0)
    return;
  if (rss.rss_peak > r->rss_peak_bytes)
    r->rss_peak_bytes = rss.rss_peak;
  /* The cycle with the largest peak relative to what the heap held. */
  if (!r->cycle_footprint_bytes ||
      (double)rss.rss_peak / (double)footprint >
          (double)r->rss_cycle_peak_bytes / (double)r->cycle_footprint_bytes) {
    r->rss_cycle_peak_bytes = rss.rss_peak;
    r->cycle_footprint_bytes = footprint;
  }
}

int compact_run(bench_ctx *ctx);

int compact_run(bench_ctx *ctx) {
  static compact_state st;
  st.ctx = ctx;
  st.heap = (ugc_heap *)ctx->heap;
  st.node_type = ctx->types[BENCH_T_NODE];
  uint64_t live_nodes = (uint64_t)(ctx->heap_max * LIVE_FRACTION / AVERAGE_OBJECT);
  st.chains_count = live_nodes / CHAIN ? live_nodes / CHAIN : 1;
  pthread_mutex_init(&st.lock, NULL);
  pthread_cond_init(&st.cond, NULL);
  ctx->single_threaded = false; /* shim digests off; collect_checked does its own */

  shim s;
  shim_attach(&s, ctx);
  ugc_global_root_add(st.heap, (void **)&st.chains);
  ugc_global_root_add(st.heap, (void **)&st.cursors);
  st.chains = shim_array(&s, st.chains_count);
  st.cursors = shim_array(&s, st.chains_count);
  uint64_t rng = 0x2545F4914F6CDD1Dull;
  build_chains(&st, s.m, &rng, 100);

  unsigned n = ctx->threads ? ctx->threads : 2;
  if (n > MAX_MUTATORS)
    n = MAX_MUTATORS;
  mutator_arg args[MAX_MUTATORS];
  for (unsigned i = 0; i < n; i++) {
    args[i] = (mutator_arg){.st = &st, .index = i, .units = bench_hist_new()};
    if (pthread_create(&args[i].thread, NULL, mutator_main, &args[i]))
      bench_fail(ctx, "pthread_create failed");
  }
  static ugc_stats cycle_stats;
  uint64_t allocated_before = 0, live_before = 0;
  unsigned cycles = 1 + (ctx->scale ? ctx->scale : 1);
  for (unsigned cycle = 0; cycle < cycles; cycle++) {
    if (cycle > 0)
      build_chains(&st, s.m, &rng, 75);
    cycle_peak_start(ctx);
    collect_checked(&st, &s);
    chase_during_compaction(&st, &s, cycle, n);
    ugc_stats_get(st.heap, &cycle_stats);
    /* What the heap held when the cycle began: what the last cycle left live + what was
     * allocated since (the first cycle: the heap's whole first fill). */
    cycle_peak_end(ctx, live_before + cycle_stats.allocated_bytes - allocated_before);
    live_before = cycle_stats.live_bytes_last;
    allocated_before = cycle_stats.allocated_bytes;
    bench_sample_memory(ctx);
  }
  pthread_mutex_lock(&st.lock);
  st.quit = true;
  pthread_cond_broadcast(&st.cond);
  pthread_mutex_unlock(&st.lock);
  ugc_blocking_enter(s.m);
  for (unsigned i = 0; i < n; i++) {
    pthread_join(args[i].thread, NULL);
    bench_hist_merge(ctx->unit_hist, args[i].units);
    bench_hist_free(args[i].units);
  }
  ugc_blocking_leave(s.m);
  /* The result reports the measured cycles only: the driver's final collection (for "RSS
   * after GC", with the live set dropped) is not one of them. */
  static ugc_stats measured;
  ugc_stats_get(st.heap, &measured);
  ctx->stats_snapshot = &measured;
  ugc_global_root_remove(st.heap, (void **)&st.chains);
  ugc_global_root_remove(st.heap, (void **)&st.cursors);
  shim_detach(&s);
  uint64_t bad = atomic_load(&st.bad_nodes);
  if (bad)
    bench_fail(ctx, "%llu chase(s) found a corrupted chain", (unsigned long long)bad);
  return 0;
}
