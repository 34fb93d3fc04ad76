/* A child forked without the pthread_atfork handlers (a raw clone system call, as _Fork
 * or a runtime's own fork would do) while a concurrent compaction is in flight: its heap
 * pages not built yet are missing, and the inherited userfaultfd acts on the parent's
 * memory. The child touches the heap, then calls into the library: it must die with the
 * message naming the cause, before any ioctl; the parent must finish its compaction with
 * the same digest. Attempts repeat until one child caught a compaction in flight.
 * Backend from UFFDGC_BACKEND (default copy); meaningful for concurrent backends only. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/itest.h"

typedef struct item {
  struct item *next;
  uint64_t id;
} item;

enum { ITEMS = 150000, ATTEMPTS = 40 };

static item *head;

static uint64_t walk(void) {
  uint64_t sum = 0;
  for (item *i = head; i; i = i->next)
    sum += i->id;
  return sum;
}

/* Reads the child's stderr into buffer (NUL-terminated). */
static void read_all(int fd, char *buffer, size_t size) {
  size_t used = 0;
  ssize_t n;
  while (used + 1 < size && (n = read(fd, buffer + used, size - 1 - used)) > 0)
    used += (size_t)n;
  buffer[used] = 0;
}

int main(void) {
  setenv("UFFDGC_BACKEND", "copy", 0);
  ugc_config config = fixture_config((size_t)128 << 20, 0);
  ugc_heap *heap = itest_heap_create(&config);
  if (!ugc_backend_available(ugc_heap_backend(heap), NULL, 0) ||
      strcmp(ugc_heap_backend(heap), "stw") == 0)
    SKIP("backend %s does not compact concurrently", ugc_heap_backend(heap));
  static const uint32_t refs[] = {offsetof(item, next)};
  ugc_type_id type = fixture_type(heap, "item", UGC_LAYOUT_FIXED, sizeof(item), refs, 1);
  REQUIRE(type);
  ugc_global_root_add(heap, (void **)&head);
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  item *tail = NULL;
  for (uint64_t i = 0; i < ITEMS; i++) {
    ugc_alloc(m, type, sizeof(item) + (i % 3) * 16);
    item *it = ugc_alloc(m, type, sizeof(item));
    it->id = i + 1;
    if (tail)
      ugc_write(m, tail, (void **)&tail->next, it);
    else
      head = it;
    tail = it;
  }
  uint64_t expected_sum = walk();
  uint64_t expected_digest = ugc_graph_digest(m);

  int caught = 0, unaffected = 0, failures = 0;
  for (int attempt = 0; attempt < ATTEMPTS && caught < 3; attempt++) {
    int pipe_fds[2];
    REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
    fflush(NULL);
    ugc_collect(m, UGC_COLLECT_FULL); /* returns with the compaction in flight */
    long child = syscall(SYS_clone, (unsigned long)SIGCHLD, 0UL, 0UL, 0UL, 0UL);
    REQUIRE(child >= 0);
    if (child == 0) {
      dup2(pipe_fds[1], STDERR_FILENO);
      volatile uint64_t sum = walk(); /* reads pages the parent has not built yet */
      (void)sum;
      ugc_collect(m, UGC_COLLECT_FINISH); /* must stop here when a compaction is in flight */
      syscall(SYS_exit_group, 0);
    }
    close(pipe_fds[1]);
    char output[2048];
    read_all(pipe_fds[0], output, sizeof output);
    close(pipe_fds[0]);
    int status = 0;
    REQUIRE(waitpid((pid_t)child, &status, 0) == (pid_t)child);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !output[0]) {
      unaffected++; /* the compaction had ended before the clone */
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
               strstr(output, "without the pthread_atfork handlers")) {
      caught++;
    } else {
      failures++;
      fprintf(stderr, "attempt %d: child status 0x%x, stderr: %s\n", attempt, status, output);
    }
    /* The parent's cycle is intact. */
    CHECK_EQ_U64(walk(), expected_sum);
    ugc_collect(m, UGC_COLLECT_FINISH);
    CHECK_EQ_U64(ugc_graph_digest(m), expected_digest);
    CHECK_EQ_U64(ugc_verify(m, NULL), 0);
  }
  printf("backend=%s caught=%d unaffected=%d failures=%d\n", ugc_heap_backend(heap), caught,
         unaffected, failures);
  CHECK(caught > 0);
  CHECK_EQ_U64(failures, 0);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
