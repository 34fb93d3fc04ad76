/* Out of memory: allocation returns NULL after a last collection and the handler; the heap
 * stays intact and usable; misuse and bad environment values are reported clearly. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

typedef struct node {
  void *next;
  uint64_t data[7];
} node;

static int oom_calls;
static size_t oom_bytes;
static void on_oom(ugc_heap *heap, size_t bytes, void *data) {
  oom_calls++;
  oom_bytes = bytes;
  (void)data;
}

/* Runs fn in a child and returns its stderr (which must end with an abort). */
static void expect_abort(void (*fn)(void), const char *fragment) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    fn();
    _exit(0);
  }
  close(fds[1]);
  char text[1024] = {0};
  size_t got = 0;
  ssize_t r;
  while ((r = read(fds[0], text + got, sizeof text - 1 - got)) > 0)
    got += (size_t)r;
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  if (!strstr(text, fragment)) {
    fprintf(stderr, "expected \"%s\" in: %s\n", fragment, text);
    ugc_test_failures++;
  }
}

static ugc_heap *misuse_heap;
static ugc_type_id misuse_type;

static void alloc_bad_type(void) {
  ugc_mutator *m = ugc_thread_attach(misuse_heap, NULL);
  ugc_alloc_slow(m, 999, 16);
}
static void alloc_too_big(void) {
  ugc_mutator *m = ugc_thread_attach(misuse_heap, NULL);
  ugc_alloc_slow(m, misuse_type, (size_t)5 << 30);
}
static void alloc_detached(void) {
  ugc_mutator *m = ugc_thread_attach(misuse_heap, NULL);
  ugc_thread_detach(m);
  ugc_alloc_slow(m, misuse_type, 16);
}
static void blocking_twice(void) {
  ugc_mutator *m = ugc_thread_attach(misuse_heap, NULL);
  ugc_blocking_enter(m);
  ugc_blocking_enter(m);
}

int main(void) {
  ugc_config config = fixture_config(4 << 20, 1 << 20);
  config.oom_handler = on_oom;
  ugc_heap *heap = fixture_heap(&config);
  REQUIRE(heap);
  ugc_error error;
  uint32_t refs[] = {0};
  ugc_type_id node_type = fixture_type(heap, "node", UGC_LAYOUT_FIXED, sizeof(node), refs, 1);
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);

  ugc_alloc_failure failure;
  ugc_last_alloc_failure(m, &failure);
  CHECK(failure.space == UGC_SPACE_NONE);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, void *, list, NULL);
  size_t count = 0;
  for (;;) {
    node *n = ugc_alloc(m, node_type, sizeof(node));
    if (!n)
      break;
    n->data[0] = count++;
    ugc_write(m, n, &n->next, list);
    list = n;
  }
  CHECK(oom_calls == 1 && oom_bytes == sizeof(node));
  /* The failure says where and why: the moving space, with the whole heap at heap_max. */
  ugc_last_alloc_failure(m, &failure);
  CHECK(failure.space == UGC_SPACE_MOVING);
  CHECK_EQ_U64(failure.requested_bytes, sizeof(node));
  CHECK(failure.heap_max_reached && !failure.space_limit_reached);
  CHECK(failure.heap_used_bytes > (3u << 20) && failure.heap_used_bytes <= (4u << 20));
  CHECK(count > 40000 && count < 70000); /* 4 MiB of 72-byte objects */
  uint64_t digest = ugc_graph_digest(m);
  CHECK(ugc_verify(m, &error) == 0);
  size_t seen = 0;
  for (node *p = list; p; p = p->next, seen++)
    if (p->data[0] != count - 1 - seen)
      break;
  CHECK(seen == count);
  /* Large and pinned allocations fail the same way when their space is full... */
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  CHECK(stats.heap_used_bytes <= (4u << 20));
  CHECK(!ugc_reserve(m, 5u << 20));
  ugc_last_alloc_failure(m, &failure); /* larger than heap_max itself */
  CHECK(failure.space == UGC_SPACE_MOVING && failure.requested_bytes == (5u << 20));
  CHECK(!failure.heap_max_reached && !failure.space_limit_reached);
  /* ... and after dropping the list, everything works again. */
  list = NULL;
  CHECK(ugc_alloc(m, node_type, sizeof(node)) != NULL);
  CHECK(ugc_reserve(m, 1 << 20));
  (void)digest;
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);

  /* The non-moving space fills up before the heap does: its own limit is named. */
  config = fixture_config(32 << 20, 0);
  config.nonmoving_max = 1 << 20;
  heap = fixture_heap(&config);
  node_type = fixture_type(heap, "node", UGC_LAYOUT_FIXED, sizeof(node), refs, 1);
  m = fixture_attach(heap);
  scope = ugc_scope_open(m);
  UGC_LOCAL(m, void *, pinned, NULL);
  for (;;) {
    node *n = ugc_alloc_pinned(m, node_type, sizeof(node));
    if (!n)
      break;
    ugc_write(m, n, &n->next, pinned);
    pinned = n;
  }
  ugc_last_alloc_failure(m, &failure);
  CHECK(failure.space == UGC_SPACE_NONMOVING);
  CHECK(failure.space_limit_reached && !failure.heap_max_reached);
  CHECK(failure.space_used_bytes >=
        (1u << 19)); /* its reservation, rounded up, may exceed nonmoving_max */
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);

  /* Misuse aborts with "uffdgc: <call>: <reason>". */
  misuse_heap = fixture_heap_sized(8 << 20, 0);
  REQUIRE(misuse_heap);
  misuse_type = fixture_leaf_type(misuse_heap, "leaf");
  expect_abort(alloc_bad_type, "uffdgc: ugc_alloc: unregistered type id");
  expect_abort(alloc_too_big, "uffdgc: ugc_alloc: size overflow");
  expect_abort(alloc_detached, "uffdgc: ugc_alloc: the mutator is detached");
  expect_abort(blocking_twice, "uffdgc: ugc_blocking_enter: already inside");
  ugc_heap_destroy(misuse_heap);

  /* Bad environment values name the variable. */
  const char *vars[][2] = {{"UFFDGC_HEAP_MAX", "lots"},
                           {"UFFDGC_TRACE", "maybe"},
                           {"UFFDGC_GC_THREADS", "-3"},
                           {"UFFDGC_DELIVERY", "pigeon"},
                           {"UFFDGC_BACKEND", "nonsense"}};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    setenv(vars[i][0], vars[i][1], 1);
    memset(&error, 0, sizeof error);
    ugc_heap *bad = ugc_heap_create(NULL, &error);
    CHECK(bad == NULL);
    CHECK(error.code == UGC_ERR_INVALID);
    if (!strstr(error.message, vars[i][0]) && !strstr(error.message, vars[i][1])) {
      fprintf(stderr, "message lacks %s: %s\n", vars[i][0], error.message);
      ugc_test_failures++;
    }
    unsetenv(vars[i][0]);
  }
  setenv("UFFDGC_HEAP_MAX", "48M", 1);
  ugc_heap *sized = ugc_heap_create(NULL, &error);
  REQUIRE(sized);
  ugc_stats_get(sized, &stats);
  CHECK_EQ_U64(stats.heap_max_bytes, 48u << 20);
  ugc_heap_destroy(sized);
  unsetenv("UFFDGC_HEAP_MAX");
  TEST_DONE();
}
