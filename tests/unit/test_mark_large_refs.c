/* References held by large and non-moving objects are updated in the compaction pause,
 * shared over the worker pool when there are many (large arrays cut into pieces). Here:
 * 140 reference arrays of 160 KB (large objects, with a reference in their fixed part too)
 * and pinned objects, all pointing at moving objects that slide down because garbage was
 * allocated between them. After each collection every reference must point at the moved
 * object (checked by value and by the graph digest), with 1 and 2 GC threads. */
#include <string.h>

#include "fixture.h"

typedef struct box {
  uint64_t id;
  void *next;
} box;

typedef struct array {
  uint64_t length;
  void *head; /* a reference in the fixed part */
} array;

enum { ARRAYS = 140, ARRAY_BYTES = 160 * 1024, PINNED = 2000 };
#define SLOTS ((ARRAY_BYTES - sizeof(array)) / 8)

static void run(unsigned threads) {
  ugc_config config = fixture_config(512 << 20, 512 << 20);
  config.gc_threads = threads;
  ugc_heap *heap = fixture_heap(&config);
  REQUIRE(heap);
  ugc_error error;
  uint32_t box_refs[] = {8}, array_refs[] = {8};
  ugc_type_id box_type = fixture_type(heap, "box", UGC_LAYOUT_FIXED, sizeof(box), box_refs, 1);
  ugc_type_id array_type =
      fixture_type(heap, "array", UGC_LAYOUT_REF_ARRAY, sizeof(array), array_refs, 1);
  REQUIRE(box_type && array_type);
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, array *, arrays, NULL); /* arrays[0] lists the others */
  UGC_LOCAL(m, array *, one, NULL);
  UGC_LOCAL(m, box *, pinned, NULL);

  arrays = ugc_alloc(m, array_type, sizeof(array) + 8 * ARRAYS);
  arrays->length = ARRAYS;
  uint64_t id = 1;
  for (size_t a = 0; a < ARRAYS; a++) {
    one = ugc_alloc(m, array_type, ARRAY_BYTES);
    one->length = SLOTS;
    void **slots = (void **)(one + 1);
    for (size_t i = 0; i < SLOTS; i++) {
      if (i % 4 == 0) {
        ugc_alloc(m, box_type, sizeof(box)); /* garbage: the live boxes move down */
        box *b = ugc_alloc(m, box_type, sizeof(box));
        b->id = id++;
        slots = (void **)(one + 1); /* the array is large: it never moves, but be plain */
        slots[i] = b;
      } else {
        slots[i] = i % 4 == 1 ? slots[i - 1] : NULL;
      }
    }
    box *head = ugc_alloc(m, box_type, sizeof(box));
    head->id = id++;
    one->head = head;
    ((void **)(arrays + 1))[a] = one;
  }
  /* Pinned objects (non-moving space) chained through moving boxes. */
  for (size_t i = 0; i < PINNED; i++) {
    box *p = ugc_alloc_pinned(m, box_type, sizeof(box));
    p->id = id++;
    ugc_alloc(m, box_type, sizeof(box)); /* garbage */
    box *b = ugc_alloc(m, box_type, sizeof(box));
    b->id = id++;
    b->next = pinned;
    p->next = b;
    pinned = p;
  }

  uint64_t digest = ugc_graph_digest(m);
  for (int cycle = 0; cycle < 3; cycle++) {
    ugc_collect(m, UGC_COLLECT_FULL);
    CHECK(ugc_graph_digest(m) == digest);
  }
  /* By value too: ids in allocation order. */
  uint64_t expect = 1;
  for (size_t a = 0; a < ARRAYS; a++) {
    array *arr = ((array **)(arrays + 1))[a];
    void **slots = (void **)(arr + 1);
    for (size_t i = 0; i < SLOTS; i += 4) {
      CHECK_EQ_U64(((box *)slots[i])->id, expect);
      if (i + 1 < SLOTS)
        CHECK(slots[i + 1] == slots[i]);
      expect++;
    }
    CHECK_EQ_U64(((box *)arr->head)->id, expect);
    expect++;
  }
  CHECK(ugc_verify(m, &error) == 0);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("threads=%u compaction pause max=%.2fms mark max=%.2fms\n", threads,
         stats.pause_compact.max_ns / 1e6, stats.pause_mark.max_ns / 1e6);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
}

int main(void) {
  run(1);
  run(2);
  TEST_DONE();
}
