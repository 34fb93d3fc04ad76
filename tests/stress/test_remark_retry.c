/* The remark pause when a mutator is late to the stop: while the collector waits for it
 * to reach a safepoint, the mutator keeps writing and fills the write barrier's buffers
 * (here: 200,000 swaps of references between old objects, 800,000 recorded values, about
 * 1,500 buffers). Marking all that (and what it reaches) in the pause made a 56 ms remark
 * in the latency bench; the collector now resumes the world and marks the buffers while
 * mutators run, then stops again (ugc_stats.mark_remark_retries).
 *
 * Each round: the mutator waits until marking is on, spins without polling until the
 * collector requests the stop, does its burst of swaps, and only then polls (once per
 * cycle: it then polls until marking is over). The swaps
 * keep every node in the table (one is held only by a C local between its two writes), so
 * after every cycle the sum of the nodes' values must be unchanged and every slot a node;
 * the verifier runs at the end. The test fails unless some remark was given up
 * (mark_remark_retries > 0): the path must have run.
 *
 * UGC_TEST_ITERATIONS (default 12) rounds. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "fixture.h"

typedef struct node {
  uint64_t value;
  void *next;
} node;

typedef struct table {
  uint64_t length;
  void *items[];
} table;

#define NODES 100000
#define SWAPS_PER_BURST 200000

static ugc_heap *heap;
static ugc_type_id node_type, table_type;
static atomic_bool mutator_done;
static unsigned rounds = 12;

static bool marking(ugc_mutator *m) {
  return ugc_fast(m)->marking != 0;
}

static bool stop_requested(ugc_mutator *m) {
  return *ugc_fast(m)->safepoint_requested != 0;
}

/* Polls safepoints until marking is on; false after a long wait. */
static bool wait_marking(ugc_mutator *m) {
  for (long spins = 0; spins < 200000000; spins++) {
    if (marking(m))
      return true;
    ugc_safepoint(m);
    if ((spins & 255) == 255)
      sched_yield();
  }
  return false;
}

static uint64_t sum_values(const table *t) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < t->length; i++) {
    const node *n = t->items[i];
    REQUIRE(n && ugc_object_type(n) == node_type);
    sum += n->value;
  }
  return sum;
}

static void *mutator_main(void *arg) {
  (void)arg;
  ugc_mutator *m = ugc_thread_attach(heap, NULL);
  REQUIRE(m);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, table *, t, ugc_alloc(m, table_type, sizeof(table) + NODES * sizeof(void *)));
  REQUIRE(t);
  t->length = NODES;
  for (uint64_t i = 0; i < NODES; i++) {
    node *n = ugc_alloc(m, node_type, sizeof(node));
    REQUIRE(n);
    n->value = i * 7 + 1;
    ugc_write(m, t, &t->items[i], n);
  }
  const uint64_t expected = sum_values(t);
  uint64_t rng = 0x9E3779B97F4A7C15ull, bursts = 0;
  for (unsigned round = 0; round < rounds; round++) {
    if (!wait_marking(m))
      continue;
    /* No safepoint from here to the end of the burst: this thread is late to the stop. */
    while (marking(m) && !stop_requested(m))
      ;
    if (!marking(m))
      continue; /* the cycle's marking ended in a pause before we saw the request */
    for (long k = 0; k < SWAPS_PER_BURST; k++) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      uint64_t i = rng % NODES, j = (rng >> 32) % NODES;
      void *held = t->items[i]; /* only this local holds it between the two writes */
      ugc_write(m, t, &t->items[i], t->items[j]);
      ugc_write(m, t, &t->items[j], held);
    }
    bursts++;
    ugc_safepoint(m);
    CHECK(sum_values(t) == expected);
    /* One burst per cycle: a burst at every stop would outrun the retries on purpose (the
     * collector then marks the rest in the pause after REMARK_RETRIES). */
    while (marking(m))
      ugc_safepoint(m);
  }
  printf("remark_retry: %llu bursts while the world was stopping\n", (unsigned long long)bursts);
  CHECK(bursts > 0);
  atomic_store(&mutator_done, true);
  ugc_collect(m, UGC_COLLECT_FULL);
  CHECK(sum_values(t) == expected);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  return NULL;
}

static void *collector_main(void *arg) {
  (void)arg;
  ugc_mutator *m = ugc_thread_attach(heap, NULL);
  REQUIRE(m);
  while (!atomic_load(&mutator_done))
    ugc_collect(m, UGC_COLLECT_FULL);
  ugc_thread_detach(m);
  return NULL;
}

int main(void) {
  const char *text = getenv("UGC_TEST_ITERATIONS");
  if (text && atoi(text) > 0)
    rounds = (unsigned)atoi(text);
  heap = fixture_heap_sized((size_t)128 << 20, 0);
  uint32_t refs[] = {8};
  node_type = fixture_type(heap, "node", UGC_LAYOUT_FIXED, sizeof(node), refs, 1);
  table_type = fixture_type(heap, "table", UGC_LAYOUT_REF_ARRAY, 8, NULL, 0);
  fixture_skip_unless_concurrent_marking(heap);
  pthread_t mutator, collector;
  REQUIRE(pthread_create(&mutator, NULL, mutator_main, NULL) == 0);
  REQUIRE(pthread_create(&collector, NULL, collector_main, NULL) == 0);
  pthread_join(mutator, NULL);
  pthread_join(collector, NULL);

  fixture_verify(heap);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("remark_retry: %llu cycles, %llu remark pauses given up, %llu values recorded, %llu "
         "objects marked in remark pauses\n",
         (unsigned long long)stats.cycles, (unsigned long long)stats.mark_remark_retries,
         (unsigned long long)stats.mark_barrier_values,
         (unsigned long long)stats.mark_final_objects);
  CHECK(stats.mark_remark_retries > 0);
  CHECK_EQ_U64(stats.verify_failures, 0);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
