/* Several threads allocate, poll safepoints, sleep in blocking regions and ask for
 * collections at the same time; every thread's data must survive every collection, and
 * collections requested while another runs are not repeated. */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

#define THREADS 4
#define ROUNDS 60

typedef struct node {
  uint64_t value;
  void *next;
} node;

static ugc_heap *heap;
static ugc_type_id node_type, leaf_type;
static _Atomic int failures;

static void *worker(void *arg) {
  long id = (long)arg;
  ugc_error error;
  ugc_mutator *m = ugc_thread_attach(heap, &error);
  if (!m) {
    failures++;
    return NULL;
  }
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, void *, list, NULL);
  uint64_t expected = 0;
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < 200; i++) {
      node *n = ugc_alloc(m, node_type, sizeof(node));
      if (!n) {
        failures++;
        break;
      }
      n->value = (uint64_t)id << 32 | (uint64_t)(round * 200 + i);
      ugc_write(m, n, &n->next, list);
      list = n;
      ugc_alloc(m, leaf_type, 100); /* garbage */
      ugc_safepoint(m);
    }
    /* Keep the list bounded: drop everything but the newest 1000. */
    node *p = list;
    for (int i = 1; p && i < 1000; i++)
      p = p->next;
    if (p)
      ugc_write(m, p, (void **)&p->next, NULL); /* drops a reference: the barrier must see it */
    if (round % 7 == id % 7) {
      ugc_blocking_enter(m);
      usleep(2000); /* collections go on without us */
      ugc_blocking_leave(m);
    }
    if (round % 10 == (int)id)
      ugc_collect(m, UGC_COLLECT_FULL);
    /* Check the list: newest first, consecutive values. */
    expected = (uint64_t)id << 32 | (uint64_t)(round * 200 + 199);
    int count = 0;
    for (node *q = list; q; q = q->next, count++, expected--)
      if (q->value != expected) {
        failures++;
        break;
      }
    if (count != (round == 0 ? 200 : 1000 < (round + 1) * 200 ? 1000 : (round + 1) * 200))
      failures++;
  }
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  return NULL;
}

int main(void) {
  /* A small initial commit: frequent allocation-triggered collections too. */
  ugc_config config = fixture_config(32 << 20, 2 << 20);
  config.gc_threads = 2;
  heap = fixture_heap(&config);
  REQUIRE(heap);
  uint32_t refs[] = {8};
  node_type = fixture_type(heap, "node", UGC_LAYOUT_FIXED, 16, refs, 1);
  leaf_type = fixture_leaf_type(heap, "leaf");
  ugc_error error;

  /* The main thread is attached too but sits in a blocking region: it must not hold up
   * any pause. */
  ugc_mutator *main_mutator = fixture_attach(heap);
  REQUIRE(main_mutator);
  ugc_blocking_enter(main_mutator);
  pthread_t threads[THREADS];
  for (long i = 0; i < THREADS; i++)
    REQUIRE(pthread_create(&threads[i], NULL, worker, (void *)i) == 0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(threads[i], NULL);
  ugc_blocking_leave(main_mutator);

  CHECK(failures == 0);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("cycles=%llu pause_max=%.2fms\n", (unsigned long long)stats.cycles,
         stats.pause.max_ns / 1e6);
  /* With concurrent marking, threads keep allocating while a cycle marks and requests
   * made meanwhile join it: fewer cycles than with stop-the-world marking (about 7). */
  CHECK(stats.cycles >= (stats.mark_concurrent_cycles ? 4u : 10u));
  CHECK(ugc_verify(main_mutator, &error) == 0);
  ugc_thread_detach(main_mutator);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
