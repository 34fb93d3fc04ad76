/* fork() while other threads are attached: the child sees a complete heap (same digest,
 * verifier clean) and can collect in it, although the other threads do not exist there. */
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

typedef struct node {
  void *next;
  uint64_t value;
} node;

static ugc_heap *heap;
static ugc_type_id node_type;
static _Atomic int stop;

/* Keeps allocating and collecting while the main thread forks. */
static void *churn(void *arg) {
  ugc_mutator *m = ugc_thread_attach(heap, NULL);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, void *, list, NULL);
  int i = 0;
  while (!stop) {
    node *n = ugc_alloc(m, node_type, sizeof(node));
    ugc_write(m, n, &n->next, (++i % 1000) ? list : NULL);
    list = n;
    if (i % 5000 == 0)
      ugc_collect(m, UGC_COLLECT_FULL);
  }
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  return NULL;
}

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

int main(void) {
#ifdef UNDER_TSAN
  SKIP("ThreadSanitizer cannot start threads in a child of a multi-threaded fork");
#endif
#ifdef UGC_UNDER_SANITIZER
  const char *backend = getenv("UFFDGC_BACKEND");
  if (backend && strcmp(backend, "copy") == 0)
    SKIP("backend copy uses userfaultfd/signals: not run under the sanitizer build");
#endif
  /* A backend asked for by UFFDGC_BACKEND may be unavailable here: fixture_heap skips. */
  heap = fixture_heap_sized(32 << 20, 4 << 20);
  REQUIRE(heap);
  uint32_t refs[] = {0};
  node_type = fixture_type(heap, "node", UGC_LAYOUT_FIXED, 16, refs, 1);
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, void *, list, NULL);
  for (int i = 0; i < 20000; i++) {
    node *n = ugc_alloc(m, node_type, sizeof(node));
    n->value = (uint64_t)i;
    ugc_write(m, n, &n->next, list);
    list = n;
  }
  pthread_t thread;
  REQUIRE(pthread_create(&thread, NULL, churn, NULL) == 0);
  for (int round = 0; round < 5; round++) {
    ugc_safepoint(m);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      /* Only this thread exists here. */
      int bad = 0;
      if (ugc_verify(m, NULL) != 0)
        bad |= 1;
      uint64_t before = ugc_graph_digest(m);
      ugc_collect(m, UGC_COLLECT_FULL);
      if (ugc_graph_digest(m) != before)
        bad |= 2;
      uint64_t expected = 19999;
      for (node *p = list; p; p = p->next, expected--)
        if (p->value != expected)
          bad |= 4;
      _exit(bad);
    }
    int status = 0;
    ugc_blocking_enter(m); /* the other thread's collections need not wait for the child */
    waitpid(pid, &status, 0);
    ugc_blocking_leave(m);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
      fprintf(stderr, "child status %#x\n", status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int i = 0; i < 2000; i++) {
      ugc_alloc(m, node_type, sizeof(node));
      ugc_safepoint(m);
    }
  }
  stop = 1;
  ugc_blocking_enter(m);
  pthread_join(thread, NULL);
  ugc_blocking_leave(m);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
