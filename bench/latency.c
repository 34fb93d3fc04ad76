/* latency: how long small, fixed units of mutator work take while the collector runs.
 *
 * A live graph of nodes (about a quarter of the heap) hangs off one table; every node's left
 * edge points at a random node. One unit = chase 32 left edges from a random node, summing
 * a field, then allocate: a replacement node spliced into the graph (the old one becomes
 * garbage), a short string and a garbage buffer sized from the heap. Every unit is timed with
 * CLOCK_MONOTONIC; a unit that hits a pause, a stall on an uncompacted page or the allocation
 * slow path shows up in the tail.
 *
 * The timed phase must see the collector at work: the buffer and the unit count are chosen
 * so that the units allocate about 1.5 heaps per --scale, several cycles at the library's
 * default trigger (live * 2: a quarter of the heap is allocated between cycles here). Each unit
 * is filed as "during a cycle" when a cycle (first pause to end of compaction, by the event
 * listener: ctx->cycle_events is odd meanwhile) overlapped it, else as "idle"; those during
 * a cycle that overlapped its compaction (after its last pause) are also filed apart, as
 * "compacting": a unit chases 32 random nodes, so in a compaction it meets pages not built
 * yet, each a stall, while in marking only the barriers, assists and the marker's share of
 * the CPUs slow it down. */
#include <time.h>

#include "shim.h"

enum {
  CHASE = 32,
  UNITS_PER_SCALE = 200000, /* at least this many units per --scale */
  GARBAGE_MIN = 64,         /* bytes of the per-unit garbage buffer: heap_max / 2^17, */
  GARBAGE_MAX = 4096        /* kept within these so a unit stays a small unit of work */
};

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void build_graph(shim *s, barray **table, uint64_t *rng) {
  uint64_t n = (*table)->len;
  for (uint64_t i = 0; i < n; i++) {
    bnode *node = shim_node(s, NULL, NULL);
    node->i = (int64_t)i;
    shim_write(s, *table, &(*table)->items[i], node);
    shim_tick(s);
  }
  for (uint64_t i = 0; i < n; i++) {
    bnode *node = (bnode *)(*table)->items[i];
    shim_write(s, node, (void **)&node->left, (*table)->items[bench_rand(rng) % n]);
    shim_tick(s); /* no allocation here, but 100 ms of cache misses at 1 GiB: a pause waits */
  }
}

/* One unit of work; returns the checksum so the chase is not optimised away. */
static int64_t unit(shim *s, barray **table, uint64_t *rng, size_t garbage) {
  uint64_t n = (*table)->len;
  bnode *p = (bnode *)(*table)->items[bench_rand(rng) % n];
  int64_t sum = 0;
  for (int k = 0; k < CHASE && p; k++) {
    sum += p->i;
    p = p->left;
  }
  uint64_t victim = bench_rand(rng) % n;
  bnode *fresh = shim_node(s, NULL, NULL);
  bnode *old = (bnode *)(*table)->items[victim];
  fresh->i = old->i;
  shim_write(s, fresh, (void **)&fresh->left, old->left);
  shim_write(s, *table, &(*table)->items[victim], fresh);
  /* Edges into the old node keep it alive a while: point one of them at the new node. */
  bnode *from = (bnode *)(*table)->items[bench_rand(rng) % n];
  shim_write(s, from, (void **)&from->left, fresh);
  char *text = (char *)shim_leaf(s, 32 + bench_rand(rng) % 96);
  text[0] = (char)sum;
  char *buffer = (char *)shim_leaf(s, garbage);
  buffer[garbage - 1] = (char)sum;
  return sum;
}

int latency_run(bench_ctx *ctx);

int latency_run(bench_ctx *ctx) {
  shim s;
  shim_attach(&s, ctx);
  uint64_t rng = 0xD1B54A32D192ED03ull;
  /* About a quarter of the heap live, as the latency target asks: a node takes 40
   * bytes with its header plus a table slot, and replaced nodes that edges still reach add
   * about as much again once the units have run (about 70 bytes live per node measured). A
   * cycle then starts at half the heap and leaves the other half for allocation meanwhile. */
  uint64_t nodes = ctx->heap_max / 4 / 70;
  size_t garbage = ctx->heap_max >> 17;
  garbage = garbage < GARBAGE_MIN ? GARBAGE_MIN : garbage > GARBAGE_MAX ? GARBAGE_MAX : garbage;
  /* A unit allocates the buffer plus about 150 bytes (node, string, headers). */
  uint64_t units_for_heap = (uint64_t)(1.5 * (double)ctx->heap_max / (double)(garbage + 150));
  uint64_t units = units_for_heap > UNITS_PER_SCALE ? units_for_heap : UNITS_PER_SCALE;
  units *= ctx->scale ? ctx->scale : 1;
  int64_t sink = 0;
  SHIM_SCOPE_BEGIN(&s);
  barray *table = shim_array(&s, nodes);
  SHIM_ROOT(&s, table);
  build_graph(&s, &table, &rng);
  if (ctx->verify)
    shim_collect(&s);
  uint64_t *events = &ctx->cycle_events;
  uint64_t events_before = __atomic_load_n(events, __ATOMIC_ACQUIRE);
  for (uint64_t u = 0; u < units; u++) {
    uint64_t events_start = __atomic_load_n(events, __ATOMIC_ACQUIRE);
    uint64_t compaction_start = __atomic_load_n(&ctx->compaction_events, __ATOMIC_ACQUIRE);
    uint64_t start = now_ns();
    sink += unit(&s, &table, &rng, garbage);
    shim_safepoint(&s); /* a pause reached here belongs to this unit */
    uint64_t elapsed = now_ns() - start;
    /* Odd at the start: a cycle was running; changed since: one started or ended. */
    bool overlapped =
        (events_start & 1) || __atomic_load_n(events, __ATOMIC_ACQUIRE) != events_start;
    bench_hist_add(ctx->unit_hist, elapsed);
    bench_hist_add(overlapped ? ctx->unit_hist_during_cycle : ctx->unit_hist_idle, elapsed);
    bool compacting =
        (compaction_start & 1) ||
        __atomic_load_n(&ctx->compaction_events, __ATOMIC_ACQUIRE) != compaction_start;
    if (overlapped)
      bench_hist_add(compacting ? ctx->unit_hist_compacting : ctx->unit_hist_marking, elapsed);
    /* Sampling memory is the bench's own cost: outside the timed unit. */
    if ((u & 4095) == 4095)
      shim_sample_tick(&s);
  }
  /* Cycles that overlapped the timed phase: those started in it, and one running at its
   * start. Counted before the verifying collection below. */
  uint64_t events_after = __atomic_load_n(events, __ATOMIC_ACQUIRE);
  ctx->result->timed_cycles = (events_after - events_before + (events_before & 1) + 1) / 2;
  if (ctx->verify)
    shim_collect(&s);
  SHIM_SCOPE_END(&s);
  shim_detach(&s);
  /* Keeps the chase from being optimised away; the value itself means nothing. */
  __asm__ volatile("" : : "r"(sink));
  return 0;
}
