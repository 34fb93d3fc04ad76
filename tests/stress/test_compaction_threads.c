/* Thread life cycles around concurrent compaction: threads that attach, touch the heap,
 * detach and exit while a compaction is in flight; a thread that sits in a blocking region
 * through many cycles; and a thread that forks while collections run (so fork() lands in
 * the marking pause, the compaction pause or the concurrent phase). The graph never changes,
 * so its digest must stay the same everywhere, in every child too.
 *
 * Backend from UFFDGC_BACKEND (default: copy); unavailable = skipped. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/itest.h"

typedef struct item {
  struct item *next;
  struct item *payload; /* a leaf-ish neighbour, so pages reference each other */
  uint64_t id;
} item;

enum { ITEMS = 120000, CYCLES = 40, VISITORS = 2 };

static ugc_heap *heap;
static ugc_type_id item_type;
static item *head;
static uint64_t expected_digest;
static _Atomic bool stop_forking;
static _Atomic int fork_failures, forks_done;

static uint64_t walk(void) {
  uint64_t count = 0, sum = 0;
  for (item *i = head; i; i = i->next, count++)
    sum += i->id + (i->payload ? i->payload->id : 0);
  return count == ITEMS ? sum : UINT64_MAX;
}

/* Attaches during a compaction, touches pages all over the heap, detaches and exits. */
static void *visitor_main(void *arg) {
  uint64_t *result = arg;
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  *result = walk();
  ugc_thread_detach(m);
  return NULL;
}

/* Stays in a blocking region, leaving it only to fork; the child checks the heap. */
static void *forker_main(void *arg) {
  (void)arg;
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  ugc_blocking_enter(m);
#ifdef UGC_UNDER_SANITIZER
  /* clang 14's ASan runtime does not take its allocator locks around fork(): a child forked
   * while another thread allocates can deadlock in malloc. The fork part runs in the normal
   * build only. */
  while (!atomic_load(&stop_forking))
    usleep(1000);
#endif
  while (!atomic_load(&stop_forking)) {
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
      ugc_blocking_leave(m);
      bool ok = ugc_graph_digest(m) == expected_digest && ugc_verify(m, NULL) == 0;
      ugc_collect(m, UGC_COLLECT_FULL);
      ok = ok && ugc_graph_digest(m) == expected_digest;
      _exit(ok ? 0 : 3);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
      atomic_fetch_add(&fork_failures, 1);
    atomic_fetch_add(&forks_done, 1);
    usleep(300);
  }
  ugc_blocking_leave(m);
  ugc_thread_detach(m);
  return NULL;
}

int main(void) {
  setenv("UFFDGC_BACKEND", "copy", 0); /* the default here; the matrix runs the others */
  ugc_config config = fixture_config((size_t)256 << 20, 0);
  heap = itest_heap_create(&config);
  static const uint32_t refs[] = {offsetof(item, next), offsetof(item, payload)};
  item_type = fixture_type(heap, "item", UGC_LAYOUT_FIXED, sizeof(item), refs, 2);
  REQUIRE(item_type);
  ugc_global_root_add(heap, (void **)&head);

  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  item *tail = NULL, *previous = NULL;
  for (uint64_t i = 0; i < ITEMS; i++) {
    ugc_alloc(m, item_type, sizeof(item) + (i % 7) * 8); /* garbage between live items */
    item *it = ugc_alloc(m, item_type, sizeof(item));
    it->id = i;
    ugc_write(m, it, (void **)&it->payload, previous);
    if (tail)
      ugc_write(m, tail, (void **)&tail->next, it);
    else
      head = it;
    tail = it;
    if (i % 3 == 0)
      previous = it;
  }
  uint64_t expected_walk = walk();
  expected_digest = ugc_graph_digest(m);

  pthread_t forker;
  REQUIRE(pthread_create(&forker, NULL, forker_main, NULL) == 0);
  for (int cycle = 0; cycle < CYCLES; cycle++) {
    ugc_collect(m, UGC_COLLECT_FULL); /* returns while pages are still being built */
    pthread_t visitors[VISITORS];
    uint64_t results[VISITORS];
    for (int v = 0; v < VISITORS; v++)
      REQUIRE(pthread_create(&visitors[v], NULL, visitor_main, &results[v]) == 0);
    ugc_blocking_enter(m);
    for (int v = 0; v < VISITORS; v++) {
      pthread_join(visitors[v], NULL);
      CHECK_EQ_U64(results[v], expected_walk);
    }
    ugc_blocking_leave(m);
    CHECK_EQ_U64(walk(), expected_walk);
  }
  atomic_store(&stop_forking, true);
  ugc_blocking_enter(m);
  pthread_join(forker, NULL);
  ugc_blocking_leave(m);
  CHECK_EQ_U64(ugc_graph_digest(m), expected_digest);
  CHECK_EQ_U64(ugc_verify(m, NULL), 0);
  CHECK_EQ_U64(atomic_load(&fork_failures), 0);
#ifndef UGC_UNDER_SANITIZER
  CHECK(atomic_load(&forks_done) > 0);
#else
  printf("fork() part skipped: not fork-safe under this sanitizer runtime\n");
#endif
  printf("backend=%s cycles=%d forks=%d fork_failures=%d\n", ugc_heap_backend(heap), CYCLES,
         atomic_load(&forks_done), atomic_load(&fork_failures));
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
