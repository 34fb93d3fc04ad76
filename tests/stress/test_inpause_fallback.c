/* Two heaps collected at the same time by two threads while no compaction GC thread can be
 * created (UFFDGC_INJECT=compact.threads): each heap builds its pages in its own pause,
 * through its own batch buffer. A buffer shared between heaps mixes their pages. Every
 * round checks both graphs' digests and the verifier. Backend from UFFDGC_BACKEND (default
 * copy). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "integration/itest.h"

typedef struct cell {
  struct cell *left, *right;
  uint64_t value;
} cell;

enum { HEAPS = 2, CELLS = 200000, ROUNDS = 30 };

typedef struct heap_job {
  ugc_heap *heap;
  uint64_t seed;
  unsigned bad_rounds;
  uint64_t pages_by_gc;
} heap_job;

static pthread_barrier_t round_start;

static void *collect_main(void *arg) {
  heap_job *job = arg;
  static const uint32_t refs[] = {offsetof(cell, left), offsetof(cell, right)};
  ugc_type_id type = fixture_type(job->heap, "cell", UGC_LAYOUT_FIXED, sizeof(cell), refs, 2);
  REQUIRE(type);
  ugc_mutator *m = fixture_attach(job->heap);
  REQUIRE(m);
  ugc_scope scope = ugc_scope_open(m);
  cell *root = ugc_alloc(m, type, sizeof(cell));
  ugc_root(m, &root);
  uint64_t rng = job->seed;
  for (int i = 0; i < CELLS; i++) {
    cell *c = ugc_alloc(m, type, sizeof(cell));
    c->value = rng;
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    if (rng % 3 == 0)
      continue; /* garbage, so the survivors move */
    cell *at = root;
    for (int depth = 0; depth < 40; depth++) {
      void **slot = (void **)((rng >> depth) & 1 ? &at->left : &at->right);
      if (!*slot) {
        ugc_write(m, at, slot, c);
        break;
      }
      at = *slot;
    }
  }
  uint64_t digest = ugc_graph_digest(m);
  for (int round = 0; round < ROUNDS; round++) {
    ugc_blocking_enter(m);
    pthread_barrier_wait(&round_start); /* both heaps compact at the same moment */
    ugc_blocking_leave(m);
    ugc_collect(m, UGC_COLLECT_FULL);
    for (int i = 0; i < 500; i++) /* new garbage: the next cycle moves objects again */
      ugc_alloc(m, type, sizeof(cell) + (size_t)(i % 4) * 8);
    if (ugc_graph_digest(m) != digest || ugc_verify(m, NULL) != 0)
      job->bad_rounds++;
  }
  ugc_stats stats;
  ugc_stats_get(job->heap, &stats);
  job->pages_by_gc = stats.compaction.pages_by_gc;
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  return NULL;
}

int main(void) {
  setenv("UFFDGC_BACKEND", "copy", 0);
  setenv("UFFDGC_INJECT", "compact.threads", 1);
  ugc_config config = fixture_config((size_t)64 << 20, (size_t)32 << 20);
  heap_job jobs[HEAPS];
  for (int i = 0; i < HEAPS; i++)
    jobs[i] = (heap_job){.heap = itest_heap_create(&config), .seed = 0x9e3779b97f4a7c15ull + i};
  pthread_barrier_init(&round_start, NULL, HEAPS);
  pthread_t threads[HEAPS];
  for (int i = 0; i < HEAPS; i++)
    REQUIRE(pthread_create(&threads[i], NULL, collect_main, &jobs[i]) == 0);
  for (int i = 0; i < HEAPS; i++)
    pthread_join(threads[i], NULL);
  for (int i = 0; i < HEAPS; i++) {
    printf("heap %d: backend=%s rounds=%d bad_rounds=%u pages_by_gc=%llu\n", i,
           ugc_heap_backend(jobs[i].heap), ROUNDS, jobs[i].bad_rounds,
           (unsigned long long)jobs[i].pages_by_gc);
    CHECK_EQ_U64(jobs[i].bad_rounds, 0);
    ugc_heap_destroy(jobs[i].heap);
  }
  pthread_barrier_destroy(&round_start);
  TEST_DONE();
}
