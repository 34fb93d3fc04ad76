/* The mark work pool: work given away is taken exactly once, marking ends only when every
 * entered worker is idle and the pool is empty, and a worker that enters after the end
 * finds nothing to do.
 *
 * The "marking" here is a synthetic tree: entry e > 0 stands for a node whose children are
 * 2e and 2e+1 (below a limit). Each worker keeps a local stack and gives half of it away
 * when the pool is hungry, as the marker does; every node must be processed exactly once. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mark/mark_pool.h"
#include "test.h"

enum { NODES = 1 << 20, THREADS = 4 };

static ugc_mark_pool pool;
static _Atomic uint8_t seen[NODES];
static _Atomic size_t duplicates;

static void work(void) {
  uintptr_t *stack = malloc(NODES * sizeof *stack);
  uintptr_t chunk[UGC_MARK_CHUNK_ENTRIES];
  size_t bottom = 0, count = 0, since = 0;
  REQUIRE(stack);
  for (;;) {
    while (count > bottom) {
      uintptr_t node = stack[--count];
      if (atomic_exchange(&seen[node], 1))
        atomic_fetch_add(&duplicates, 1);
      for (uintptr_t child = 2 * node; child <= 2 * node + 1; child++)
        if (child < NODES)
          stack[count++] = child;
      if (++since % 16 == 0 && count - bottom > 1 && ugc_mark_pool_hungry(&pool))
        bottom += ugc_mark_pool_give(&pool, stack + bottom, (count - bottom) / 2);
    }
    bottom = count = 0;
    size_t n = ugc_mark_pool_take(&pool, chunk);
    if (!n)
      break;
    CHECK(n <= UGC_MARK_CHUNK_ENTRIES);
    memcpy(stack, chunk, n * sizeof *chunk);
    count = n;
  }
  free(stack);
}

static void *helper(void *arg) {
  if (ugc_mark_pool_enter(&pool))
    work();
  return NULL;
}

static void run(uint64_t spin_ns, unsigned threads) {
  memset((void *)seen, 0, sizeof seen);
  atomic_store(&duplicates, 0);
  ugc_mark_pool_init(&pool, spin_ns);
  CHECK(ugc_mark_pool_enter(&pool));
  /* The first worker starts with the root and brings the helpers in right away. */
  uintptr_t root = 1;
  CHECK_EQ_U64(ugc_mark_pool_give(&pool, &root, 1), 1);
  pthread_t tids[THREADS];
  for (unsigned i = 1; i < threads; i++)
    REQUIRE(pthread_create(&tids[i], NULL, helper, NULL) == 0);
  work();
  for (unsigned i = 1; i < threads; i++)
    pthread_join(tids[i], NULL);
  size_t missing = 0;
  for (size_t node = 1; node < NODES; node++)
    missing += !atomic_load(&seen[node]);
  CHECK_EQ_U64(missing, 0);
  CHECK_EQ_U64(atomic_load(&duplicates), 0);
  CHECK(atomic_load(&pool.done));
  CHECK_EQ_U64(atomic_load(&pool.chunks), 0);
  /* Marking is over: a late helper finds nothing and does not wait. */
  CHECK(!ugc_mark_pool_enter(&pool));
  printf("spin=%lluns threads=%u: gives=%zu takes=%zu sleeps=%zu\n", (unsigned long long)spin_ns,
         threads, pool.gives, pool.takes, pool.sleeps);
  ugc_mark_pool_destroy(&pool);
}

int main(void) {
  /* Alone: take returns 0 at once once the local work is done. */
  ugc_mark_pool_init(&pool, 0);
  uintptr_t chunk[UGC_MARK_CHUNK_ENTRIES];
  CHECK(ugc_mark_pool_enter(&pool));
  CHECK_EQ_U64(ugc_mark_pool_take(&pool, chunk), 0);
  CHECK(!ugc_mark_pool_enter(&pool));
  ugc_mark_pool_destroy(&pool);

  /* Giving more than a chunk splits it; takes return what was given, in chunks. */
  ugc_mark_pool_init(&pool, 0);
  CHECK(ugc_mark_pool_enter(&pool));
  uintptr_t many[3 * UGC_MARK_CHUNK_ENTRIES + 5];
  for (size_t i = 0; i < sizeof many / sizeof *many; i++)
    many[i] = i + 1;
  CHECK_EQ_U64(ugc_mark_pool_give(&pool, many, sizeof many / sizeof *many),
               sizeof many / sizeof *many);
  CHECK_EQ_U64(atomic_load(&pool.chunks), 4);
  size_t total = 0, sum = 0, n;
  while ((n = ugc_mark_pool_take(&pool, chunk)) != 0) {
    total += n;
    for (size_t i = 0; i < n; i++)
      sum += chunk[i];
  }
  CHECK_EQ_U64(total, sizeof many / sizeof *many);
  CHECK_EQ_U64(sum, total * (total + 1) / 2);
  ugc_mark_pool_destroy(&pool);

  /* Several workers, spinning first and sleeping at once. */
  run(20000, 2);
  run(20000, THREADS);
  run(0, 2);
  run(0, THREADS);
  TEST_DONE();
}
