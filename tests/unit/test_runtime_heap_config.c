/* ugc_heap_config: the settings a heap runs with, every automatic choice resolved.
 *   - "auto" comes back as the backend that runs (ugc_heap_backend), thread counts as
 *     counts (gc_threads from the CPUs, compact_threads = gc_threads - 1, at least 1);
 *   - the environment wins over the config (UFFDGC_COMPACT_THREADS, UFFDGC_THP);
 *   - huge pages as the backend chose them for AUTO: on for stw, off for copy; off
 *     everywhere in the run with UFFDGC_DISABLE=thp (tests/matrix.cmake, [no_thp]: the
 *     disabled set is read once per process);
 *   - the fields nobody resolves come back as given. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "uffdgc.h"

#define MiB ((size_t)1 << 20)

static bool thp_disabled; /* UFFDGC_DISABLE holds "thp" */

/* What huge_pages reads back when the backend or the config asks for `wanted`. */
static uint64_t huge(ugc_huge_pages wanted) {
  return thp_disabled ? UGC_HUGE_PAGES_OFF : wanted;
}

static ugc_heap *create(ugc_config *config) {
  ugc_error error;
  memset(&error, 0, sizeof error);
  ugc_heap *heap = ugc_heap_create(config, &error);
  if (!heap)
    fprintf(stderr, "ugc_heap_create: %s\n", error.message);
  REQUIRE(heap);
  return heap;
}

static void resolved_defaults(void) {
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = 64 * MiB;
  config.heap_initial = 8 * MiB;
  config.backend = "stw";
  ugc_heap *heap = create(&config);
  ugc_config got;
  ugc_heap_config(heap, &got);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned expected_gc = cpus < 1 ? 1 : cpus > 8 ? 8 : (unsigned)cpus;
  printf("stw: %u GC threads, %u compacting, huge pages %d\n", got.gc_threads, got.compact_threads,
         (int)got.huge_pages);
  CHECK(strcmp(got.backend, "stw") == 0);
  CHECK_EQ_U64(got.gc_threads, expected_gc);
  CHECK_EQ_U64(got.compact_threads, expected_gc > 1 ? expected_gc - 1 : 1);
  CHECK_EQ_U64(got.huge_pages, huge(UGC_HUGE_PAGES_ON));
  CHECK_EQ_U64(got.heap_max, 64 * MiB);
  CHECK_EQ_U64(got.heap_initial, 8 * MiB);
  CHECK_EQ_U64(got.concurrent_mark, 1);
  ugc_heap_destroy(heap);

  ugc_config_init(&config);
  config.heap_max = 64 * MiB;
  heap = create(&config); /* "auto" */
  ugc_heap_config(heap, &got);
  printf("auto: %s\n", got.backend);
  CHECK(strcmp(got.backend, ugc_heap_backend(heap)) == 0);
  CHECK(strcmp(got.backend, "auto") != 0);
  ugc_heap_destroy(heap);
}

static void environment_wins(void) {
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = 64 * MiB;
  config.backend = "stw";
  config.gc_threads = 4;
  config.compact_threads = 1;
  config.huge_pages = UGC_HUGE_PAGES_ON;
  setenv("UFFDGC_COMPACT_THREADS", "3", 1);
  setenv("UFFDGC_THP", "0", 1);
  ugc_heap *heap = create(&config);
  ugc_config got;
  ugc_heap_config(heap, &got);
  CHECK_EQ_U64(got.gc_threads, 4);
  CHECK_EQ_U64(got.compact_threads, 3);
  CHECK_EQ_U64(got.huge_pages, UGC_HUGE_PAGES_OFF);
  ugc_heap_destroy(heap);
  unsetenv("UFFDGC_COMPACT_THREADS");
  unsetenv("UFFDGC_THP");

  heap = create(&config); /* the variables are gone: the config's values */
  ugc_heap_config(heap, &got);
  CHECK_EQ_U64(got.huge_pages, huge(UGC_HUGE_PAGES_ON));
  CHECK_EQ_U64(got.compact_threads, 1);
  ugc_heap_destroy(heap);
}

static void backend_chooses_huge_pages(void) {
  char reason[200];
  if (!ugc_backend_available("copy", reason, sizeof reason)) {
    printf("copy backend not available (%s): its huge-page choice not checked\n", reason);
    return;
  }
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = 64 * MiB;
  config.backend = "copy";
  ugc_heap *heap = create(&config);
  ugc_config got;
  ugc_heap_config(heap, &got);
  CHECK(strcmp(got.backend, "copy") == 0);
  CHECK_EQ_U64(got.huge_pages, huge(UGC_HUGE_PAGES_OFF));
  ugc_heap_destroy(heap);
  config.huge_pages = UGC_HUGE_PAGES_ON;
  heap = create(&config);
  ugc_heap_config(heap, &got);
  CHECK_EQ_U64(got.huge_pages, huge(UGC_HUGE_PAGES_ON));
  ugc_heap_destroy(heap);
}

int main(void) {
  const char *disabled = getenv("UFFDGC_DISABLE");
  thp_disabled = disabled && strstr(disabled, "thp");
  printf("huge pages %s\n", thp_disabled ? "disabled (UFFDGC_DISABLE)" : "allowed");
  static const char *const vars[] = {"UFFDGC_BACKEND",         "UFFDGC_GC_THREADS",
                                     "UFFDGC_COMPACT_THREADS", "UFFDGC_THP",
                                     "UFFDGC_HEAP_MAX",        "UFFDGC_CONCURRENT_MARK"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    unsetenv(vars[i]);
  resolved_defaults();
  environment_wins();
  backend_chooses_huge_pages();
  return ugc_test_failures ? 1 : 0;
}
