/* The move backend keeps transparent huge pages whole: a heap where every object is live is
 * one dense prefix, so each 2 MiB-aligned chunk of it is updated in place and moved with one
 * UFFDIO_MOVE of 2 MiB (compact/concurrent.c, "whole huge pages"), and the kernel moves its
 * PMD instead of splitting the huge page. Checked through the heap mapping's AnonHugePages
 * (/proc/self/smaps) before and after each of two compactions, with pages_moved_huge > 0 and
 * the graph digest and the verifier around each collection.
 * Skipped when the kernel lacks UFFDIO_MOVE, when transparent huge pages are "never", and
 * when the kernel backed the freshly filled heap with too few huge pages to tell. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"

/* Leaf payload: 336 bytes with the header, which does not divide a page: objects straddle
 * the chunks' boundaries, so a chunk waits for the next one's first page before it moves. */
#define BLOB_BYTES 328u
#define BLOBS 38000u /* 12 MiB of blobs: at least five whole 2 MiB chunks */
#define HUGE_BYTES ((uint64_t)2 << 20)

/* Whether /sys/kernel/mm/transparent_hugepage/enabled allows huge pages for a
 * MADV_HUGEPAGE range ("always" or "madvise"); the setting's text goes to `setting`. */
static bool thp_enabled(char *setting, size_t size) {
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  snprintf(setting, size, "not available");
  if (!f)
    return false;
  if (!fgets(setting, (int)size, f))
    snprintf(setting, size, "unreadable");
  fclose(f);
  setting[strcspn(setting, "\n")] = 0;
  return strstr(setting, "[never]") == NULL && strchr(setting, '[') != NULL;
}

/* AnonHugePages of the mapping that holds `address`, in bytes (from /proc/self/smaps). */
static uint64_t anon_huge_bytes_at(uintptr_t address) {
  FILE *f = fopen("/proc/self/smaps", "r");
  REQUIRE(f != NULL);
  char line[512];
  bool inside = false;
  uint64_t bytes = 0;
  while (fgets(line, sizeof line, f)) {
    uintptr_t start, end;
    unsigned long long kb;
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &start, &end) == 2) /* a mapping's line */
      inside = address >= start && address < end;
    else if (inside && sscanf(line, "AnonHugePages: %llu kB", &kb) == 1)
      bytes = (uint64_t)kb << 10;
  }
  fclose(f);
  return bytes;
}

/* One full collection; its compaction statistics go to *delta. */
static void collect_checked(ugc_heap *heap, ugc_mutator *m, ugc_compaction_stats *delta) {
  ugc_stats before, after;
  ugc_stats_get(heap, &before);
  uint64_t digest = ugc_graph_digest(m);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_collect(m, UGC_COLLECT_FINISH);
  REQUIRE(ugc_graph_digest(m) == digest);
  ugc_error error;
  REQUIRE(ugc_verify(m, &error) == 0);
  ugc_stats_get(heap, &after);
  const uint64_t *b = (const uint64_t *)&before.compaction,
                 *a = (const uint64_t *)&after.compaction;
  uint64_t *d = (uint64_t *)delta;
  for (size_t i = 0; i < sizeof *delta / sizeof(uint64_t); i++)
    d[i] = a[i] - b[i];
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  unsetenv("UFFDGC_BACKEND");
  unsetenv("UFFDGC_INJECT");
  unsetenv("UFFDGC_DISABLE");
  char reason[256];
  if (!ugc_backend_available("move", reason, sizeof reason))
    SKIP("backend move: %s", reason);
  char setting[128];
  if (!thp_enabled(setting, sizeof setting))
    SKIP("transparent huge pages are off here (enabled: %s)", setting);

  ugc_config config = fixture_config((size_t)64 << 20, (size_t)32 << 20);
  config.backend = "move";
  config.gc_threads = 2; /* one compaction thread */
  ugc_heap *heap = fixture_heap(&config);
  ugc_mutator *m = fixture_attach(heap);
  ugc_type_id blob = fixture_leaf_type(heap, "blob");
  ugc_type_id table = fixture_type(heap, "table", UGC_LAYOUT_REF_ARRAY, 0, NULL, 0);
  ugc_scope scope = ugc_scope_open(m);
  void **roots = ugc_alloc(m, table, BLOBS * sizeof(void *)); /* large-object space */
  ugc_root(m, (void **)&roots);
  for (unsigned i = 0; i < BLOBS; i++) {
    uint64_t *b = ugc_alloc(m, blob, BLOB_BYTES);
    for (unsigned w = 0; w < BLOB_BYTES / 8; w++)
      b[w] = (uint64_t)i * 1000 + w;
    ugc_write(m, roots, &roots[i], b);
  }
  uintptr_t heap_address = (uintptr_t)roots[BLOBS / 2];
  uint64_t huge_before = anon_huge_bytes_at(heap_address);
  printf("THP %s; heap mapping's AnonHugePages before: %" PRIu64 " MiB\n", setting,
         huge_before >> 20);
  if (huge_before < 3 * HUGE_BYTES)
    SKIP("the kernel backed the filled heap with %" PRIu64 " huge pages (fewer than 3: "
         "fragmented memory or THP defrag settings); nothing to tell",
         huge_before / HUGE_BYTES);

  for (int cycle = 1; cycle <= 2; cycle++) {
    ugc_compaction_stats d;
    collect_checked(heap, m, &d);
    uint64_t huge_after = anon_huge_bytes_at((uintptr_t)roots[BLOBS / 2]);
    printf("compaction %d: %" PRIu64 " pages, %" PRIu64 " in place, %" PRIu64
           " moved as whole huge pages, %" PRIu64 " MOVE calls; AnonHugePages %" PRIu64
           " MiB (before %" PRIu64 " MiB)\n",
           cycle, d.pages_total, d.pages_in_place, d.pages_moved_huge, d.move_ioctls,
           huge_after >> 20, huge_before >> 20);
    CHECK(d.pages_in_place * 10 >= d.pages_total * 9); /* every object live: all dense */
    CHECK(d.pages_moved_huge > 0);
    CHECK(d.pages_moved_huge <= d.pages_in_place);
    CHECK(d.pages_moved_huge % (HUGE_BYTES / 4096) == 0);
    /* Every huge page of the data stayed whole; the chunk holding the top of the data is
     * not a whole dense chunk (moved as smaller runs), and the one above it may have
     * held the allocation buffer's huge page: two at most may go. */
    CHECK(huge_after + 2 * HUGE_BYTES >= huge_before);
    CHECK(huge_after >= HUGE_BYTES);
    huge_before = huge_after;
  }
  for (unsigned i = 0; i < BLOBS; i += 97) {
    const uint64_t *b = roots[i];
    for (unsigned w = 0; w < BLOB_BYTES / 8; w++)
      REQUIRE(b[w] == (uint64_t)i * 1000 + w);
  }
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
