/* Fault injection: kernel operations of the copy backend fail at chosen moments
 * (UFFDGC_INJECT), and kernel features are masked (UFFDGC_DISABLE). Each scenario runs in a
 * fresh process (this program re-executed with the scenario's index: both variables and
 * the kernel probe are read once per process) that builds a graph, collects a few times and
 * checks the graph digest and the verifier: a failure must lead to a retry, a fallback or
 * a clear fatal message (an abort whose message the scenario names), never to a corrupted
 * heap. */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

typedef struct cell {
  struct cell *left, *right;
  uint64_t value;
} cell;

enum { EXIT_OK = 0, EXIT_MISMATCH = 3, EXIT_UNAVAILABLE = 4, EXIT_OTHER = 5 };

/* Builds a random tree with garbage in between, collects `cycles` times, checks. */
static int run_scenario(const char *backend, int cycles, const char *expect_backend,
                        bool fork_first, bool large_array) {
  ugc_config config = fixture_config((size_t)64 << 20, (size_t)32 << 20);
  config.backend = backend;
  ugc_error error;
  ugc_heap *heap = ugc_heap_create(&config, &error);
  if (!heap) {
    printf("  heap_create(%s): %s\n", backend, error.message);
    return error.code == UGC_ERR_UNAVAILABLE && strstr(error.message, backend) ? EXIT_UNAVAILABLE
                                                                               : EXIT_OTHER;
  }
  if (expect_backend && strcmp(ugc_heap_backend(heap), expect_backend) != 0) {
    printf("  backend %s, expected %s\n", ugc_heap_backend(heap), expect_backend);
    return EXIT_OTHER;
  }
  static const uint32_t refs[] = {offsetof(cell, left), offsetof(cell, right)};
  ugc_type_desc desc = {.name = "cell",
                        .layout = UGC_LAYOUT_FIXED,
                        .fixed_size = sizeof(cell),
                        .ref_offsets = refs,
                        .ref_count = 2};
  ugc_type_id type = ugc_type_register(heap, &desc, &error);
  ugc_type_desc array_desc = {.name = "refs", .layout = UGC_LAYOUT_REF_ARRAY};
  ugc_type_id array_type = ugc_type_register(heap, &array_desc, &error);
  ugc_mutator *m = ugc_thread_attach(heap, &error);
  if (!type || !array_type || !m)
    return EXIT_OTHER;
  ugc_scope scope = ugc_scope_open(m);
  cell *root = ugc_alloc(m, type, sizeof(cell));
  ugc_root(m, &root);
  /* A large reference array, whose references are updated after the pause (copy.update_*);
   * only where asked: its pages would change which UFFDIO_COPY the uffd.* points hit. */
  enum { ARRAY_SLOTS = 40000 };
  cell **array = large_array ? ugc_alloc(m, array_type, ARRAY_SLOTS * sizeof(cell *)) : NULL;
  ugc_root(m, &array);
  size_t filled = large_array ? 0 : ARRAY_SLOTS;
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 60000; i++) {
    cell *c = ugc_alloc(m, type, sizeof(cell));
    c->value = (uint64_t)i;
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    if (rng % 3 == 0)
      continue; /* garbage */
    if (filled < ARRAY_SLOTS && rng % 2)
      ugc_write(m, array, (void **)&array[filled++], c);
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
  int result = EXIT_OK;
  if (fork_first) {
    ugc_collect(m, UGC_COLLECT_FULL); /* a compaction in flight at the fork */
    fflush(NULL);
    pid_t child = fork();
    if (child < 0)
      return EXIT_OTHER;
    if (child > 0) { /* the child collects and checks; the parent reports its verdict */
      int status = 0;
      if (waitpid(child, &status, 0) != child || !WIFEXITED(status))
        return EXIT_OTHER;
      if (ugc_graph_digest(m) != digest || ugc_verify(m, NULL) != 0)
        return EXIT_MISMATCH;
      return WEXITSTATUS(status);
    }
  }
  for (int i = 0; i < cycles; i++) {
    ugc_collect(m, UGC_COLLECT_FULL);
    if (ugc_graph_digest(m) != digest || ugc_verify(m, NULL) != 0)
      result = EXIT_MISMATCH;
  }
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("  backend=%s cycles=%llu pages_by_gc=%llu pages_by_mutator=%llu\n",
         ugc_heap_backend(heap), (unsigned long long)stats.cycles,
         (unsigned long long)stats.compaction.pages_by_gc,
         (unsigned long long)stats.compaction.pages_by_mutator);
  if (large_array)
    printf("  large object pages updated: after the pause %llu, in the pause %llu\n",
           (unsigned long long)(stats.compaction.update_pages_by_gc +
                                stats.compaction.update_pages_by_mutator),
           (unsigned long long)stats.compaction.update_pages_in_pause);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  fflush(stdout);
  return result;
}

typedef struct scenario {
  const char *name;
  const char *inject;  /* UFFDGC_INJECT */
  const char *disable; /* UFFDGC_DISABLE */
  const char *backend;
  const char *expect_backend; /* NULL: whatever was chosen */
  int expect_exit;
  const char *expect_fatal;   /* non-NULL: the process must abort with this in its stderr */
  const char *expect_warning; /* non-NULL: a run that succeeds must have said this */
  bool fork_first;            /* build the graph, fork, collect and check in the child */
  bool large_array;           /* the graph includes a large reference array */
} scenario;

#define RETRIES(name_, inject_, message_)                                                          \
  {                                                                                                \
    .name = name_, .inject = inject_, .backend = "copy", .expect_backend = "copy",                 \
    .expect_exit = EXIT_OK, .expect_warning = message_                                             \
  }
#define RUNS(name_, inject_, disable_, backend_, expect_backend_, expect_exit_)                    \
  {                                                                                                \
    .name = name_, .inject = inject_, .disable = disable_, .backend = backend_,                    \
    .expect_backend = expect_backend_, .expect_exit = expect_exit_                                 \
  }
#define UPDATE(name_, inject_, message_)                                                           \
  {                                                                                                \
    .name = name_, .inject = inject_, .backend = "copy", .expect_backend = "copy",                 \
    .expect_exit = EXIT_OK, .expect_warning = message_, .large_array = true                        \
  }
#define UPDATE_ON(backend_, name_, inject_)                                                        \
  {                                                                                                \
    .name = name_, .inject = inject_, .backend = backend_, .expect_backend = backend_,             \
    .expect_exit = EXIT_OK, .large_array = true                                                    \
  }
#define FATAL(name_, inject_, message_)                                                            \
  {                                                                                                \
    .name = name_, .inject = inject_, .backend = "copy", .expect_backend = "copy",                 \
    .expect_fatal = message_                                                                       \
  }

#define SIGSEGV_WARNS(name_, inject_, message_)                                                    \
  {                                                                                                \
    .name = name_, .inject = inject_, .backend = "sigsegv", .expect_backend = "sigsegv",           \
    .expect_exit = EXIT_OK, .expect_warning = message_                                             \
  }

#define MINOR_WARNS(name_, inject_, message_)                                                      \
  {                                                                                                \
    .name = name_, .inject = inject_, .backend = "minor", .expect_backend = "minor",               \
    .expect_exit = EXIT_OK, .expect_warning = message_                                             \
  }

/* The outcomes are tabled in docs/design.md ("Kernel errors and their outcomes"). */
static const scenario scenarios[] = {
    SIGSEGV_WARNS("sigsegv: mapping the heap fails every cycle: stw fallback", "sigsegv.flip",
                  "mapping the heap for the compaction failed"),
    SIGSEGV_WARNS("sigsegv: mapping the heap fails once, after a file-backed cycle",
                  "sigsegv.flip:2", "mapping the heap for the compaction failed"),
    SIGSEGV_WARNS("sigsegv: no memory for page states: heap mapped back", "sigsegv.page_states:2",
                  "no memory for the page states"),
    RUNS("sigsegv: mprotect fails with ENOMEM: runs extended", "sigsegv.mprotect:3", NULL,
         "sigsegv", "sigsegv", EXIT_OK),
    MINOR_WARNS("minor: mapping the heap fails every cycle: stw fallback", "minor.flip",
                "mapping the heap for the compaction failed"),
    MINOR_WARNS("minor: mapping the heap fails once, after a file-backed cycle", "minor.flip:2",
                "mapping the heap for the compaction failed"),
    MINOR_WARNS("minor: registration fails: heap mapped back", "minor.register:2",
                "registering the heap failed"),
    MINOR_WARNS("minor: no memory for page states: heap mapped back", "minor.page_states:2",
                "no memory for the page states"),
    MINOR_WARNS("minor: UFFDIO_CONTINUE: EAGAIN, retried", "uffd.eagain:3",
                "retried after EAGAIN or ENOMEM"),
    RUNS("minor: UFFDIO_CONTINUE: EFAULT once (no page in the file): retried", "uffd.efault:3",
         NULL, "minor", "minor", EXIT_OK),
    {.name = "minor: fork, then the child compacts with its own descriptor",
     .backend = "minor",
     .expect_backend = "minor",
     .expect_exit = EXIT_OK,
     .fork_first = true},
    RUNS("mremap fails every cycle: stw fallback", "copy.mremap", NULL, "copy", "copy", EXIT_OK),
    RUNS("mremap fails once", "copy.mremap:2", NULL, "copy", "copy", EXIT_OK),
    UPDATE("a large object's pages built after the pause, no failure", NULL, NULL),
    UPDATE("a large object's mremap fails: updated in the pause", "copy.update_mremap", NULL),
    UPDATE("a large object's mremap fails once", "copy.update_mremap:2", NULL),
    UPDATE("a large object's registration fails: moved back, updated in the pause",
           "copy.update_register", NULL),
    UPDATE("UFFDIO_COPY of a large object's pages: EAGAIN, retried", "uffd.eagain:2",
           "mapping(s) retried after EAGAIN or ENOMEM"),
    UPDATE("UFFDIO_COPY of a large object's pages: ENOMEM, retried", "uffd.enomem:1",
           "mapping(s) retried after EAGAIN or ENOMEM"),
    UPDATE_ON("sigsegv", "sigsegv: a large object's pages built after the pause", NULL),
    UPDATE_ON("sigsegv", "sigsegv: a large object's mremap fails: updated in the pause",
              "sigsegv.update_mremap"),
    UPDATE_ON("sigsegv", "sigsegv: a large object's mremap fails once", "sigsegv.update_mremap:2"),
    UPDATE_ON("sigsegv", "sigsegv: a large object's mprotect fails: moved back, in the pause",
              "sigsegv.update_mprotect"),
    UPDATE_ON("minor", "minor: a large object's pages built after the pause", NULL),
    UPDATE_ON("minor", "minor: a large object's registration fails: moved back, in the pause",
              "copy.update_register"),
    RUNS("register fails: heap moved back", "copy.register", NULL, "copy", "copy", EXIT_OK),
    RUNS("no memory for page states", "copy.page_states:1", NULL, "copy", "copy", EXIT_OK),
    RUNS("stray read maps a zero page before registration", "copy.stray_read", NULL, "copy", "copy",
         EXIT_OK),
    RUNS("unregister fails once: retried", "copy.unregister:1", NULL, "copy", "copy", EXIT_OK),
    FATAL("unregister keeps failing: fatal", "copy.unregister",
          "unregistering the heap after a compaction keeps failing"),
    RUNS("no GC thread: pages built in the pause", "compact.threads", NULL, "copy", "copy",
         EXIT_OK),
    RUNS("no memory for the plan: cycles without compaction", "plan.tables", NULL, "copy", "copy",
         EXIT_OK),
    {.name = "reopening userfaultfd after fork fails: stw in the child",
     .inject = "copy.reopen",
     .backend = "copy",
     .expect_backend = "copy",
     .expect_exit = EXIT_OK,
     .fork_first = true},
    RETRIES("UFFDIO_COPY: EAGAIN without progress, retried", "uffd.eagain:3",
            "mapping(s) retried after EAGAIN or ENOMEM"),
    RUNS("UFFDIO_COPY: EAGAIN after partial progress, every call", "uffd.partial", NULL, "copy",
         "copy", EXIT_OK),
    RETRIES("UFFDIO_COPY: ENOMEM (memory cgroup limit), retried", "uffd.enomem:3",
            "mapping(s) retried after EAGAIN or ENOMEM"),
    RETRIES("UFFDIO_COPY: ENOMEM then EAGAIN, retried", "uffd.enomem:4,uffd.eagain:5",
            "mapping(s) retried after EAGAIN or ENOMEM"),
    FATAL("UFFDIO_COPY: EEXIST nobody explains: fatal", "uffd.eexist:3",
          "mapped by someone who does not own it"),
    FATAL("UFFDIO_COPY: ENOENT on a data page: fatal", "uffd.enoent:3",
          "the range is not registered"),
    FATAL("UFFDIO_COPY: ESRCH: fatal", "uffd.esrch:3", "address space is gone"),
    FATAL("UFFDIO_COPY: EFAULT: fatal", "uffd.efault:3", "not readable"),
    FATAL("UFFDIO_COPY: EBUSY: fatal", "uffd.ebusy:3", "busy"),
    RUNS("no userfaultfd: explicit copy refused", NULL, "uffd", "copy", NULL, EXIT_UNAVAILABLE),
    RUNS("no userfaultfd: auto falls back to sigsegv", NULL, "uffd", "auto", "sigsegv", EXIT_OK),
    RUNS("no DONTUNMAP: auto falls back to sigsegv", NULL, "dontunmap", "auto", "sigsegv", EXIT_OK),
    RUNS("no userfaultfd, sigsegv masked: auto falls back to stw", NULL, "uffd,sigsegv", "auto",
         "stw", EXIT_OK),
    RUNS("no SIGBUS feature: copy uses a handler thread", NULL, "sigbus", "copy", "copy", EXIT_OK),
    RUNS("only the syscall path", NULL, "dev", "copy", "copy", EXIT_OK),
    RUNS("no dev node, no syscall: copy refused", NULL, "dev,syscall", "copy", NULL,
         EXIT_UNAVAILABLE),
};

/* Reads what the scenario's process wrote to stderr (NUL-terminated, truncated). */
static void read_all(int fd, char *buffer, size_t size) {
  size_t used = 0;
  ssize_t n;
  while (used + 1 < size && (n = read(fd, buffer + used, size - 1 - used)) > 0)
    used += (size_t)n;
  buffer[used] = 0;
}

int main(int argc, char **argv) {
  size_t count = sizeof scenarios / sizeof scenarios[0];
  if (argc == 2) { /* a scenario, in its own process, with its environment set */
    const scenario *s = &scenarios[strtoul(argv[1], NULL, 10) % count];
    return run_scenario(s->backend, 3, s->expect_backend, s->fork_first, s->large_array);
  }
  char reason[200];
  if (!ugc_backend_available("copy", reason, sizeof reason))
    SKIP("copy backend unavailable: %s", reason);
#if defined(UGC_UNDER_SANITIZER)
  SKIP("userfaultfd maps pages behind the sanitizer's back");
#endif
#if defined(UGC_NO_FAULT_INJECTION)
  SKIP("fault injection is compiled out of this build (UGC_FAULT_INJECTION=OFF)");
#endif
  for (size_t i = 0; i < count; i++) {
    const scenario *s = &scenarios[i];
    printf("%s\n", s->name);
    fflush(stdout);
    if (!strcmp(s->backend, "minor") && !ugc_backend_available("minor", reason, sizeof reason)) {
      printf("  skipped: minor backend unavailable: %s\n", reason);
      continue;
    }
    int err_pipe[2];
    REQUIRE(pipe(err_pipe) == 0);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      dup2(err_pipe[1], STDERR_FILENO);
      close(err_pipe[0]);
      close(err_pipe[1]);
      if (s->inject)
        setenv("UFFDGC_INJECT", s->inject, 1);
      if (s->disable)
        setenv("UFFDGC_DISABLE", s->disable, 1);
      char index[16];
      snprintf(index, sizeof index, "%zu", i);
      execl("/proc/self/exe", argv[0], index, (char *)NULL);
      _exit(127);
    }
    close(err_pipe[1]);
    char output[8192];
    read_all(err_pipe[0], output, sizeof output);
    close(err_pipe[0]);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    if (output[0])
      printf("  stderr: %.600s%s", output, output[strlen(output) - 1] == '\n' ? "" : "\n");
    if (s->expect_fatal) {
      if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT || !strstr(output, s->expect_fatal)) {
        fprintf(stderr, "  %s: status 0x%x, expected an abort saying \"%s\"\n", s->name, status,
                s->expect_fatal);
        CHECK(0);
      }
      continue;
    }
    if (!WIFEXITED(status)) {
      fprintf(stderr, "  %s: child died with signal %d\n", s->name, WTERMSIG(status));
      CHECK(0);
      continue;
    }
    if (s->expect_warning && !strstr(output, s->expect_warning)) {
      fprintf(stderr, "  %s: no warning saying \"%s\"\n", s->name, s->expect_warning);
      CHECK(0);
    }
    if (WEXITSTATUS(status) != s->expect_exit) {
      fprintf(stderr, "  %s: exit %d, expected %d\n", s->name, WEXITSTATUS(status), s->expect_exit);
      CHECK(0);
    }
  }
  TEST_DONE();
}
