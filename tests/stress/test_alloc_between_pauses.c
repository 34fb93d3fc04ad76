/* Objects allocated between the remark and the compaction pause of a concurrent cycle:
 * live by construction (allocate black), outside the plan computed while mutators ran, and
 * forwarded by its extension in the compaction pause. A test hook holds every cycle right
 * after its remark pause while each mutator allocates a burst there: chains of small
 * objects (many TLABs) with garbage between them, medium reference arrays (bumped one by
 * one), a non-moving node, large arrays (one inside a reserved sequence, held only by a
 * new node); then one mutator takes the graph digest.
 * After the cycle (its compaction included) the digest must be the same, the verifier
 * clean, every chain intact, and some burst objects must have moved. The plan is extended
 * over the bursts between the pauses in rounds, where the mutators' open TLABs allow it;
 * with UFFDGC_INJECT=plan.small_rounds in rounds of 3 pages (many per window), each of whose
 * boundaries a wrong extension would mis-forward across. With UGC_TEST_IDLE_MUTATOR=1 one
 * more mutator allocates at the start of every window and then waits in a blocking region
 * until the window's cycle is over: its TLAB lies below every burst, so the rounds extend the plan
 * only if they retire it for it (at least one round per window is required).
 *
 * UGC_TEST_ITERATIONS (default 30) windows, UGC_TEST_THREADS mutators (2). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "runtime/concurrent_mark.h"

typedef struct node {
  uint64_t magic;
  void *f, *g;
} node;

#define CHAIN_NODES 2000
#define MEDIUM_EVERY 64   /* a medium array hangs off every 64th node */
#define MEDIUM_SLOTS 2000 /* 16 KiB: above the TLAB's medium bound, below large */
#define LARGE_SLOTS 20000 /* 160 KiB: a large object */
#define KEEP 8            /* bursts kept alive per mutator */
#define MAX_THREADS 8
#define WAIT_SECONDS 60

static ugc_heap *heap;
static ugc_type_id node_type, array_type;
static int nthreads = 2;
#ifdef UGC_UNDER_SANITIZER
static unsigned windows = 8;
#else
static unsigned windows = 30;
#endif

/* The window: opened by the hook on the collector thread after each remark pause. */
static atomic_uint window_gen;
static atomic_bool window_open, digest_taken, stop_collector;
static atomic_int bursts_done;
static atomic_uint checked_gen;
static bool idle_mutator;          /* UGC_TEST_IDLE_MUTATOR */
static atomic_uint idle_ready_gen; /* the window in which the idle mutator has blocked */
static atomic_ulong windows_complete, windows_timed_out, digest_mismatches, moved_heads;
static void *keep_roots[MAX_THREADS]; /* each thread's array of its live bursts */

static void hold_cycle_between_pauses(void *data) {
  (void)data;
  atomic_store(&bursts_done, 0);
  atomic_store(&digest_taken, false);
  atomic_fetch_add(&window_gen, 1);
  atomic_store(&window_open, true);
  struct timespec nap = {0, 100 * 1000};
  time_t deadline = time(NULL) + 10;
  while (!atomic_load(&digest_taken) && !atomic_load(&stop_collector) && time(NULL) < deadline)
    nanosleep(&nap, NULL);
  if (!atomic_load(&stop_collector)) /* not the window the test ended in */
    atomic_fetch_add(atomic_load(&digest_taken) ? &windows_complete : &windows_timed_out, 1);
  atomic_store(&window_open, false);
}

static uint64_t magic_of(int thread, unsigned round, unsigned index) {
  return ((uint64_t)thread << 56) | ((uint64_t)round << 24) | index;
}

static node *new_node(ugc_mutator *m, uint64_t magic, bool pinned) {
  node *n =
      pinned ? ugc_alloc_pinned(m, node_type, sizeof(node)) : ugc_alloc(m, node_type, sizeof(node));
  REQUIRE(n);
  n->magic = magic;
  return n;
}

static void **new_array(ugc_mutator *m, size_t slots, uint64_t magic) {
  void **a = ugc_alloc(m, array_type, 8 + 8 * slots);
  REQUIRE(a);
  a[0] = (void *)(uintptr_t)magic; /* the fixed part: not a reference */
  return a;
}

/* One burst: large array -> non-moving node -> chain of CHAIN_NODES nodes (newest first),
 * a medium array every MEDIUM_EVERY nodes whose slots all point back at its node. */
static void burst(ugc_mutator *m, int thread, unsigned round) {
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, node *, head, NULL);
  for (unsigned i = 0; i < CHAIN_NODES; i++) {
    node *x = new_node(m, magic_of(thread, round, i), false);
    ugc_write(m, x, &x->f, head);
    head = x;
    (void)new_node(m, ~magic_of(thread, round, i), false); /* garbage between live nodes */
    if (i % MEDIUM_EVERY == 0) {
      void **medium = new_array(m, MEDIUM_SLOTS, magic_of(thread, round, i) | 1u << 23);
      for (size_t s = 1; s <= MEDIUM_SLOTS; s++)
        ugc_write(m, medium, &medium[s], head);
      ugc_write(m, head, &head->g, medium);
    }
  }
  /* A large object taken from a reserved sequence, held only by a node as new as itself
   * (allocate black must mark it: nothing traces new nodes). */
  size_t large_bytes = ugc_alloc_size(8 + 8 * LARGE_SLOTS);
  REQUIRE(ugc_reserve(m, large_bytes + ugc_alloc_size(sizeof(node))));
  node *reserved = new_node(m, magic_of(thread, round, CHAIN_NODES + 2), false);
  void **reserved_large = new_array(m, LARGE_SLOTS, magic_of(thread, round, CHAIN_NODES + 3));
  ugc_write(m, reserved, &reserved->g, reserved_large);
  UGC_LOCAL(m, node *, reserved_node, reserved);
  node *pinned = new_node(m, magic_of(thread, round, CHAIN_NODES), true);
  ugc_write(m, pinned, &pinned->f, head);
  ugc_write(m, pinned, &pinned->g, reserved_node);
  UGC_LOCAL(m, node *, holder, pinned); /* pinned never moves, but must stay reachable */
  void **large = new_array(m, LARGE_SLOTS, magic_of(thread, round, CHAIN_NODES + 1));
  ugc_write(m, large, &large[1], holder);
  void **keep = keep_roots[thread];
  ugc_write(m, keep, &keep[1 + round % KEEP], large);
  ugc_scope_close(m, scope);
}

static bool holds(const void *obj, ugc_type_id type, uint64_t magic) {
  return obj && ugc_object_type(obj) == type && *(const uint64_t *)obj == magic;
}

/* Checks every burst `thread` keeps; returns the address of its newest chain head. */
static uintptr_t check_bursts(int thread, unsigned rounds_done) {
  void **keep = keep_roots[thread];
  uintptr_t newest = 0;
  for (unsigned back = 0; back < KEEP && back < rounds_done; back++) {
    unsigned round = rounds_done - 1 - back;
    void **large = keep[1 + round % KEEP];
    REQUIRE(holds(large, array_type, magic_of(thread, round, CHAIN_NODES + 1)));
    node *pinned = large[1];
    REQUIRE(holds(pinned, node_type, magic_of(thread, round, CHAIN_NODES)));
    node *reserved = pinned->g;
    REQUIRE(holds(reserved, node_type, magic_of(thread, round, CHAIN_NODES + 2)));
    REQUIRE(holds(reserved->g, array_type, magic_of(thread, round, CHAIN_NODES + 3)));
    node *n = pinned->f;
    if (!back)
      newest = (uintptr_t)n;
    for (unsigned i = CHAIN_NODES; i-- > 0; n = n->f) {
      REQUIRE(holds(n, node_type, magic_of(thread, round, i)));
      if (i % MEDIUM_EVERY)
        continue;
      void **medium = n->g;
      REQUIRE(holds(medium, array_type, magic_of(thread, round, i) | 1u << 23));
      for (size_t s = 1; s <= MEDIUM_SLOTS; s += 97)
        REQUIRE(medium[s] == n);
    }
    REQUIRE(n == NULL);
  }
  return newest;
}

/* Polls safepoints (the cycle's pauses must be able to stop this thread) until `done`. */
static void wait_for(ugc_mutator *m, bool (*done)(unsigned), unsigned arg) {
  time_t deadline = time(NULL) + WAIT_SECONDS;
  for (long spins = 0; !done(arg); spins++) {
    ugc_safepoint(m);
    if ((spins & 15) == 15) { /* sleep, not yield: spinning starves the collector on 2 CPUs */
      nanosleep(&(struct timespec){0, 50 * 1000}, NULL);
      REQUIRE(time(NULL) < deadline);
    }
  }
}

static bool new_window(unsigned seen) {
  return atomic_load(&window_open) && atomic_load(&window_gen) != seen;
}
static bool all_bursts_done(unsigned unused) {
  (void)unused;
  return atomic_load(&bursts_done) == nthreads;
}
static bool window_checked(unsigned gen) {
  return atomic_load(&checked_gen) == gen;
}
static bool cycle_completed(unsigned cycles_before) {
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  return stats.cycles > cycles_before;
}

static bool idle_blocked(unsigned gen) {
  return atomic_load(&idle_ready_gen) == gen;
}
static bool new_window_or_stop(unsigned seen) {
  return new_window(seen) || atomic_load(&stop_collector);
}

/* UGC_TEST_IDLE_MUTATOR: opens a TLAB at the start of each window (one small object,
 * garbage), then sits in a blocking region until thread 0 has checked the window's cycle
 * (the rounds come after the window closes). */
static void *idle_main(void *arg) {
  (void)arg;
  ugc_mutator *m = fixture_attach(heap);
  unsigned seen = 0;
  while (!atomic_load(&stop_collector)) {
    wait_for(m, new_window_or_stop, seen);
    if (atomic_load(&stop_collector))
      break;
    seen = atomic_load(&window_gen);
    (void)new_node(m, 0, false);
    ugc_blocking_enter(m);
    atomic_store(&idle_ready_gen, seen);
    while (!window_checked(seen) && !atomic_load(&stop_collector))
      nanosleep(&(struct timespec){0, 100 * 1000}, NULL);
    ugc_blocking_leave(m);
  }
  ugc_thread_detach(m);
  return NULL;
}

static void *mutator_main(void *arg) {
  int thread = (int)(uintptr_t)arg;
  ugc_mutator *m = fixture_attach(heap);
  unsigned seen = 0;
  uintptr_t heads_before[MAX_THREADS] = {0};
  for (unsigned round = 0; round < windows; round++) {
    wait_for(m, new_window, seen);
    unsigned gen = atomic_load(&window_gen);
    seen = gen;
    if (idle_mutator) /* its TLAB first, below the burst */
      wait_for(m, idle_blocked, gen);
    burst(m, thread, round);
    atomic_fetch_add(&bursts_done, 1);
    if (thread) {
      wait_for(m, window_checked, gen);
      continue;
    }
    /* Thread 0: digest while every mutator is quiet, let the cycle compact, compare. */
    wait_for(m, all_bursts_done, 0);
    for (int t = 0; t < nthreads; t++)
      heads_before[t] = check_bursts(t, round + 1);
    ugc_stats stats;
    ugc_stats_get(heap, &stats);
    uint64_t digest = ugc_graph_digest(m);
    atomic_store(&digest_taken, true);
    wait_for(m, cycle_completed, (unsigned)stats.cycles);
    for (int t = 0; t < nthreads; t++) /* reads through the concurrent compaction */
      atomic_fetch_add(&moved_heads, check_bursts(t, round + 1) != heads_before[t]);
    if (ugc_graph_digest(m) != digest)
      atomic_fetch_add(&digest_mismatches, 1);
    ugc_error error;
    CHECK(ugc_verify(m, &error) == 0);
    atomic_store(&checked_gen, gen);
  }
  ugc_thread_detach(m);
  return NULL;
}

static void *collector_main(void *arg) {
  (void)arg;
  ugc_mutator *m = fixture_attach(heap);
  while (!atomic_load(&stop_collector))
    ugc_collect(m, UGC_COLLECT_FULL);
  ugc_thread_detach(m);
  return NULL;
}

int main(void) {
  const char *text = getenv("UGC_TEST_ITERATIONS");
  if (text && atoi(text) > 0)
    windows = (unsigned)atoi(text);
  if ((text = getenv("UGC_TEST_THREADS")) && atoi(text) > 0)
    nthreads = atoi(text) < MAX_THREADS ? atoi(text) : MAX_THREADS;
  text = getenv("UFFDGC_INJECT");
  bool small_rounds = text && strstr(text, "plan.small_rounds");
  idle_mutator = (text = getenv("UGC_TEST_IDLE_MUTATOR")) && atoi(text) > 0;
#if defined(UGC_NO_FAULT_INJECTION)
  if (small_rounds)
    SKIP("fault injection is compiled out of this build (UGC_FAULT_INJECTION=OFF)");
#endif
  ugc_config config = fixture_config((size_t)256 << 20, 0);
  config.verify = 1;
  heap = fixture_heap(&config);
  uint32_t refs[] = {8, 16};
  node_type = fixture_type(heap, "node", UGC_LAYOUT_FIXED, sizeof(node), refs, 2);
  array_type = fixture_type(heap, "array", UGC_LAYOUT_REF_ARRAY, 8, NULL, 0);
  ugc_mutator *m = fixture_attach(heap);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  if (!stats.mark_concurrent_cycles) {
    ugc_thread_detach(m);
    ugc_heap_destroy(heap);
    SKIP("concurrent marking is off (UFFDGC_CONCURRENT_MARK=0): no pause pair to allocate "
         "between");
  }
  for (int t = 0; t < nthreads; t++) {
    ugc_global_root_add(heap, &keep_roots[t]);
    keep_roots[t] = new_array(m, 1 + KEEP, 0);
  }
  ugc_thread_detach(m);
  printf("alloc_between_pauses: backend %s, %d mutator(s)%s, %u windows\n", ugc_heap_backend(heap),
         nthreads, idle_mutator ? " and one idle in a blocking region" : "", windows);

  ugc_cmark_set_between_pauses_hook(heap, hold_cycle_between_pauses, NULL);
  pthread_t collector, idle, mutators[MAX_THREADS];
  for (int t = 0; t < nthreads; t++)
    REQUIRE(pthread_create(&mutators[t], NULL, mutator_main, (void *)(uintptr_t)t) == 0);
  if (idle_mutator)
    REQUIRE(pthread_create(&idle, NULL, idle_main, NULL) == 0);
  REQUIRE(pthread_create(&collector, NULL, collector_main, NULL) == 0);
  for (int t = 0; t < nthreads; t++)
    pthread_join(mutators[t], NULL);
  atomic_store(&stop_collector, true);
  pthread_join(collector, NULL);
  if (idle_mutator)
    pthread_join(idle, NULL);
  ugc_cmark_set_between_pauses_hook(heap, NULL, NULL);

  ugc_stats_get(heap, &stats);
  uint64_t plan_rounds = ugc_cmark_plan_rounds(heap);
  printf("alloc_between_pauses: %llu cycles, %lu windows filled (%lu timed out), %llu plan "
         "rounds, %lu chain heads moved, %llu bytes allocated black, %lu digest mismatches, "
         "%llu verifier problems\n",
         (unsigned long long)stats.cycles, atomic_load(&windows_complete),
         atomic_load(&windows_timed_out), (unsigned long long)plan_rounds,
         atomic_load(&moved_heads), (unsigned long long)stats.mark_black_bytes,
         atomic_load(&digest_mismatches), (unsigned long long)stats.verify_failures);
  CHECK(atomic_load(&windows_complete) >= windows);
  CHECK_EQ_U64(atomic_load(&digest_mismatches), 0);
  CHECK_EQ_U64(stats.verify_failures, 0);
  CHECK(atomic_load(&moved_heads) > 0);
  if (small_rounds) /* a few hundred KiB below the open TLABs in every window */
    CHECK(plan_rounds >= (uint64_t)windows * 4);
  if (idle_mutator) /* the idle thread's TLAB, below every burst, was retired for it */
    CHECK(plan_rounds >= (uint64_t)windows);
  CHECK(stats.mark_black_bytes >= (uint64_t)windows * nthreads * CHAIN_NODES * 32);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
