/* References held by large and non-moving objects, updated after the compaction pause
 * (compact/update_pages.c): a 64 MiB reference array, medium reference arrays, and many
 * pinned objects (FIXED and CUSTOM layout) all point into the moving space, which is
 * compacted every round. Right after each collection two mutator threads read and write
 * those objects while their pages are still being built (the array from its far end, where
 * GC threads arrive last), checking every reference they follow. Each round ends with the
 * graph digest and the verifier; one round forks while a compaction is in flight.
 *
 * With a concurrent backend (copy, move, sigsegv, minor) the updates must have left the
 * pause: the test fails if no page of these objects was built outside it, or if no mutator
 * built one in its fault. It prints how many the mutators built. UGC_TEST_HUGE_MIB sets the
 * huge array's size (default 64 MiB; the backend matrix runs 16). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/itest.h"

typedef struct node {
  uint64_t id;
  uint64_t value;
} node;

/* Pinned holders: two references and the ids they must lead to. */
typedef struct holder {
  node *a, *b;
  uint64_t id_a, id_b;
} holder;

enum {
  NODES = 100000,
  MEDIUM_ARRAYS = 24,
  MEDIUM_SLOTS = 40000, /* 320 KB each */
  HOLDERS = 30000,
  ROUNDS = 4,
};

/* UGC_TEST_HUGE_MIB (default 64) MiB of references in the huge array. */
static size_t huge_slots = (size_t)8 << 20;
static ugc_type_id node_type, garbage_type, array_type, holder_type, custom_type;
static ugc_heap *heap;
static node **huge;                  /* global root */
static node **medium[MEDIUM_ARRAYS]; /* global roots */
static holder **holders;             /* global root: a large array of pinned holders */

/* The node slot i of an array of `count` slots must point to. */
static uint64_t expected_id(size_t i, size_t salt) {
  return (i * 7919u + salt * 104729u) % NODES;
}

static void custom_trace(void *obj, size_t payload_bytes, ugc_tracer *tracer) {
  (void)payload_bytes;
  holder *h = obj;
  ugc_trace_slot(tracer, (void **)&h->a);
  ugc_trace_slot(tracer, (void **)&h->b);
}

static void setup(void) {
  setenv("UFFDGC_BACKEND", "copy", 0); /* the default here; the matrix runs the others */
  ugc_config config = fixture_config((size_t)512 << 20, (size_t)256 << 20);
  heap = itest_heap_create(&config);
  ugc_error error;
  node_type = fixture_leaf_type(heap, "node");
  garbage_type = fixture_leaf_type(heap, "garbage");
  array_type = fixture_type(heap, "refs", UGC_LAYOUT_REF_ARRAY, 0, NULL, 0);
  static const uint32_t refs[] = {offsetof(holder, a), offsetof(holder, b)};
  holder_type = fixture_type(heap, "holder", UGC_LAYOUT_FIXED, sizeof(holder), refs, 2);
  ugc_type_desc custom = {.name = "custom holder",
                          .layout = UGC_LAYOUT_CUSTOM,
                          .fixed_size = sizeof(holder),
                          .trace = custom_trace};
  custom_type = ugc_type_register(heap, &custom, &error);
  REQUIRE(node_type && garbage_type && array_type && holder_type && custom_type);
  ugc_global_root_add(heap, (void **)&huge);
  ugc_global_root_add(heap, (void **)&holders);
  for (int i = 0; i < MEDIUM_ARRAYS; i++)
    ugc_global_root_add(heap, (void **)&medium[i]);
}

static void build(ugc_mutator *m) {
  node **nodes = calloc(NODES, sizeof *nodes); /* only used before any collection */
  REQUIRE(nodes);
  huge = ugc_alloc(m, array_type, huge_slots * sizeof(node *));
  REQUIRE(huge);
  for (int i = 0; i < MEDIUM_ARRAYS; i++) {
    medium[i] = ugc_alloc(m, array_type, (size_t)MEDIUM_SLOTS * sizeof(node *));
    REQUIRE(medium[i]);
  }
  holders = ugc_alloc(m, array_type, (size_t)HOLDERS * sizeof(holder *));
  REQUIRE(holders);
  /* The nodes, with garbage between them, after the big objects (no collection so far:
   * the initial commit is large), so that compaction slides them. */
  for (size_t i = 0; i < NODES; i++) {
    ugc_alloc(m, garbage_type, 24 + (i % 7) * 16);
    nodes[i] = ugc_alloc(m, node_type, sizeof(node));
    REQUIRE(nodes[i]);
    nodes[i]->id = i;
  }
  for (size_t i = 0; i < huge_slots; i++)
    ugc_write(m, huge, (void **)&huge[i], nodes[expected_id(i, 0)]);
  for (int a = 0; a < MEDIUM_ARRAYS; a++)
    for (size_t i = 0; i < MEDIUM_SLOTS; i++)
      ugc_write(m, medium[a], (void **)&medium[a][i], nodes[expected_id(i, (size_t)a + 1)]);
  for (size_t i = 0; i < HOLDERS; i++) {
    holder *h = ugc_alloc_pinned(m, i % 3 ? holder_type : custom_type, sizeof(holder));
    REQUIRE(h);
    h->id_a = expected_id(i, 100);
    h->id_b = expected_id(i, 200);
    ugc_write(m, h, (void **)&h->a, nodes[h->id_a]);
    ugc_write(m, h, (void **)&h->b, nodes[h->id_b]);
    ugc_write(m, holders, (void **)&holders[i], h);
  }
  free(nodes);
}

typedef struct worker {
  pthread_t thread;
  int index;
  _Atomic int *round;
  _Atomic int *done;
  uint64_t failures;
} worker;

/* Worker 0: the huge array from its end, then the medium arrays; reads, checks, rewrites.
 * Worker 1: the pinned holders; checks and swaps their references. */
static void work(worker *w, ugc_mutator *m) {
  if (w->index == 0) {
    for (size_t i = huge_slots; i-- > 0;) {
      node *n = huge[i];
      if (!n || n->id != expected_id(i, 0)) {
        w->failures++;
        continue;
      }
      if (i % 512 == 0) {
        n->value++;
        ugc_write(m, huge, (void **)&huge[i], n);
      }
    }
    for (int a = MEDIUM_ARRAYS; a-- > 0;)
      for (size_t i = 0; i < MEDIUM_SLOTS; i++)
        if (!medium[a][i] || medium[a][i]->id != expected_id(i, (size_t)a + 1))
          w->failures++;
    return;
  }
  for (size_t i = HOLDERS; i-- > 0;) {
    holder *h = holders[i];
    if (!h->a || !h->b || h->a->id != h->id_a || h->b->id != h->id_b) {
      w->failures++;
      continue;
    }
    node *a = h->a;
    uint64_t id_a = h->id_a;
    ugc_write(m, h, (void **)&h->a, h->b);
    ugc_write(m, h, (void **)&h->b, a);
    h->id_a = h->id_b;
    h->id_b = id_a;
  }
}

static void *worker_main(void *arg) {
  worker *w = arg;
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  int seen_round = 0;
  for (;;) {
    ugc_blocking_enter(m);
    while (atomic_load(w->round) == seen_round)
      usleep(100);
    ugc_blocking_leave(m);
    seen_round = atomic_load(w->round);
    if (seen_round < 0)
      break;
    work(w, m);
    atomic_fetch_add(w->done, 1);
  }
  ugc_thread_detach(m);
  return NULL;
}

static void check_fork_during_compaction(ugc_mutator *m, uint64_t digest) {
  ugc_collect(m, UGC_COLLECT_FULL);
  fflush(NULL);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    uint64_t child_digest = ugc_graph_digest(m);
    size_t problems = ugc_verify(m, NULL);
    ugc_collect(m, UGC_COLLECT_FULL);
    uint64_t after = ugc_graph_digest(m);
    _exit(child_digest == digest && after == digest && problems == 0 ? 0 : 3);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_EQ_U64(ugc_graph_digest(m), digest);
}

int main(void) {
  const char *huge_mib = getenv("UGC_TEST_HUGE_MIB");
  if (huge_mib && atoi(huge_mib) > 0)
    huge_slots = (size_t)atoi(huge_mib) << 17; /* 8-byte slots */
  setup();
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  build(m);

  _Atomic int round = 0, done = 0;
  worker workers[2];
  for (int i = 0; i < 2; i++) {
    workers[i] = (worker){.index = i, .round = &round, .done = &done};
    REQUIRE(pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) == 0);
  }
  for (int r = 1; r <= ROUNDS; r++) {
    for (int i = 0; i < 2000; i++)
      ugc_alloc(m, garbage_type, 64); /* something to slide over next time */
    ugc_collect(m, UGC_COLLECT_FULL);
    atomic_store(&done, 0);
    atomic_store(&round, r); /* the workers meet pages still being built */
    ugc_blocking_enter(m);
    while (atomic_load(&done) < 2)
      usleep(200);
    ugc_blocking_leave(m);
    uint64_t digest = ugc_graph_digest(m); /* the workers changed values and holders */
    ugc_collect(m, UGC_COLLECT_FULL);
    CHECK_EQ_U64(ugc_graph_digest(m), digest);
    CHECK_EQ_U64(ugc_verify(m, NULL), 0);
    if (r == 2)
      check_fork_during_compaction(m, digest);
  }
  atomic_store(&round, -1);
  ugc_blocking_enter(m); /* waiting for other threads: no pause may wait for this one */
  for (int i = 0; i < 2; i++) {
    REQUIRE(pthread_join(workers[i].thread, NULL) == 0);
    CHECK_EQ_U64(workers[i].failures, 0);
  }
  ugc_blocking_leave(m);
  ugc_collect(m, UGC_COLLECT_FINISH);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  const ugc_compaction_stats *c = &stats.compaction;
  printf("backend %s: %llu cycles; pages of large and non-moving objects updated by GC "
         "threads %llu, by mutators %llu, in the pause %llu; compaction pause max %.3f ms\n",
         ugc_heap_backend(heap), (unsigned long long)stats.cycles,
         (unsigned long long)c->update_pages_by_gc, (unsigned long long)c->update_pages_by_mutator,
         (unsigned long long)c->update_pages_in_pause, (double)stats.pause_compact.max_ns / 1e6);
  if (strcmp(ugc_heap_backend(heap), "stw") != 0) { /* every concurrent backend */
    CHECK(c->update_pages_by_gc + c->update_pages_by_mutator > 0);
    CHECK(c->update_pages_by_mutator > 0); /* the fault path, not only GC threads */
  }
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
