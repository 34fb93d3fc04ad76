/* The sigsegv backend near vm.max_map_count. Two mutators touch every other page of the
 * heap from the top down while the GC thread builds from the bottom up, so nearly every
 * mutator fault publishes a page alone between protected ones and splits a mapping in
 * three: the access pattern that needs the most mappings. With vm.max_map_count lowered to
 * a few hundred above what the process uses, the compaction must finish with merged runs
 * (cycles_merged, runs_extended), never fail with ENOMEM, and keep the data intact.
 *
 * Lowering the limit needs root, and the limit is global: it is lowered only while the
 * child that runs the workload does its measured rounds (a few seconds; the child says when
 * over a pipe), and restored by the parent process whatever happens to the child (one that
 * hangs is killed after ROUNDS_TIMEOUT_S). The test runs alone (RUN_SERIAL): processes of
 * other tests would meet the lowered limit too. With
 * UFFDGC_INJECT=sigsegv.mprotect:N (a second registration in tests/matrix.cmake) the limit
 * stays and the N-th mprotect fails with ENOMEM instead: the same fallback, no root. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/itest.h"

enum { OBJECTS = 16400, OBJECT_BYTES = 4000, ROUNDS = 3, MAPPING_ROOM = 300 };
/* The rounds take a few seconds; CTest stops the test after 300. */
enum { ROUNDS_TIMEOUT_S = 120 };

static ugc_heap *heap;
static void **objects; /* a large (never moved) array of references: the roots */
static _Atomic int round_started, touched_threads;
static _Atomic long maps_peak;
static _Atomic bool sampling;
static int to_parent = -1, from_parent = -1; /* pipes when the parent lowers the limit */

static long count_maps(void) {
  FILE *maps = fopen("/proc/self/maps", "r");
  long lines = 0;
  int c;
  while (maps && (c = getc(maps)) != EOF)
    lines += c == '\n';
  if (maps)
    fclose(maps);
  return lines;
}

/* Mappings inside the 1 GiB-aligned moving space around `inside`: after a compaction the
 * protected part must have merged back into one, beside the allocation space above it. */
static long heap_mappings(const void *inside) {
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

static void *sampler_main(void *arg) {
  (void)arg;
  while (atomic_load(&sampling)) {
    long now = count_maps();
    if (now > atomic_load(&maps_peak))
      atomic_store(&maps_peak, now);
    usleep(500);
  }
  return NULL;
}

/* Touches objects (one per page after compaction) from the top down, every fourth page
 * starting at `offset`: with two threads, every other page. */
static void *toucher_main(void *arg) {
  intptr_t offset = (intptr_t)arg;
  ugc_mutator *m = fixture_attach(heap);
  long failures = 0;
  for (int seen = 0; seen < ROUNDS;) {
    ugc_blocking_enter(m);
    while (atomic_load(&round_started) == seen)
      usleep(50);
    ugc_blocking_leave(m);
    seen = atomic_load(&round_started);
    /* A write too: a published page written to gets a private copy (copy-on-write), and
     * its mapping must still merge back (see heap_mappings). */
    for (intptr_t i = OBJECTS - 1 - 2 * offset; i >= 0; i -= 4) {
      volatile uint64_t *o = objects[i];
      failures += o[0] != (uint64_t)i || o[1] != (uint64_t)seen - 1;
      o[1] = (uint64_t)seen;
    }
    atomic_fetch_add(&touched_threads, 1);
  }
  ugc_thread_detach(m);
  return (void *)failures;
}

static int run_workload(void) {
  setenv("UFFDGC_BACKEND", "sigsegv", 0);
  ugc_config config = fixture_config((size_t)256 << 20, (size_t)200 << 20);
  config.gc_threads = 2; /* one compaction thread: the mutators get ahead of it */
  heap = itest_heap_create(&config);
  ugc_type_id leaf = fixture_leaf_type(heap, "page");
  ugc_type_id array = fixture_type(heap, "roots", UGC_LAYOUT_REF_ARRAY, 0, NULL, 0);
  ugc_mutator *m = fixture_attach(heap);
  objects = ugc_alloc(m, array, OBJECTS * sizeof(void *));
  REQUIRE(objects);
  ugc_global_root_add(heap, (void **)&objects);
  for (uint64_t i = 0; i < OBJECTS; i++) {
    ugc_alloc(m, leaf, OBJECT_BYTES / 2); /* garbage between: the compaction slides */
    uint64_t *o = ugc_alloc(m, leaf, OBJECT_BYTES);
    REQUIRE(o);
    o[0] = i;
    o[1] = 0;
    ugc_write(m, objects, &objects[i], o);
  }
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_collect(m, UGC_COLLECT_FINISH);
  pthread_t threads[2], sampler;
  for (intptr_t t = 0; t < 2; t++)
    REQUIRE(pthread_create(&threads[t], NULL, toucher_main, (void *)t) == 0);
  atomic_store(&sampling, true);
  REQUIRE(pthread_create(&sampler, NULL, sampler_main, NULL) == 0);
  if (to_parent >= 0) { /* ready: the parent lowers the limit to our use plus the room */
    long used = count_maps();
    char go;
    REQUIRE(write(to_parent, &used, sizeof used) == (ssize_t)sizeof used);
    REQUIRE(read(from_parent, &go, 1) == 1);
  }
  for (int r = 1; r <= ROUNDS; r++) {
    atomic_store(&touched_threads, 0);
    ugc_collect(m, UGC_COLLECT_FULL); /* every data page is protected again */
    atomic_store(&round_started, r);
    ugc_blocking_enter(m);
    while (atomic_load(&touched_threads) < 2)
      usleep(100);
    ugc_blocking_leave(m);
    ugc_collect(m, UGC_COLLECT_FINISH);
    CHECK_EQ_U64(ugc_verify(m, NULL), 0);
    /* The pages nobody touched (every other one) were built by the GC thread. */
    for (uint64_t i = 0; i < OBJECTS; i++) {
      const uint64_t *o = objects[i];
      bool touched = (OBJECTS - 1 - i) % 2 == 0;
      CHECK(o[0] == i && o[1] == (touched ? (uint64_t)r : 0));
    }
    long mappings = heap_mappings(objects[0]);
    printf("round %d: %ld mappings in the heap's GiB after the compaction\n", r, mappings);
    CHECK(mappings == 2);
  }
  if (to_parent >= 0) { /* done: the parent restores the limit */
    close(to_parent);
    to_parent = -1;
  }

  long failures = 0;
  ugc_blocking_enter(m); /* waiting for other threads: no pause may wait for this one */
  for (int t = 0; t < 2; t++) {
    void *result;
    pthread_join(threads[t], &result);
    failures += (long)(intptr_t)result;
  }
  ugc_blocking_leave(m);
  atomic_store(&sampling, false);
  pthread_join(sampler, NULL);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  ugc_compaction_stats *c = &stats.compaction;
  printf("sigsegv map count: %llu cycles, %llu pages by mutators, %llu by GC; peak mappings of "
         "the heap's protected part %llu, process peak %ld (sampled); %llu runs extended, "
         "%llu cycle(s) merged; %ld wrong values\n",
         (unsigned long long)stats.cycles, (unsigned long long)c->pages_by_mutator,
         (unsigned long long)c->pages_by_gc, (unsigned long long)c->vmas_peak,
         atomic_load(&maps_peak), (unsigned long long)c->runs_extended,
         (unsigned long long)c->cycles_merged, failures);
  CHECK(failures == 0);
  CHECK(c->pages_by_mutator > 0);
  CHECK(c->cycles_merged > 0 && c->runs_extended > 0);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}

static long read_limit(void) {
  long value = -1;
  FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
  if (f && fscanf(f, "%ld", &value) != 1)
    value = -1;
  if (f)
    fclose(f);
  return value;
}

static bool write_limit(long value) {
  FILE *f = fopen("/proc/sys/vm/max_map_count", "w");
  if (!f)
    return false;
  bool ok = fprintf(f, "%ld\n", value) > 0;
  return fclose(f) == 0 && ok;
}

int main(void) {
  if (getenv("UFFDGC_INJECT")) {
#if defined(UGC_NO_FAULT_INJECTION)
    SKIP("fault injection is compiled out of this build (UGC_FAULT_INJECTION=OFF)");
#endif
    return run_workload();
  }
  itest_require_backend();
  if (geteuid() != 0)
    SKIP("lowering vm.max_map_count needs root");
  long original = read_limit();
  if (original < 0)
    SKIP("vm.max_map_count cannot be read");
  if (!write_limit(original))
    SKIP("vm.max_map_count is not writable here");
  int up[2], down[2];
  REQUIRE(pipe(up) == 0 && pipe(down) == 0);
  fflush(stdout);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(up[0]);
    close(down[1]);
    to_parent = up[1];
    from_parent = down[0];
    int rc = run_workload();
    fflush(stdout);
    _exit(rc);
  }
  close(up[1]);
  close(down[0]);
  long used = 0, lowered = 0;
  bool hung = false;
  if (read(up[0], &used, sizeof used) == (ssize_t)sizeof used) {
    lowered = used + 64 + MAPPING_ROOM; /* the backend keeps a margin of 64 */
    REQUIRE(lowered < original);
    REQUIRE(write_limit(lowered));
    REQUIRE(write(down[1], "g", 1) == 1);
    /* End of file: the rounds are over, or the child died. A child that hangs is killed
     * well before CTest's timeout would kill us with the limit still lowered. */
    struct pollfd done = {.fd = up[0], .events = POLLIN};
    if (poll(&done, 1, ROUNDS_TIMEOUT_S * 1000) == 0) {
      printf("FAILED: the rounds did not end within %d s; child killed\n", ROUNDS_TIMEOUT_S);
      hung = true;
      kill(child, SIGKILL);
    }
  }
  bool restored = write_limit(original) && read_limit() == original;
  int status = 0;
  bool waited = waitpid(child, &status, 0) == child;
  if (lowered)
    printf("vm.max_map_count lowered from %ld to %ld during the rounds, restored: %s\n", original,
           lowered, restored ? "yes" : "NO");
  REQUIRE(restored);
  REQUIRE(waited);
  if (hung)
    return 1;
  if (WIFSIGNALED(status)) {
    printf("FAILED: the workload died of signal %d\n", WTERMSIG(status));
    return 1;
  }
  return WEXITSTATUS(status);
}
