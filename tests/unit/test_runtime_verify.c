/* The verifier finds planted corruption (a reference into the middle of an object, past
 * the top, into a free cell, a bad header), and UFFDGC_VERIFY counts problems found
 * during collections: mode 1 leaves a concurrent compaction to the mutators, mode 2
 * verifies it inside the pause. */
#include <stdbool.h>
#include <string.h>

#include "fixture.h"

typedef struct box {
  void *ref;
  uint64_t data;
} box;

int main(void) {
  setenv("UFFDGC_VERIFY", "1", 1);
  ugc_config config = fixture_config(16 << 20, 0);
  ugc_heap *heap = fixture_heap(&config);
  REQUIRE(heap);
  unsetenv("UFFDGC_VERIFY");
  ugc_error error;
  uint32_t refs[] = {0};
  ugc_type_id box_type = fixture_type(heap, "box", UGC_LAYOUT_FIXED, sizeof(box), refs, 1);
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, box *, a, ugc_alloc(m, box_type, sizeof(box)));
  UGC_LOCAL(m, box *, b, ugc_alloc(m, box_type, sizeof(box)));
  a->ref = b;
  CHECK(ugc_verify(m, &error) == 0);

  /* Interior pointer. */
  a->ref = (char *)b + 8;
  memset(&error, 0, sizeof error);
  CHECK(ugc_verify(m, &error) == 1);
  CHECK(error.code == UGC_ERR_INVALID);
  CHECK(strstr(error.message, "not an object start") != NULL);
  /* Past the top of the moving space. */
  a->ref = (char *)b + (1 << 20);
  CHECK(ugc_verify(m, &error) == 1);
  CHECK(strstr(error.message, "not below its top") != NULL);
  /* A free non-moving cell. */
  box *pinned = ugc_alloc_pinned(m, box_type, sizeof(box));
  a->ref = (char *)pinned + 32;
  CHECK(ugc_verify(m, &error) == 1);
  CHECK(strstr(error.message, "non-moving") != NULL);
  /* A corrupt header (unregistered type). */
  a->ref = b;
  uint64_t saved = ((uint64_t *)b)[-1];
  ((uint64_t *)b)[-1] = saved | ((uint64_t)0x7777 << 32);
  CHECK(ugc_verify(m, &error) >= 1);
  CHECK(strstr(error.message, "unregistered type id") != NULL);
  ((uint64_t *)b)[-1] = saved;
  CHECK(ugc_verify(m, &error) == 0);

  /* In verify mode a collection counts what it finds (and does not crash: marking ignores
   * values that are not objects). Mode 1 verifies before marking and, on stw, after the
   * compaction; a concurrent compaction is left to the mutators and verified at the next
   * stop (the next cycle's first check). */
  bool concurrent = strcmp(ugc_heap_backend(heap), "stw") != 0;
  unsigned per_cycle = concurrent ? 1 : 2;
  a->ref = (char *)b + 8;
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  CHECK_EQ_U64(stats.verify_cycles, per_cycle);
  CHECK(stats.verify_failures >= 1);
  a->ref = b;
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_stats after;
  ugc_stats_get(heap, &after);
  CHECK_EQ_U64(after.verify_cycles, 2 * per_cycle);
  CHECK(after.verify_failures == stats.verify_failures);
  CHECK(a->ref == b);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);

  /* Mode 2 verifies after every compaction inside its pause, whatever the backend. */
  setenv("UFFDGC_VERIFY", "2", 1);
  heap = ugc_heap_create(&config, &error);
  REQUIRE(heap);
  m = ugc_thread_attach(heap, &error);
  REQUIRE(m);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_stats_get(heap, &stats);
  CHECK_EQ_U64(stats.verify_cycles, 4);
  CHECK_EQ_U64(stats.verify_failures, 0);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);

  /* Anything else is refused, from the environment or the configuration. */
  setenv("UFFDGC_VERIFY", "3", 1);
  memset(&error, 0, sizeof error);
  CHECK(ugc_heap_create(&config, &error) == NULL);
  CHECK(error.code == UGC_ERR_INVALID && strstr(error.message, "UFFDGC_VERIFY") != NULL);
  unsetenv("UFFDGC_VERIFY");
  config.verify = 3;
  memset(&error, 0, sizeof error);
  CHECK(ugc_heap_create(&config, &error) == NULL);
  CHECK(error.code == UGC_ERR_INVALID && strstr(error.message, "config.verify = 3") != NULL);
  TEST_DONE();
}
