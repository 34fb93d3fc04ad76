/* The event listener: over several cycles (explicit and triggered by allocation, with and
 * without the verifier) every cycle reports cycle_start, mark_done, pause_done and
 * compaction_done once, in that order, and compaction_done before the next cycle_start; a
 * growing live set reports heap_resized with sizes that chain; running out of memory reports
 * alloc_failure before the oom_handler. Also the UFFDGC_TRACE lines: one per pause, one per
 * concurrent compaction after its pause's line, verification apart, small sizes in KiB.
 * Runs on the backend UFFDGC_BACKEND names (tests/matrix.cmake registers each). */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

enum kind { START, MARK, RESIZED, PAUSE, DONE, ALLOC_FAILURE, OOM_HANDLER };
static const char *const kind_names[] = {"start", "mark",          "resized",    "pause",
                                         "done",  "alloc_failure", "oom_handler"};

typedef struct event {
  enum kind kind;
  uint64_t cycle, a, b;
  pthread_t thread;
} event;

#define MAX_EVENTS 20000
static event log_[MAX_EVENTS];
static size_t log_count;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t main_thread;
static bool concurrent_marking; /* the run's config.concurrent_mark */

static void record(enum kind kind, uint64_t cycle, uint64_t a, uint64_t b) {
  pthread_mutex_lock(&log_lock);
  if (log_count < MAX_EVENTS)
    log_[log_count++] = (event){kind, cycle, a, b, pthread_self()};
  pthread_mutex_unlock(&log_lock);
}

static void on_start(void *data, uint64_t cycle) {
  CHECK(data == &log_count);
  record(START, cycle, 0, 0);
}
static void on_mark(void *data, uint64_t cycle, uint64_t live, uint64_t ns) {
  record(MARK, cycle, live, ns);
}
static void on_pause(void *data, uint64_t cycle, uint64_t ns) {
  record(PAUSE, cycle, ns, 0);
}
static void on_done(void *data, uint64_t cycle, uint64_t ns) {
  record(DONE, cycle, ns, 0);
}
static void on_resized(void *data, uint64_t old_bytes, uint64_t new_bytes) {
  record(RESIZED, 0, old_bytes, new_bytes);
}
static void on_alloc_failure(void *data, uint64_t bytes) {
  record(ALLOC_FAILURE, 0, bytes, 0);
}
static void on_oom(ugc_heap *heap, size_t bytes, void *data) {
  record(OOM_HANDLER, 0, bytes, 0);
}

static const ugc_event_listener listener = {
    .data = &log_count,
    .cycle_start = on_start,
    .mark_done = on_mark,
    .pause_done = on_pause,
    .compaction_done = on_done,
    .heap_resized = on_resized,
    .alloc_failure = on_alloc_failure,
};

typedef struct node {
  void *next;
  uint64_t payload[15];
} node;

static ugc_type_id node_type;

/* Keeps `keep` nodes of every `every` allocated on the list rooted at *list. */
static void churn(ugc_mutator *m, void **list, size_t count, size_t every) {
  for (size_t i = 0; i < count; i++) {
    node *n = ugc_alloc(m, node_type, sizeof(node));
    REQUIRE(n);
    n->payload[0] = i;
    if (i % every == 0) {
      ugc_write(m, n, &n->next, *list);
      *list = n;
    }
  }
}

/* Checks the log from index `from`: the promised order per cycle. Returns the cycles seen. */
static uint64_t check_order(size_t from, uint64_t first_cycle, bool concurrent_expected,
                            uint64_t *concurrent_cycles) {
  uint64_t expect = first_cycle; /* the cycle whose cycle_start comes next */
  enum kind last = DONE;
  uint64_t resized_new = 0;
  pthread_t cycle_thread = main_thread;
  for (size_t i = from; i < log_count; i++) {
    const event *e = &log_[i];
    switch (e->kind) {
    case START:
      if (last != DONE || e->cycle != expect)
        goto bad;
      /* The collecting mutator, or with concurrent marking the heap's collector thread. */
      CHECK(pthread_equal(e->thread, main_thread) != concurrent_marking);
      cycle_thread = e->thread;
      break;
    case MARK:
      if (last != START || e->cycle != expect)
        goto bad;
      CHECK(e->b > 0); /* the marking took time */
      break;
    case RESIZED:
      if (last != MARK)
        goto bad;
      CHECK(e->a != e->b);
      if (resized_new)
        CHECK_EQ_U64(e->a, resized_new);
      resized_new = e->b;
      continue; /* `last` stays MARK */
    case PAUSE:
      if (last != MARK || e->cycle != expect)
        goto bad;
      CHECK(pthread_equal(e->thread, cycle_thread));
      CHECK(e->a > 0);
      break;
    case DONE:
      if (last != PAUSE || e->cycle != expect)
        goto bad;
      if (e->a)
        ++*concurrent_cycles;
      if (!concurrent_expected)
        CHECK_EQ_U64(e->a, 0);
      expect++;
      break;
    case ALLOC_FAILURE:
    case OOM_HANDLER:
      continue;
    }
    last = e->kind;
    continue;
  bad:
    fprintf(stderr, "event %zu: %s of cycle %llu after %s (next cycle expected: %llu)\n", i,
            kind_names[e->kind], (unsigned long long)e->cycle, kind_names[last],
            (unsigned long long)expect);
    ugc_test_failures++;
    return expect - first_cycle;
  }
  CHECK(last == DONE); /* the last cycle's compaction_done came */
  return expect - first_cycle;
}

static size_t count_kind(enum kind kind) {
  size_t n = 0;
  for (size_t i = 0; i < log_count; i++)
    n += log_[i].kind == kind;
  return n;
}

/* One heap's run: explicit and triggered cycles, then out of memory. */
static void run(int verify, bool mark_concurrently) {
  concurrent_marking = mark_concurrently;
  log_count = 0;
  FILE *trace = tmpfile();
  REQUIRE(trace);
  ugc_config config = fixture_config(24 << 20, 2 << 20);
  config.verify = verify;
  config.concurrent_mark = mark_concurrently;
  config.trace = true;
  config.trace_file = trace;
  config.oom_handler = on_oom;
  ugc_heap *heap = itest_heap_create(&config);
  bool concurrent = strcmp(ugc_heap_backend(heap), "stw") != 0;
  ugc_set_event_listener(heap, &listener);
  uint32_t refs[] = {0};
  node_type = fixture_type(heap, "node", UGC_LAYOUT_FIXED, sizeof(node), refs, 1);
  REQUIRE(node_type);
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, void *, list, NULL);

  /* A growing live set: explicit collections, and allocation triggers. */
  for (int round = 0; round < 4; round++) {
    churn(m, &list, 30000, 4);
    ugc_collect(m, UGC_COLLECT_FULL);
    /* Touch the list while a concurrent compaction may still run: mutators build pages. */
    size_t length = 0;
    for (node *n = list; n; n = n->next)
      length++;
    CHECK(length > 0);
  }
  if (concurrent && !verify) {
    /* compaction_done comes when the work ends, without a call that waits for it: the
     * last GC thread completes the compaction (generous deadline: a loaded machine). */
    ugc_collect(m, UGC_COLLECT_FULL);
    ugc_stats stats_now;
    ugc_stats_get(heap, &stats_now);
    bool arrived = false;
    ugc_blocking_enter(m);
    for (int waited_ms = 0; waited_ms < 30000 && !arrived; waited_ms++) {
      pthread_mutex_lock(&log_lock);
      for (size_t i = 0; i < log_count; i++)
        if (log_[i].kind == DONE && log_[i].cycle == stats_now.cycles)
          arrived = true;
      pthread_mutex_unlock(&log_lock);
      if (!arrived)
        usleep(1000);
    }
    ugc_blocking_leave(m);
    CHECK(arrived); /* reported by the GC thread, or held for pause_done if it was quicker */
  }
  ugc_collect(m, UGC_COLLECT_FINISH);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  CHECK(stats.cycles >= 4);
  uint64_t concurrent_cycles = 0;
  CHECK_EQ_U64(check_order(0, 1, concurrent, &concurrent_cycles), stats.cycles);
  CHECK_EQ_U64(count_kind(START), stats.cycles);
  CHECK_EQ_U64(count_kind(PAUSE), stats.cycles);
  CHECK_EQ_U64(count_kind(DONE), stats.cycles);
  CHECK(count_kind(RESIZED) >= 1);
  if (concurrent)
    CHECK(concurrent_cycles >= 1);
  if (verify)
    CHECK(stats.verify_ns > 0);

  /* Out of memory: alloc_failure, then the handler, each once. */
  size_t before_oom = log_count;
  for (;;) {
    node *n = ugc_alloc(m, node_type, sizeof(node));
    if (!n)
      break;
    ugc_write(m, n, &n->next, list);
    list = n;
  }
  size_t failure_at = 0, handler_at = 0;
  for (size_t i = before_oom; i < log_count; i++) {
    if (log_[i].kind == ALLOC_FAILURE) {
      CHECK(!failure_at);
      failure_at = i;
      CHECK_EQ_U64(log_[i].a, sizeof(node));
      CHECK(pthread_equal(log_[i].thread, main_thread));
    }
    if (log_[i].kind == OOM_HANDLER) {
      CHECK(!handler_at);
      handler_at = i;
    }
  }
  CHECK(failure_at && handler_at == failure_at + 1);
  list = NULL;
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_collect(m, UGC_COLLECT_FINISH);
  ugc_stats_get(heap, &stats);
  concurrent_cycles = 0;
  CHECK_EQ_U64(check_order(0, 1, concurrent, &concurrent_cycles), stats.cycles);

  /* Removing the listener stops the callbacks. */
  ugc_set_event_listener(heap, NULL);
  size_t before_removal = log_count;
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_collect(m, UGC_COLLECT_FINISH);
  CHECK_EQ_U64(log_count, before_removal);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_stats_get(heap, &stats);
  ugc_heap_destroy(heap);

  /* The trace: a "cycle" line per pause; a "compaction" line per concurrent compaction,
   * after its cycle's line; verification apart; no "0.0MiB". */
  fflush(trace);
  rewind(trace);
  char line[1024];
  uint64_t cycle_lines = 0, compaction_lines = 0, verify_lines = 0;
  while (fgets(line, sizeof line, trace)) {
    unsigned long long n;
    if (sscanf(line, "uffdgc: cycle %llu ", &n) == 1) {
      CHECK_EQ_U64(n, ++cycle_lines);
      verify_lines += strstr(line, " verify=") != NULL;
      if (cycle_lines == 1)
        printf("%s", line);
    } else if (sscanf(line, "uffdgc: compaction %llu ", &n) == 1) {
      CHECK(n <= cycle_lines);
      CHECK(strstr(line, "concurrent=") && strstr(line, "gc=") && strstr(line, "mutators=") &&
            strstr(line, "stalls=") && strstr(line, "p50=") && strstr(line, "max="));
      if (compaction_lines++ == 0)
        printf("%s", line);
    }
    if (strstr(line, " 0.0MiB")) {
      fprintf(stderr, "small size in MiB: %s", line);
      ugc_test_failures++;
    }
  }
  fclose(trace);
  CHECK_EQ_U64(cycle_lines, stats.cycles);
  CHECK_EQ_U64(verify_lines, verify ? stats.cycles : 0);
  /* Concurrent compactions while the listener was set, plus the last one after removal. */
  if (concurrent)
    CHECK(compaction_lines >= concurrent_cycles && compaction_lines <= stats.cycles);
  else
    CHECK_EQ_U64(compaction_lines, 0);
  printf("events: backend %s verify %d concurrent marking %d: %llu cycles (%llu concurrent), "
         "%zu events\n",
         itest_backend(), verify, mark_concurrently, (unsigned long long)stats.cycles,
         (unsigned long long)concurrent_cycles, log_count);
}

int main(void) {
  main_thread = pthread_self();
  unsetenv("UFFDGC_CONCURRENT_MARK"); /* the runs choose */
  for (int mark_concurrently = 0; mark_concurrently <= 1; mark_concurrently++) {
    run(0, mark_concurrently);
    run(1, mark_concurrently); /* verified: the compaction's report must still follow */
  }
  TEST_DONE();
}
