/* Concurrent compaction under fire: several mutator threads touch the same pages right after
 * the compaction pause (so most pages are built by faulting threads, racing each other and
 * the GC threads), readers and writers, collections back to back, and fork() while a
 * compaction is in flight. Every collection is checked with the graph digest and the
 * verifier.
 *
 * Runs with the backend in UFFDGC_BACKEND (default: copy). A backend this kernel cannot
 * offer is a skip, never a pass. With the stw backend it still checks the same invariants. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/itest.h"
#include "heap/file_space.h"

typedef struct node {
  struct node *next;  /* the list everybody walks */
  struct node *other; /* a random earlier node: references across pages */
  uint64_t id;
  uint64_t value; /* readers check it, writers bump it */
} node;

static ugc_type_id node_type, blob_type;
static ugc_heap *heap;
static node *list_head, *list_tail; /* global roots */
enum { NODES = 200000, THREADS = 3, ROUNDS = 6 };

static void setup(void) {
  setenv("UFFDGC_BACKEND", "copy", 0); /* the default here; the matrix runs the others */
  /* A large initial commit: collections only when we ask. */
  ugc_config config = fixture_config((size_t)512 << 20, (size_t)256 << 20);
  heap = itest_heap_create(&config);
  ugc_error error;
  static const uint32_t refs[] = {offsetof(node, next), offsetof(node, other)};
  node_type = fixture_type(heap, "node", UGC_LAYOUT_FIXED, sizeof(node), refs, 2);
  ugc_type_desc blob = {.name = "blob", .layout = UGC_LAYOUT_LEAF};
  blob_type = ugc_type_register(heap, &blob, &error);
  REQUIRE(node_type && blob_type);
  ugc_global_root_add(heap, (void **)&list_head);
  ugc_global_root_add(heap, (void **)&list_tail);
}

/* A list of NODES nodes with garbage between them, so compaction really slides. */
static void build(ugc_mutator *m) {
  node *tail = NULL;
  uint64_t rng = 88172645463325252ull;
  node **recent = calloc(1024, sizeof *recent);
  for (uint64_t i = 0; i < NODES; i++) {
    ugc_alloc(m, blob_type, 24 + (i % 5) * 16); /* dies at once */
    node *n = ugc_alloc(m, node_type, sizeof(node));
    REQUIRE(n);
    n->id = i;
    n->value = i * 3;
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    ugc_write(m, n, (void **)&n->other, i ? recent[rng % (i < 1024 ? i : 1024)] : NULL);
    recent[i % 1024] = n;
    if (tail)
      ugc_write(m, tail, (void **)&tail->next, n);
    else
      list_head = n;
    tail = n;
  }
  list_tail = tail;
  free(recent);
}

typedef struct worker {
  pthread_t thread;
  ugc_mutator *mutator;
  int index;
  bool writer;
  _Atomic int *round;
  _Atomic int *done;
  uint64_t failures;
} worker;

/* Walks the list from the far end first (the pages GC threads reach last), then all of it. */
static void *worker_main(void *arg) {
  worker *w = arg;
  w->mutator = fixture_attach(heap);
  REQUIRE(w->mutator);
  int seen_round = 0;
  for (;;) {
    ugc_blocking_enter(w->mutator);
    while (atomic_load(w->round) == seen_round)
      usleep(100);
    ugc_blocking_leave(w->mutator);
    seen_round = atomic_load(w->round);
    if (seen_round < 0)
      break;
    /* the far end first: a page the GC threads reach last, so this thread builds it */
    if (!list_tail || list_tail->id != NODES - 1)
      w->failures++;
    uint64_t expected = 0;
    /* The walk allocates now and then (new TLABs come from the free part of the heap
     * while it is being compacted), so the cursor is a root. */
    ugc_scope scope = ugc_scope_open(w->mutator);
    node *n = list_head;
    ugc_root(w->mutator, &n);
    for (; n; n = n->next, expected++) {
      if (n->id != expected || (n->other && n->other->id >= n->id))
        w->failures++;
      /* The writer's store races with the other walkers' loads on purpose (the value only
       * grows): relaxed atomics, which are plain accesses to the page all the same. */
      if (w->writer && n->id % THREADS == (uint64_t)w->index)
        __atomic_store_n(&n->value, n->value + 1, __ATOMIC_RELAXED); /* the page must be there */
      else if (__atomic_load_n(&n->value, __ATOMIC_RELAXED) < n->id * 3)
        w->failures++;
      if (n->id % 64 == (uint64_t)w->index && !ugc_alloc(w->mutator, blob_type, 48))
        w->failures++;
    }
    ugc_scope_close(w->mutator, scope);
    if (expected != NODES)
      w->failures++;
    atomic_fetch_add(w->done, 1);
  }
  ugc_thread_detach(w->mutator);
  return NULL;
}

/* Registering part of the heap splits its VMA; the pieces must merge back every cycle, or
 * the count grows and the next mremap over several VMAs fails. Counts the mappings within
 * the 1 GiB-aligned moving space around `inside` (other mappings, e.g. a sanitizer's, come
 * and go on their own). */
static long heap_vma_count(const void *inside) {
  uintptr_t low = (uintptr_t)inside & ~(((uintptr_t)1 << 30) - 1),
            high = low + ((uintptr_t)1 << 30);
  FILE *maps = fopen("/proc/self/maps", "r");
  long count = 0;
  char line[512];
  while (maps && fgets(line, sizeof line, maps)) {
    unsigned long start, end;
    if (sscanf(line, "%lx-%lx", &start, &end) == 2 && start < high && end > low)
      count++;
  }
  if (maps)
    fclose(maps);
  return count;
}

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static void check_fork_during_compaction(ugc_mutator *m, uint64_t digest) {
  /* ugc_collect returned with compaction possibly still running; fork() must hand the
   * child a complete heap (the atfork handler finishes compaction first). */
  ugc_collect(m, UGC_COLLECT_FULL);
  fflush(NULL);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    uint64_t child_digest = ugc_graph_digest(m);
    size_t problems = ugc_verify(m, NULL);
    ugc_collect(m, UGC_COLLECT_FULL); /* the child can collect on its own */
    uint64_t after = ugc_graph_digest(m);
    _exit(child_digest == digest && after == digest && problems == 0 ? 0 : 3);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_EQ_U64(ugc_graph_digest(m), digest);
}

int main(void) {
  setup();
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  build(m);

  _Atomic int round = 0, done = 0;
  worker workers[THREADS];
  for (int i = 0; i < THREADS; i++) {
    workers[i] = (worker){.index = i, .writer = i == 0, .round = &round, .done = &done};
    REQUIRE(pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) == 0);
  }

  uint64_t digest = ugc_graph_digest(m);
  long vmas_first_round = 0;
  for (int r = 1; r <= ROUNDS; r++) {
    ugc_collect(m, UGC_COLLECT_FULL);
    if (r % 2 == 0)
      ugc_collect(m, UGC_COLLECT_FULL); /* back to back: waits for the previous one */
    atomic_store(&done, 0);
    atomic_store(&round, r); /* workers storm the heap while it is being compacted */
    ugc_blocking_enter(m);
    while (atomic_load(&done) < THREADS)
      usleep(200);
    ugc_blocking_leave(m);
    /* the writer changed values, so take a fresh digest, then check a collection keeps it */
    digest = ugc_graph_digest(m);
    ugc_collect(m, UGC_COLLECT_FULL);
    CHECK_EQ_U64(ugc_graph_digest(m), digest);
    CHECK_EQ_U64(ugc_verify(m, NULL), 0);
    if (r == 1)
      vmas_first_round = heap_vma_count(list_head);
  }
  long vmas_last_round = heap_vma_count(list_head);
  printf("heap VMAs after the first round: %ld, after the last: %ld\n", vmas_first_round,
         vmas_last_round);
  /* One mapping, merged back; sigsegv keeps two by design (the compacted data's file view
   * and the anonymous allocation space above it, heap/file_space.h), minor one file view
   * per file piece (the dense prefix stays in the files that hold it), at most 8, and the
   * anonymous space. */
  const char *backend = ugc_heap_backend(heap);
  long expected_vmas = !strcmp(backend, "sigsegv") ? 2 : 1;
  if (!strcmp(backend, "minor")) {
    CHECK(vmas_first_round >= 2 && vmas_first_round <= UGC_FILE_SPACE_MAX_PIECES + 1);
    CHECK(vmas_last_round >= 2 && vmas_last_round <= UGC_FILE_SPACE_MAX_PIECES + 1);
  } else {
    CHECK(vmas_first_round == expected_vmas && vmas_last_round == expected_vmas);
  }
  atomic_store(&round, -1);
  ugc_blocking_enter(m);
  for (int i = 0; i < THREADS; i++) {
    pthread_join(workers[i].thread, NULL);
    CHECK_EQ_U64(workers[i].failures, 0);
  }
  ugc_blocking_leave(m);

#ifdef UNDER_TSAN
  printf("fork during compaction: not checked under ThreadSanitizer (it cannot start threads "
         "in the child of a multi-threaded fork; the other builds check it)\n");
  (void)check_fork_during_compaction;
#else
  check_fork_during_compaction(m, digest);
#endif

  ugc_stats stats;
  ugc_collect(m, UGC_COLLECT_FINISH);
  ugc_stats_get(heap, &stats);
  printf("backend=%s cycles=%llu pages_total=%llu by_gc=%llu by_mutator=%llu stalls=%llu "
         "stall_p50=%lluns stall_p99=%lluns\n",
         ugc_heap_backend(heap), (unsigned long long)stats.cycles,
         (unsigned long long)stats.compaction.pages_total,
         (unsigned long long)stats.compaction.pages_by_gc,
         (unsigned long long)stats.compaction.pages_by_mutator,
         (unsigned long long)stats.stall.count,
         (unsigned long long)ugc_histogram_percentile(&stats.stall, 0.5),
         (unsigned long long)ugc_histogram_percentile(&stats.stall, 0.99));
  if (strcmp(ugc_heap_backend(heap), "stw") != 0) {
    /* every data page is built exactly once, by a GC thread or a faulting thread, or left
     * untouched (fully live data without references: never built) */
    CHECK_EQ_U64(stats.compaction.pages_by_gc + stats.compaction.pages_by_mutator +
                     stats.compaction.pages_untouched,
                 stats.compaction.pages_total);
    /* and counted once by how it was mapped: in place, slid whole, recycled or fresh */
    CHECK_EQ_U64(stats.compaction.pages_in_place + stats.compaction.pages_slid_whole +
                     stats.compaction.pages_recycled + stats.compaction.pages_fresh,
                 stats.compaction.pages_total);
    /* With more than two GC threads (UFFDGC_GC_THREADS, the matrix's move,4gc run) the GC
     * threads may build every page before a mutator faults. */
    const char *gc_threads = getenv("UFFDGC_GC_THREADS");
    if (!gc_threads || atoi(gc_threads) <= 2)
      CHECK(stats.compaction.pages_by_mutator > 0);
  }
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
