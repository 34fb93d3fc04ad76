/* ugc_stats_get while concurrent compactions run: a thread that is not a mutator reads the
 * statistics in a loop while a mutator allocates, collects and faults on pages being
 * compacted. Every snapshot must be consistent: counters never go back, every histogram's
 * count is the sum of its buckets, one pause per cycle, pages built <= pages compacted, and
 * (copy) bytes copied match the pages built. Runs on the backend UFFDGC_BACKEND names. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "itest.h"

typedef struct node {
  void *next;
  uint64_t payload[30];
} node;

static ugc_heap *heap;
static ugc_type_id node_type;
static atomic_bool stop;
static bool is_copy;

static uint64_t bucket_sum(const ugc_histogram *h) {
  uint64_t sum = 0;
  for (size_t i = 0; i < UGC_HISTOGRAM_BUCKETS; i++)
    sum += h->buckets[i];
  return sum;
}

#define MONOTONIC(field)                                                                           \
  do {                                                                                             \
    if (now.field < before.field) {                                                                \
      fprintf(stderr, "%s went back: %llu -> %llu\n", #field, (unsigned long long)before.field,    \
              (unsigned long long)now.field);                                                      \
      bad++;                                                                                       \
    }                                                                                              \
  } while (0)

static void *reader(void *arg) {
  unsigned long *snapshots = arg;
  static ugc_stats before, now;
  unsigned bad = 0;
  ugc_stats_get(heap, &before);
  while (!atomic_load(&stop) && bad < 10) {
    ugc_stats_get(heap, &now);
    ++*snapshots;
    MONOTONIC(cycles);
    MONOTONIC(allocated_bytes);
    MONOTONIC(freed_bytes);
    MONOTONIC(gc_cpu_ns);
    MONOTONIC(pause.count);
    MONOTONIC(stall.count);
    MONOTONIC(compaction.pages_total);
    MONOTONIC(compaction.pages_by_gc);
    MONOTONIC(compaction.pages_by_mutator);
    MONOTONIC(compaction.bytes_copied);
    MONOTONIC(compaction.concurrent_ns);
    const ugc_compaction_stats *c = &now.compaction;
    /* A stop-the-world cycle pauses once (a marking and a compaction phase), a concurrent
     * one three times (initial and remark: marking; then compaction). So the pauses without
     * a marking phase are the completed concurrent cycles, and the cycle in progress may
     * have had its initial and remark pauses (and counted itself concurrent at the remark). */
    uint64_t concurrent_done = now.pause.count - now.pause_mark.count;
    uint64_t marking_pauses = now.cycles + concurrent_done + now.mark_remark_retries;
    if (now.pause.count < now.pause_mark.count || now.pause_compact.count != now.cycles ||
        concurrent_done > now.cycles || now.pause_mark.count < marking_pauses ||
        now.pause_mark.count > marking_pauses + 2 || now.mark_concurrent_cycles < concurrent_done ||
        now.mark_concurrent_cycles > concurrent_done + 1) {
      fprintf(stderr, "cycles %llu, pauses %llu\n", (unsigned long long)now.cycles,
              (unsigned long long)now.pause.count);
      bad++;
    }
    const ugc_histogram *histograms[] = {&now.pause, &now.pause_mark, &now.pause_compact,
                                         &now.stall};
    for (size_t i = 0; i < 4; i++)
      if (bucket_sum(histograms[i]) != histograms[i]->count) {
        fprintf(stderr, "histogram %zu: count %llu, buckets %llu\n", i,
                (unsigned long long)histograms[i]->count,
                (unsigned long long)bucket_sum(histograms[i]));
        bad++;
      }
    if (c->pages_by_gc + c->pages_by_mutator > c->pages_total) {
      fprintf(stderr, "pages built %llu + %llu > total %llu\n", (unsigned long long)c->pages_by_gc,
              (unsigned long long)c->pages_by_mutator, (unsigned long long)c->pages_total);
      bad++;
    }
    if (is_copy && c->bytes_copied != (c->pages_by_gc + c->pages_by_mutator) * 4096) {
      fprintf(stderr, "bytes copied %llu for %llu pages built\n",
              (unsigned long long)c->bytes_copied,
              (unsigned long long)(c->pages_by_gc + c->pages_by_mutator));
      bad++;
    }
    before = now;
  }
  ugc_test_failures += (int)bad;
  return NULL;
}

int main(void) {
  ugc_config config = fixture_config(64 << 20, 8 << 20);
  heap = itest_heap_create(&config);
  is_copy = strcmp(ugc_heap_backend(heap), "copy") == 0;
  uint32_t refs[] = {0};
  node_type = fixture_type(heap, "node", UGC_LAYOUT_FIXED, sizeof(node), refs, 1);
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  unsigned long snapshots = 0;
  pthread_t thread;
  REQUIRE(pthread_create(&thread, NULL, reader, &snapshots) == 0);

  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, void *, list, NULL);
  size_t kept = 0;
  for (int cycle = 0; cycle < 40; cycle++) {
    for (int i = 0; i < 20000; i++) {
      node *n = ugc_alloc(m, node_type, sizeof(node));
      REQUIRE(n);
      if (i % 3 == 0) {
        ugc_write(m, n, &n->next, list);
        list = n;
        kept++;
      }
    }
    if (kept > 60000) { /* keep the live set bounded */
      list = NULL;
      kept = 0;
    }
    ugc_collect(m, UGC_COLLECT_FULL);
    for (node *n = list; n; n = n->next) /* faults on pages not built yet: stalls */
      n->payload[1]++;
  }
  ugc_collect(m, UGC_COLLECT_FINISH);
  atomic_store(&stop, true);
  pthread_join(thread, NULL);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("stats snapshot: backend %s, %llu cycles, %lu snapshots, %llu stalls, %llu pages by "
         "mutators\n",
         ugc_heap_backend(heap), (unsigned long long)stats.cycles, snapshots,
         (unsigned long long)stats.stall.count,
         (unsigned long long)stats.compaction.pages_by_mutator);
  CHECK(stats.cycles >= 40);
  CHECK(snapshots > 0);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
