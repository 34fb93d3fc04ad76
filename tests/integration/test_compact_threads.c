/* config.compact_threads (UFFDGC_COMPACT_THREADS): the number of GC threads that build pages
 * during a concurrent compaction. By default gc_threads - 1 (at least 1); asked for, that
 * many. Checked by counting the process's threads named "uffdgc-compact" once a concurrent
 * compaction has run (the pool starts at its first one), with the data intact and the
 * verifier clean after every collection; the stop-the-world backend starts none. Run per
 * backend by the matrix (UFFDGC_BACKEND). */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counted_list.h"

#define NODES 60000u

/* Threads of this process whose name is `name`. */
static unsigned threads_named(const char *name) {
  DIR *dir = opendir("/proc/self/task");
  REQUIRE(dir != NULL);
  unsigned count = 0;
  struct dirent *entry;
  while ((entry = readdir(dir))) {
    if (entry->d_name[0] == '.')
      continue;
    char path[300], comm[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", entry->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue; /* the thread ended meanwhile */
    if (fgets(comm, sizeof comm, f))
      comm[strcspn(comm, "\n")] = 0;
    fclose(f);
    count += strcmp(comm, name) == 0;
  }
  closedir(dir);
  return count;
}

/* A heap with the given fields, a list between garbage, three collections; returns the
 * compaction threads seen, or -1 when no compaction ran concurrently (nothing to count). */
static int run_heap(unsigned gc_threads, unsigned compact_threads) {
  ugc_config config = fixture_config(64u << 20, 0);
  config.gc_threads = gc_threads;
  config.compact_threads = compact_threads;
  ugc_heap *heap = itest_heap_create(&config);
  ugc_mutator *m = fixture_attach(heap);
  ugc_type_id t_node = counted_list_type(heap);
  ugc_scope scope = ugc_scope_open(m);
  counted_node *head = NULL;
  ugc_root(m, (void **)&head);
  counted_list_build(m, t_node, NODES, &head);
  for (int cycle = 0; cycle < 3; cycle++)
    counted_list_collect_and_check(m, &head, NODES);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  CHECK_EQ_U64(stats.cycles, 3);
  bool concurrent = strcmp(ugc_heap_backend(heap), "stw") != 0 &&
                    stats.compaction.compactions_in_pause < stats.cycles;
  int seen = concurrent ? (int)threads_named("uffdgc-compact") : -1;
  printf("%s: gc_threads %u, compact_threads %u: %d compaction threads\n", ugc_heap_backend(heap),
         gc_threads, compact_threads, seen);
  if (!strcmp(ugc_heap_backend(heap), "stw"))
    CHECK_EQ_U64(threads_named("uffdgc-compact"), 0);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  CHECK_EQ_U64(threads_named("uffdgc-compact"), 0); /* the heap's threads are gone */
  return seen;
}

static void expect(unsigned gc_threads, unsigned compact_threads, unsigned wanted) {
  int seen = run_heap(gc_threads, compact_threads);
  if (seen >= 0 && (unsigned)seen != wanted) {
    fprintf(stderr, "gc_threads %u, compact_threads %u: %d compaction threads, expected %u\n",
            gc_threads, compact_threads, seen, wanted);
    CHECK(0);
  }
}

int main(void) {
  unsetenv("UFFDGC_COMPACT_THREADS");
  unsetenv("UFFDGC_GC_THREADS");
  expect(4, 0, 3); /* default: gc_threads - 1 */
  expect(1, 0, 1); /* at least one */
  expect(2, 3, 3); /* asked for */
  setenv("UFFDGC_COMPACT_THREADS", "2", 1);
  expect(4, 1, 2); /* the environment overrides the config */
  unsetenv("UFFDGC_COMPACT_THREADS");
  TEST_DONE();
}
