/* fork() in a loop while three threads fault on heap pages and start collections: every
 * child must be able to use the heap (walk it, collect twice, compare the digest) and exit.
 * A child that does not exit within a generous bound is a hang (a lock held by a thread of
 * the parent that does not exist in the child): it is killed and counted, and the test
 * fails. Delivery mode from UFFDGC_DELIVERY (the matrix runs both); backend from
 * UFFDGC_BACKEND (default copy). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/itest.h"

typedef struct item {
  struct item *next;
  uint64_t id;
} item;

enum { ITEMS = 30000, FAULTERS = 3, CHILD_LIMIT_SECONDS = 10 };

static ugc_heap *heap;
static ugc_type_id item_type;
static item *head;
static uint64_t expected_sum, expected_digest;
static _Atomic bool stop;

static uint64_t walk(void) {
  uint64_t count = 0, sum = 0;
  for (item *i = head; i; i = i->next, count++)
    sum += i->id;
  return count == ITEMS ? sum : UINT64_MAX;
}

/* Walks the list (faulting on pages not built yet) and starts collections, so that some
 * thread is inside a collection or waiting for a compaction at almost any moment. */
static void *faulter_main(void *arg) {
  _Atomic int *mismatches = arg;
  ugc_mutator *m = ugc_thread_attach(heap, NULL);
  REQUIRE(m);
  unsigned round = 0;
  while (!atomic_load(&stop)) {
    if (walk() != expected_sum)
      atomic_fetch_add(mismatches, 1);
    if (++round % 2 == 0)
      ugc_collect(m, UGC_COLLECT_FULL);
    else
      ugc_collect(m, UGC_COLLECT_FINISH);
  }
  ugc_thread_detach(m);
  return NULL;
}

/* Waits for `child`; false if it had to be killed after CHILD_LIMIT_SECONDS. */
static bool wait_bounded(pid_t child, int *status) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    pid_t done = waitpid(child, status, WNOHANG);
    if (done == child)
      return true;
    REQUIRE(done == 0);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > CHILD_LIMIT_SECONDS) {
      kill(child, SIGKILL);
      waitpid(child, status, 0);
      return false;
    }
    usleep(500);
  }
}

int main(void) {
  setenv("UFFDGC_BACKEND", "copy", 0);
#ifdef UGC_UNDER_SANITIZER
  SKIP("fork() with allocating threads is not safe under this sanitizer runtime");
#endif
  unsigned forks = itest_env_unsigned("UGC_TEST_FORKS", 100);
  ugc_config config = fixture_config((size_t)128 << 20, 0);
  heap = itest_heap_create(&config);
  static const uint32_t refs[] = {offsetof(item, next)};
  item_type = fixture_type(heap, "item", UGC_LAYOUT_FIXED, sizeof(item), refs, 1);
  REQUIRE(item_type);
  ugc_global_root_add(heap, (void **)&head);

  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  item *tail = NULL;
  for (uint64_t i = 0; i < ITEMS; i++) {
    ugc_alloc(m, item_type, sizeof(item) + (i % 5) * 8); /* garbage, so objects move */
    item *it = ugc_alloc(m, item_type, sizeof(item));
    it->id = i * 7 + 1;
    if (tail)
      ugc_write(m, tail, (void **)&tail->next, it);
    else
      head = it;
    tail = it;
  }
  expected_sum = walk();
  expected_digest = ugc_graph_digest(m);

  _Atomic int mismatches = 0;
  pthread_t faulters[FAULTERS];
  for (int i = 0; i < FAULTERS; i++)
    REQUIRE(pthread_create(&faulters[i], NULL, faulter_main, &mismatches) == 0);

  unsigned hangs = 0, failures = 0;
  ugc_blocking_enter(m);
  for (unsigned i = 0; i < forks; i++) {
    fflush(NULL);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ugc_blocking_leave(m);
      bool ok = walk() == expected_sum;
      ugc_collect(m, UGC_COLLECT_FULL);
      ok = ok && walk() == expected_sum;
      ugc_collect(m, UGC_COLLECT_FULL); /* waits for the compaction the first one started */
      ok = ok && ugc_graph_digest(m) == expected_digest && ugc_verify(m, NULL) == 0;
      _exit(ok ? 0 : 3);
    }
    int status = 0;
    if (!wait_bounded(child, &status)) {
      hangs++;
      fprintf(stderr, "fork %u: the child hung (killed after %d s)\n", i, CHILD_LIMIT_SECONDS);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      failures++;
      fprintf(stderr, "fork %u: the child failed (status 0x%x)\n", i, status);
    }
  }
  ugc_blocking_leave(m);
  atomic_store(&stop, true);
  ugc_blocking_enter(m);
  for (int i = 0; i < FAULTERS; i++)
    pthread_join(faulters[i], NULL);
  ugc_blocking_leave(m);

  CHECK_EQ_U64(hangs, 0);
  CHECK_EQ_U64(failures, 0);
  CHECK_EQ_U64(atomic_load(&mismatches), 0);
  CHECK_EQ_U64(ugc_graph_digest(m), expected_digest);
  CHECK_EQ_U64(ugc_verify(m, NULL), 0);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("backend=%s delivery=%s forks=%u hangs=%u failures=%u cycles=%llu "
         "pages_by_mutator=%llu\n",
         ugc_heap_backend(heap), getenv("UFFDGC_DELIVERY") ? getenv("UFFDGC_DELIVERY") : "default",
         forks, hangs, failures, (unsigned long long)stats.cycles,
         (unsigned long long)stats.compaction.pages_by_mutator);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
