/* The lost-object races of concurrent marking, thousands of times: while a collector thread
 * runs cycle after cycle, each mutator waits until marking is on (its barrier flag) and
 * then, in the middle of marking,
 *   1. hides an object in a field of an old object (maybe already scanned) and deletes its
 *      only other path;
 *   2. stores a new object, which holds the only path to an old one, into an old object;
 *   3. moves an object's only reference into a root slot (roots have no barrier);
 *   4. reads a weak slot whose referent has no strong path and stores it into an object,
 *      and reads another into a root slot (the referent must survive, the slot must follow);
 *   5. does (1) with a non-moving object stored into a large object, and with a large object
 *      held by a non-moving one.
 * After the cycle every hidden object must be intact (a value written into each), the
 * verifier clean, and with one mutator the graph digest taken during marking equal to the
 * digest after the cycle. The test counts the rounds whose operations all happened while
 * marking ran and the values the barrier recorded, and requires both to be non-zero.
 *
 * UGC_TEST_ITERATIONS (default 400) rounds per mutator, UGC_TEST_THREADS mutators (1). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "fixture.h"

typedef struct node {
  uint64_t magic;
  void *f, *g;
} node;

#define BIG_SLOTS 4096       /* 32 KiB: above the large-object threshold set below */
#define BALLAST_NODES 100000 /* a long list: marking it takes about a millisecond */

static ugc_heap *heap;
static ugc_type_id node_type, array_type;
static atomic_int running_mutators;
static atomic_ulong rounds_in_marking, rounds_missed, weak_rounds;
static int nthreads = 1;
#ifdef UGC_UNDER_SANITIZER
static unsigned iterations = 100; /* each round is a cycle; sanitizers make it 5-10x slower */
#else
static unsigned iterations = 400;
#endif

static node *new_node(ugc_mutator *m, uint64_t magic) {
  node *n = ugc_alloc(m, node_type, sizeof(node));
  REQUIRE(n);
  n->magic = magic;
  return n;
}

static node *new_pinned(ugc_mutator *m, uint64_t magic) {
  node *n = ugc_alloc_pinned(m, node_type, sizeof(node));
  REQUIRE(n);
  n->magic = magic;
  return n;
}

static bool marking(ugc_mutator *m) {
  return ugc_fast(m)->marking != 0;
}

/* Polls safepoints until marking is `on`; false after a long wait (the collector is slow
 * to start a cycle, or the cycle ended before we saw it). */
static bool wait_marking(ugc_mutator *m, bool on) {
  for (long spins = 0; spins < 20000000; spins++) {
    if (marking(m) == on)
      return true;
    ugc_safepoint(m);
    if ((spins & 255) == 255)
      sched_yield();
  }
  return false;
}

/* Polls safepoints until the cycle that was marking (number `cycle` + 1) has ended. The
 * marking flag alone is not enough: with cycles back to back a parked thread may sleep
 * from one cycle's final pause into the next one's marking. */
static bool wait_cycle_end(ugc_mutator *m, uint64_t cycle) {
  time_t deadline = time(NULL) + 60;
  for (long spins = 0;; spins++) {
    ugc_safepoint(m);
    if ((spins & 63) == 63) {
      ugc_stats stats;
      ugc_stats_get(heap, &stats);
      if (stats.cycles > cycle)
        return true;
      if (time(NULL) > deadline)
        return false;
      sched_yield();
    }
  }
}

static bool holds(const void *obj, uint64_t magic) {
  return obj && ugc_object_type(obj) == node_type && ((const node *)obj)->magic == magic;
}

static void *mutator_main(void *arg) {
  uint64_t id = (uint64_t)(uintptr_t)arg;
  ugc_error error;
  ugc_mutator *m = ugc_thread_attach(heap, &error);
  REQUIRE(m);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, node *, a, new_node(m, 1));
  UGC_LOCAL(m, node *, b, new_node(m, 2));
  UGC_LOCAL(m, node *, c, new_node(m, 3));
  UGC_LOCAL(m, node *, hidden3, NULL); /* scenario 3's root slot */
  UGC_LOCAL(m, node *, resurrected, NULL);
  UGC_LOCAL(m, void **, big, ugc_alloc(m, array_type, 8 + 8 * BIG_SLOTS));
  REQUIRE(big);
  node *pinned = new_pinned(m, 4); /* never moves: a plain variable is enough */
  ugc_global_root_add(heap, (void **)&pinned);
  void *weak1 = NULL, *weak2 = NULL;
  ugc_weak_add(heap, &weak1);
  ugc_weak_add(heap, &weak2);

  for (unsigned round = 0; round < iterations; round++) {
    uint64_t base = (id << 40) | ((uint64_t)round << 8);
    /* Fresh targets, each with exactly one path (weak ones with none). */
    ugc_write(m, a, &a->f, NULL);
    ugc_write(m, a, &a->g, NULL);
    ugc_write(m, c, &c->f, NULL);
    ugc_write(m, c, &c->g, NULL);
    ugc_write(m, big, &big[3], NULL);
    hidden3 = resurrected = NULL;
    node *x = new_node(m, base | 1);
    ugc_write(m, b, &b->f, x);
    x = new_node(m, base | 2);
    ugc_write(m, b, &b->g, x);
    x = new_node(m, base | 3);
    ugc_write(m, pinned, &pinned->f, x);
    node *x4 = new_pinned(m, base | 4); /* may reach a safepoint: no raw pointer held */
    ugc_write(m, big, &big[1], x4);
    void **x5 = ugc_alloc(m, array_type, 8 + 8 * BIG_SLOTS);
    REQUIRE(x5);
    x5[0] = (void *)(uintptr_t)(base | 5); /* the fixed part: not a reference */
    ugc_write(m, pinned, &pinned->g, x5);
    weak1 = new_node(m, base | 6);
    weak2 = new_node(m, base | 7);
    /* A parked thread can sleep through a whole short cycle; one that began after the
     * weak referents were made may clear them legitimately before we look. */
    ugc_stats stats;
    ugc_stats_get(heap, &stats);
    uint64_t setup_cycles = stats.cycles;

    if (!wait_marking(m, true)) {
      atomic_fetch_add(&rounds_missed, 1);
      continue;
    }
    /* No safepoint from here to the allocation in 2: all of this happens while marking. */
    ugc_stats_get(heap, &stats);
    uint64_t cycle = stats.cycles;
    /* 4. */
    ugc_write(m, c, &c->g, weak1);
    resurrected = weak2;
    /* 1. */
    ugc_write(m, a, &a->f, b->f);
    ugc_write(m, b, &b->f, NULL);
    /* 3. */
    hidden3 = pinned->f;
    ugc_write(m, pinned, &pinned->f, NULL);
    /* 5. */
    ugc_write(m, c, &c->f, big[1]);
    ugc_write(m, big, &big[1], NULL);
    ugc_write(m, big, &big[3], pinned->g);
    ugc_write(m, pinned, &pinned->g, NULL);
    /* 2. (may reach a safepoint: last) */
    node *fresh = new_node(m, base | 8);
    ugc_write(m, fresh, &fresh->f, b->g);
    ugc_write(m, b, &b->g, NULL);
    ugc_write(m, a, &a->g, fresh);
    ugc_stats_get(heap, &stats);
    bool inside = marking(m) && stats.cycles == cycle;
    uint64_t digest_during = 0;
    if (inside && nthreads == 1)
      digest_during = ugc_graph_digest(m);
    if (inside)
      atomic_fetch_add(&rounds_in_marking, 1);
    REQUIRE(wait_cycle_end(m, cycle));

    CHECK(holds(a->f, base | 1));
    CHECK(holds(a->g, base | 8) && holds(((node *)a->g)->f, base | 2));
    CHECK(holds(hidden3, base | 3));
    CHECK(holds(c->f, base | 4) && c->f == x4);
    CHECK(big[3] == x5 && (uintptr_t)x5[0] == (base | 5));
    bool weak_live = cycle == setup_cycles; /* else NULL is a correct outcome too */
    CHECK(weak1 == c->g && (holds(c->g, base | 6) || (!weak_live && !c->g)));
    CHECK(weak2 == resurrected && (holds(resurrected, base | 7) || (!weak_live && !weak2)));
    if (weak_live)
      atomic_fetch_add(&weak_rounds, 1);
    if (digest_during)
      CHECK(ugc_graph_digest(m) == digest_during);
    if (ugc_test_failures) {
      fprintf(stderr, "thread %llu round %u failed (inside marking: %d)\n", (unsigned long long)id,
              round, inside);
      break;
    }
  }
  ugc_weak_remove(heap, &weak1);
  ugc_weak_remove(heap, &weak2);
  ugc_global_root_remove(heap, (void **)&pinned);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  atomic_fetch_sub(&running_mutators, 1);
  return NULL;
}

/* Keeps a long list alive (so that marking takes a while) and collects until the mutators
 * are done. */
static void *collector_main(void *arg) {
  (void)arg;
  ugc_mutator *m = ugc_thread_attach(heap, NULL);
  REQUIRE(m);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, node *, ballast, NULL);
  for (int i = 0; i < BALLAST_NODES; i++) {
    node *n = new_node(m, (uint64_t)i);
    ugc_write(m, n, &n->f, ballast);
    ballast = n;
  }
  while (atomic_load(&running_mutators))
    ugc_collect(m, UGC_COLLECT_FULL);
  long count = 0;
  for (node *n = ballast; n; n = n->f, count++)
    if (n->magic != (uint64_t)(BALLAST_NODES - 1 - count))
      break;
  CHECK(count == BALLAST_NODES);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  return NULL;
}

int main(void) {
  const char *text = getenv("UGC_TEST_ITERATIONS");
  if (text && atoi(text) > 0)
    iterations = (unsigned)atoi(text);
  if ((text = getenv("UGC_TEST_THREADS")) && atoi(text) > 0)
    nthreads = atoi(text);
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = 64 << 20;
  config.large_threshold = 16 * 1024;
  ugc_error error;
  heap = ugc_heap_create(&config, &error);
  if (!heap)
    SKIP("no heap: %s", error.message);
  uint32_t refs[] = {8, 16};
  node_type = ugc_type_register(heap,
                                &(ugc_type_desc){.name = "node",
                                                 .layout = UGC_LAYOUT_FIXED,
                                                 .fixed_size = sizeof(node),
                                                 .ref_offsets = refs,
                                                 .ref_count = 2},
                                &error);
  array_type = ugc_type_register(
      heap, &(ugc_type_desc){.name = "array", .layout = UGC_LAYOUT_REF_ARRAY, .fixed_size = 8},
      &error);
  REQUIRE(node_type && array_type);
  fixture_skip_unless_concurrent_marking(heap);
  printf("mark_races: backend %s, %d mutator(s), %u rounds each\n", ugc_heap_backend(heap),
         nthreads, iterations);
  atomic_store(&running_mutators, nthreads);
  pthread_t collector, mutators[16];
  if (nthreads > 16)
    nthreads = 16;
  for (int i = 0; i < nthreads; i++)
    REQUIRE(pthread_create(&mutators[i], NULL, mutator_main, (void *)(uintptr_t)(i + 1)) == 0);
  REQUIRE(pthread_create(&collector, NULL, collector_main, NULL) == 0);
  for (int i = 0; i < nthreads; i++)
    pthread_join(mutators[i], NULL);
  pthread_join(collector, NULL);

  fixture_verify(heap);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("mark_races: %llu cycles (%llu marked concurrently), %lu rounds inside marking (%lu "
         "with live weak referents), %lu missed, %llu values recorded by the barrier, %llu "
         "objects marked in remark pauses\n",
         (unsigned long long)stats.cycles, (unsigned long long)stats.mark_concurrent_cycles,
         atomic_load(&rounds_in_marking), atomic_load(&weak_rounds), atomic_load(&rounds_missed),
         (unsigned long long)stats.mark_barrier_values,
         (unsigned long long)stats.mark_final_objects);
  CHECK(atomic_load(&rounds_in_marking) > 0);
  CHECK(atomic_load(&weak_rounds) > 0);
  CHECK(stats.mark_barrier_values > 0);
  CHECK_EQ_U64(stats.verify_failures, 0);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
