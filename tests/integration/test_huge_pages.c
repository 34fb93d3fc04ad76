/* Transparent huge pages for the moving space (config.huge_pages, UFFDGC_THP): the backend's
 * choice by default (stw, sigsegv and minor on; copy and move off), or what the config or
 * the environment says; UFFDGC_DISABLE=thp wins over both. Checked where the kernel shows
 * it, in the VmFlags ("hg": MADV_HUGEPAGE, "nh": MADV_NOHUGEPAGE) of the mapping that holds
 * the heap's objects before any collection, and of the fresh memory above the compacted data
 * after each (copy's hand-off flips the flag around one touch and must leave it as it was;
 * sigsegv and minor map new memory there at every compaction), with the data intact and the
 * verifier clean. Bad values of the field or the variable fail with an error naming them.
 * Run per backend by the matrix (UFFDGC_BACKEND). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counted_list.h"

#define NODES 60000u
#define FRESH_BYTES (100u << 10)

static ugc_type_id t_node, t_blob;

/* A CHECK that says what it saw. */
#define CHECK_SAID(cond, ...)                                                                      \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
    }                                                                                              \
    CHECK(cond);                                                                                   \
  } while (0)

/* 'h' (hg), 'n' (nh) or '-' (neither) for the mapping holding `address`. */
static char huge_flag_at(uintptr_t address) {
  FILE *f = fopen("/proc/self/smaps", "r");
  REQUIRE(f != NULL);
  char line[512];
  bool inside = false;
  char flag = '?';
  while (fgets(line, sizeof line, f)) {
    uintptr_t start, end;
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &start, &end) == 2) {
      inside = address >= start && address < end;
    } else if (inside && !strncmp(line, "VmFlags:", 8)) {
      flag = strstr(line, " hg") ? 'h' : strstr(line, " nh") ? 'n' : '-';
    }
  }
  fclose(f);
  return flag;
}

/* A list of NODES nodes between garbage, two collections; returns the flag seen before and
 * checks that the collections kept both the list and the flag. */
static char run_heap(ugc_config *config, const char **backend_out) {
  ugc_heap *heap = itest_heap_create(config);
  ugc_mutator *m = fixture_attach(heap);
  t_node = counted_list_type(heap);
  t_blob = fixture_leaf_type(heap, "blob");
  ugc_scope scope = ugc_scope_open(m);
  counted_node *head = NULL;
  ugc_root(m, (void **)&head);
  counted_list_build(m, t_node, NODES, &head);
  char before = huge_flag_at((uintptr_t)head);
  *backend_out = ugc_heap_backend(heap);
  for (int cycle = 0; cycle < 2; cycle++) {
    counted_list_collect_and_check(m, &head, NODES);
    /* Fresh memory above the compacted data: what allocation faults in next. (sigsegv and
     * minor hold the data itself in file pages after a compaction, whose huge pages follow
     * the kernel's shmem setting.) A 100 KiB object ends past the data's last page. */
    char *fresh = ugc_alloc(m, t_blob, FRESH_BYTES);
    REQUIRE(fresh != NULL);
    char after = huge_flag_at((uintptr_t)fresh + FRESH_BYTES - 1);
    CHECK_SAID(after == before, "%s: huge-page flag '%c' before, '%c' after collection %d",
               *backend_out, before, after, cycle);
  }
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  CHECK_EQ_U64(stats.cycles, 2);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  return before;
}

static char expected(const char *backend, ugc_huge_pages wanted) {
  if (getenv("UFFDGC_DISABLE") && strstr(getenv("UFFDGC_DISABLE"), "thp"))
    return 'n';
  if (wanted == UGC_HUGE_PAGES_AUTO)
    return strcmp(backend, "copy") && strcmp(backend, "move") ? 'h' : 'n';
  return wanted == UGC_HUGE_PAGES_ON ? 'h' : 'n';
}

/* A heap with config.huge_pages = `field`; `effective` is what the environment makes of it. */
static void check_setting(ugc_huge_pages field, ugc_huge_pages effective, const char *name) {
  ugc_config config = fixture_config(64u << 20, 0);
  config.huge_pages = field;
  const char *backend = "?";
  char seen = run_heap(&config, &backend);
  printf("%s: huge_pages %s: flag '%c'\n", backend, name, seen);
  CHECK_SAID(seen == expected(backend, effective), "%s, huge_pages %s: flag '%c', expected '%c'",
             backend, name, seen, expected(backend, effective));
}

static void check_rejected(const char *env_value, ugc_huge_pages field, const char *named) {
  ugc_config config = fixture_config(64u << 20, 0);
  config.huge_pages = field;
  if (env_value)
    setenv("UFFDGC_THP", env_value, 1);
  ugc_error error;
  memset(&error, 0, sizeof error);
  ugc_heap *heap = ugc_heap_create(&config, &error);
  unsetenv("UFFDGC_THP");
  CHECK_SAID(heap == NULL, "a bad huge-page setting (%s) was accepted", named);
  if (heap)
    ugc_heap_destroy(heap);
  CHECK_SAID(error.code == UGC_ERR_INVALID && strstr(error.message, named),
             "error for a bad %s: code %d, \"%s\"", named, (int)error.code, error.message);
}

int main(void) {
  unsetenv("UFFDGC_THP");
  check_setting(UGC_HUGE_PAGES_AUTO, UGC_HUGE_PAGES_AUTO, "auto");
  check_setting(UGC_HUGE_PAGES_ON, UGC_HUGE_PAGES_ON, "on");
  check_setting(UGC_HUGE_PAGES_OFF, UGC_HUGE_PAGES_OFF, "off");
  /* The environment overrides the config. */
  setenv("UFFDGC_THP", "0", 1);
  check_setting(UGC_HUGE_PAGES_ON, UGC_HUGE_PAGES_OFF, "on, UFFDGC_THP=0");
  setenv("UFFDGC_THP", "1", 1);
  check_setting(UGC_HUGE_PAGES_OFF, UGC_HUGE_PAGES_ON, "off, UFFDGC_THP=1");
  setenv("UFFDGC_THP", "auto", 1);
  check_setting(UGC_HUGE_PAGES_ON, UGC_HUGE_PAGES_AUTO, "on, UFFDGC_THP=auto");
  unsetenv("UFFDGC_THP");
  check_rejected("yes", UGC_HUGE_PAGES_AUTO, "UFFDGC_THP");
  check_rejected(NULL, (ugc_huge_pages)7, "huge_pages");
  TEST_DONE();
}
