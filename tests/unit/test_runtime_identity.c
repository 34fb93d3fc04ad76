/* ugc_identity_hash: 64 objects hashed once keep their hashes through 1,000 collections in
 * each of which every one of them moves; hashes of
 * distinct objects differ; hashed objects that die leave the table (it does not grow); the
 * graph digest and the verifier agree with every cycle; ugc_collections counts them.
 * tests/matrix.cmake runs it on every backend. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "runtime/heap.h"

enum { OBJECTS = 64, CYCLES = 1000, SPACER_BYTES = 256 };

/* Sliding compaction moves an object only when something below it died and its page is
 * not in the dense prefix (pages at least 95% live stay put). So 1,000 spacers of 256
 * bytes lie below the hashed objects, and each cycle drops the lowest one left: the bottom
 * page drops below the bar and every hashed object slides down by one spacer. The spacers
 * hold (null) references: pages of leaf objects only could be slid whole by `move`, at
 * their old offsets in the page, and then the padding before them may leave them in place. */
int main(void) {
  const char *backend = getenv("UFFDGC_BACKEND");
  if (backend && *backend && strcmp(backend, "stw") != 0) {
    char reason[256] = "";
    if (!ugc_backend_available(backend, reason, sizeof reason))
      SKIP("backend %s is not available: %s", backend, reason);
  }
  ugc_heap *heap = fixture_heap_sized(64u << 20, 4u << 20);
  ugc_mutator *m = fixture_attach(heap);
  ugc_type_id t_array = fixture_type(heap, "array", UGC_LAYOUT_REF_ARRAY, 0, NULL, 0);
  ugc_type_id t_leaf = fixture_leaf_type(heap, "leaf");

  ugc_scope scope = ugc_scope_open(m);
  /* Pinned: the arrays themselves must not sit below the objects that should move. */
  UGC_LOCAL(m, void **, spacers, ugc_alloc_pinned(m, t_array, CYCLES * sizeof(void *)));
  UGC_LOCAL(m, void **, kept, ugc_alloc_pinned(m, t_array, OBJECTS * sizeof(void *)));
  REQUIRE(spacers && kept);
  for (int i = 0; i < CYCLES; i++)
    ugc_write(m, spacers, &spacers[i], ugc_alloc(m, t_array, SPACER_BYTES));
  uint64_t hashes[OBJECTS];
  for (int i = 0; i < OBJECTS; i++) {
    char *object = ugc_alloc(m, t_leaf, 16);
    REQUIRE(object);
    snprintf(object, 16, "kept %d", i);
    ugc_write(m, kept, &kept[i], object);
    hashes[i] = ugc_identity_hash(m, object);
    CHECK(hashes[i] != 0);
    CHECK_EQ_U64(ugc_identity_hash(m, object), hashes[i]); /* the same when asked again */
  }
  for (int i = 0; i < OBJECTS; i++)
    for (int j = 0; j < i; j++)
      CHECK(hashes[i] != hashes[j]);

  uint64_t collections_before = ugc_collections(heap);
  unsigned moves = 0;
  for (int cycle = 0; cycle < CYCLES && !ugc_test_failures; cycle++) {
    uintptr_t before[OBJECTS];
    for (int i = 0; i < OBJECTS; i++)
      before[i] = (uintptr_t)kept[i];
    ugc_write(m, spacers, &spacers[cycle], NULL);
    /* Hashed objects that die at once: the table must not keep them. */
    for (int i = 0; i < 8; i++)
      ugc_identity_hash(m, ugc_alloc(m, t_leaf, 8));
    bool check_graph = cycle % 100 == 0;
    uint64_t digest = check_graph ? ugc_graph_digest(m) : 0;
    ugc_collect(m, UGC_COLLECT_FULL);
    if (check_graph) {
      CHECK_EQ_U64(ugc_graph_digest(m), digest);
      ugc_error error;
      CHECK(ugc_verify(m, &error) == 0);
    }
    for (int i = 0; i < OBJECTS; i++) {
      moves += (uintptr_t)kept[i] != before[i];
      CHECK_EQ_U64(ugc_identity_hash(m, kept[i]), hashes[i]);
      char expected[16];
      snprintf(expected, sizeof expected, "kept %d", i);
      CHECK(strcmp((char *)kept[i], expected) == 0);
    }
    pthread_mutex_lock(&heap->lock);
    size_t entries = heap->identity.count;
    pthread_mutex_unlock(&heap->lock);
    CHECK(entries == OBJECTS); /* the 8 dead ones of this cycle are gone */
  }
  uint64_t collections = ugc_collections(heap) - collections_before;
  printf("identity[%s]: %d cycles (ugc_collections counted %llu), %u of %d object moves\n",
         ugc_heap_backend(heap), CYCLES, (unsigned long long)collections, moves, OBJECTS * CYCLES);
  CHECK(collections >= CYCLES);
  CHECK_EQ_U64(moves, OBJECTS * CYCLES); /* every object moved in every cycle */
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
