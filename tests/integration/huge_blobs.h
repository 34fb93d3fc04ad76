/* Helpers of the move backend's huge-page tests (test_move_huge.c, test_move_huge_slid.c):
 * whether THP is on, a mapping's AnonHugePages, and a checked collection over a table of
 * leaf blobs whose words hold i * 1000 + w. The includer defines BLOBS and BLOB_BYTES. */
#ifndef UGC_TESTS_HUGE_BLOBS_H
#define UGC_TESTS_HUGE_BLOBS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

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

/* Checks every blob from the last to the first (faults on pages not yet compacted). */
static void read_blobs_down(void **roots) {
  for (unsigned i = BLOBS; i-- > 0;) {
    const uint64_t *b = roots[i];
    if (!b)
      continue;
    for (unsigned w = 0; w < BLOB_BYTES / 8; w++)
      REQUIRE(b[w] == (uint64_t)i * 1000 + w);
  }
}

/* One full collection, with `roots` read meanwhile when `read` (the compaction is
 * concurrent); its compaction statistics go to *delta. */
static void collect_checked(ugc_heap *heap, ugc_mutator *m, void **roots, bool read,
                            ugc_compaction_stats *delta) {
  ugc_stats before, after;
  ugc_stats_get(heap, &before);
  uint64_t digest = ugc_graph_digest(m);
  ugc_collect(m, UGC_COLLECT_FULL);
  if (read)
    read_blobs_down(roots);
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

static ugc_type_id blob_type, table_type;

/* Skips unless this kernel has the move backend and THP is on (its setting goes to
 * `setting`); returns a move heap of heap_max bytes (first trigger `initial`) with one
 * compaction thread, the blob and table types registered. `inject`: UFFDGC_INJECT for it
 * (ignored where fault injection is compiled out), or NULL. */
static ugc_heap *blob_heap_or_skip(size_t heap_max, size_t initial, const char *inject,
                                   char *setting, size_t size) {
  setvbuf(stdout, NULL, _IONBF, 0);
  unsetenv("UFFDGC_BACKEND");
  unsetenv("UFFDGC_INJECT");
  unsetenv("UFFDGC_DISABLE");
#ifndef UGC_NO_FAULT_INJECTION
  if (inject)
    setenv("UFFDGC_INJECT", inject, 1);
#endif
  char reason[256];
  if (!ugc_backend_available("move", reason, sizeof reason))
    SKIP("backend move: %s", reason);
  if (!thp_enabled(setting, size))
    SKIP("transparent huge pages are off here (enabled: %s)", setting);
  ugc_config config = fixture_config(heap_max, initial);
  config.backend = "move";
  config.huge_pages = UGC_HUGE_PAGES_ON; /* the whole-chunk moves are of huge pages */
  config.gc_threads = 2;                 /* one compaction thread */
  ugc_heap *heap = fixture_heap(&config);
  blob_type = fixture_leaf_type(heap, "blob");
  table_type = fixture_type(heap, "table", UGC_LAYOUT_REF_ARRAY, 0, NULL, 0);
  return heap;
}

/* Allocates the table (large-object space) into *roots (a rooted variable of the caller)
 * and BLOBS blobs, blob i holding i * 1000 + w in word w. */
static void fill_blobs(ugc_mutator *m, void ***roots) {
  *roots = ugc_alloc(m, table_type, BLOBS * sizeof(void *));
  REQUIRE(*roots != NULL);
  for (unsigned i = 0; i < BLOBS; i++) {
    uint64_t *b = ugc_alloc(m, blob_type, BLOB_BYTES);
    REQUIRE(b != NULL);
    for (unsigned w = 0; w < BLOB_BYTES / 8; w++)
      b[w] = (uint64_t)i * 1000 + w;
    ugc_write(m, *roots, &(*roots)[i], b);
  }
}

#endif
