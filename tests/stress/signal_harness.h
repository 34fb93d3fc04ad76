/* Shared by the signal-discipline stress tests: a copy heap in SIGBUS delivery mode holding
 * a list with garbage between its nodes (so compaction slides), probes spread over it (global
 * roots) that a thread reads far end first right after a collection, so that most pages are
 * built by the faulting thread itself; and a runner that executes each case in a child
 * process, so that a case that kills its process or hangs is reported, not fatal. */
#ifndef UGC_SIGNAL_HARNESS_H
#define UGC_SIGNAL_HARNESS_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/itest.h"
#include "uffd/uffd.h"

typedef struct node {
  struct node *next;
  uint64_t id;
  uint64_t check; /* id * 7 */
} node;

enum { PROBES = 512 };

typedef struct harness {
  ugc_heap *heap;
  ugc_type_id node_type, blob_type;
  node *head;
  node *probes[PROBES]; /* global roots, spread over the list */
  uint64_t nodes;
} harness;

/* Skips unless the copy backend with SIGBUS delivery can run here. */
static inline void harness_require_sigbus(void) {
  setenv("UFFDGC_BACKEND", "copy", 1);
  setenv("UFFDGC_DELIVERY", "sigbus", 1);
  itest_require_backend();
  if (ugc_uffd_probe(NULL) != 0 || !(ugc_uffd_caps_get()->features & UFFD_FEATURE_SIGBUS))
    SKIP("UFFD_FEATURE_SIGBUS not offered (or masked by UFFDGC_DISABLE)");
}

/* `node_trace`: NULL for a FIXED node type, else a CUSTOM one traced by it (it must report
 * the `next` slot). */
static inline void harness_create_traced(harness *h, size_t heap_max, FILE *trace,
                                         ugc_trace_fn node_trace) {
  memset(h, 0, sizeof *h);
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = heap_max;
  config.heap_initial = heap_max; /* collections only when we ask */
  config.gc_threads = 2;          /* one compaction thread: mutators build many pages */
  config.trace = trace != NULL;
  config.trace_file = trace;
  h->heap = itest_heap_create(&config);
  REQUIRE(strcmp(ugc_heap_backend(h->heap), "copy") == 0);
  ugc_error error;
  static const uint32_t refs[] = {offsetof(node, next)};
  ugc_type_desc desc = {.name = "node",
                        .layout = node_trace ? UGC_LAYOUT_CUSTOM : UGC_LAYOUT_FIXED,
                        .fixed_size = sizeof(node),
                        .ref_offsets = node_trace ? NULL : refs,
                        .ref_count = node_trace ? 0 : 1,
                        .trace = node_trace};
  h->node_type = ugc_type_register(h->heap, &desc, &error);
  ugc_type_desc blob = {.name = "blob", .layout = UGC_LAYOUT_LEAF};
  h->blob_type = ugc_type_register(h->heap, &blob, &error);
  REQUIRE(h->node_type && h->blob_type);
  ugc_global_root_add(h->heap, (void **)&h->head);
  for (int i = 0; i < PROBES; i++)
    ugc_global_root_add(h->heap, (void **)&h->probes[i]);
}

static inline void harness_create(harness *h, size_t heap_max, FILE *trace) {
  harness_create_traced(h, heap_max, trace, NULL);
}

/* A list of `nodes` nodes, each followed by a dead blob. */
static inline void harness_build(harness *h, ugc_mutator *m, uint64_t nodes) {
  node *tail = NULL;
  h->nodes = nodes;
  for (uint64_t i = 0; i < nodes; i++) {
    ugc_alloc(m, h->blob_type, 40 + (i % 4) * 16);
    node *n = ugc_alloc(m, h->node_type, sizeof(node));
    REQUIRE(n);
    n->id = i;
    n->check = i * 7;
    if (tail)
      ugc_write(m, tail, (void **)&tail->next, n);
    else
      h->head = n;
    tail = n;
    if (i % (nodes / PROBES) == 0 && i / (nodes / PROBES) < PROBES)
      h->probes[i / (nodes / PROBES)] = n;
  }
}

/* Reads the probes far end first, then walks the whole list. Number of wrong values. */
static inline uint64_t harness_walk(const harness *h) {
  uint64_t bad = 0;
  for (int i = PROBES - 1; i >= 0; i--)
    if (h->probes[i] && h->probes[i]->check != h->probes[i]->id * 7)
      bad++;
  uint64_t expected = 0;
  for (const node *n = h->head; n; n = n->next, expected++)
    if (n->id != expected || n->check != expected * 7)
      bad++;
  return bad + (expected != h->nodes);
}

static inline uint64_t harness_pages_by_mutator(ugc_heap *heap) {
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  return stats.compaction.pages_by_mutator;
}

/* One checked cycle: digest, collection, the walk while the heap is being compacted,
 * finish, digest and verifier again. Number of problems. */
static inline uint64_t harness_cycle(harness *h, ugc_mutator *m) {
  uint64_t digest = ugc_graph_digest(m);
  ugc_collect(m, UGC_COLLECT_FULL);
  uint64_t bad = harness_walk(h);
  ugc_collect(m, UGC_COLLECT_FINISH);
  if (ugc_graph_digest(m) != digest)
    bad++;
  return bad + ugc_verify(m, NULL);
}

/* Runs fn in a child process; its outcome (exit status or signal) in *status. False if it
 * did not end within `seconds` (it is then killed). */
static inline bool harness_run_child(int (*fn)(void), int seconds, int *status) {
  fflush(NULL);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int rc = fn();
    fflush(NULL);
    _exit(rc);
  }
  for (long waited_ms = 0; waited_ms < seconds * 1000L; waited_ms += 10) {
    if (waitpid(pid, status, WNOHANG) == pid)
      return true;
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    nanosleep(&ten_ms, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, status, 0);
  return false;
}

/* Runs a case that must exit 0. */
static inline void harness_expect_success(const char *name, int (*fn)(void)) {
  int status = 0;
  bool ended = harness_run_child(fn, 120, &status);
  bool ok = ended && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  printf("%-28s %s", name, ok ? "ok" : "FAILED");
  if (!ended)
    printf(" (hung: killed after 120 s)");
  else if (WIFSIGNALED(status))
    printf(" (killed by signal %d)", WTERMSIG(status));
  else if (!ok)
    printf(" (exit %d)", WEXITSTATUS(status));
  printf("\n");
  CHECK(ok);
}

/* Runs a case that must die of `sig` (not hang, not survive). */
static inline void harness_expect_death(const char *name, int (*fn)(void), int sig) {
  int status = 0;
  bool ended = harness_run_child(fn, 60, &status);
  bool ok = ended && WIFSIGNALED(status) && WTERMSIG(status) == sig;
  printf("%-28s %s", name, ok ? "ok (died of the signal)" : "FAILED");
  if (!ended)
    printf(" (still running after 60 s: a retry loop; killed)");
  else if (WIFSIGNALED(status) && !ok)
    printf(" (killed by signal %d instead of %d)", WTERMSIG(status), sig);
  else if (WIFEXITED(status))
    printf(" (survived, exit %d)", WEXITSTATUS(status));
  printf("\n");
  CHECK(ok);
}

#endif
