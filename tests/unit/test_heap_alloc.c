/* Allocation in every space: TLAB objects, medium objects, large objects, pinned objects;
 * memory is zeroed, headers are right, the walk sees everything, reuse after sweeping. */
#include <string.h>

#include "runtime/heap.h"
#include "fixture.h"

typedef struct walk_count {
  size_t objects, bytes;
} walk_count;

static bool count(void *obj, ugc_type_id type, size_t bytes, void *data) {
  walk_count *c = data;
  c->objects++;
  c->bytes += bytes;
  return true;
}

static bool all_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return false;
  return true;
}

int main(void) {
  ugc_config config = fixture_config(64 << 20, 64 << 20);
  config.large_threshold = 64 * 1024;
  ugc_heap *heap = fixture_heap(&config);
  REQUIRE(heap);
  CHECK(((uintptr_t)heap->moving.base & ((1ul << 30) - 1)) == 0); /* 1 GiB-aligned */
  CHECK(heap->moving.nonmoving_base == heap->moving.base + heap->moving.reserved_bytes);
  ugc_type_id bytes_type = fixture_leaf_type(heap, "bytes");
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);
  CHECK(ugc_fast(m)->small_limit <= UGC_TLAB_BYTES - 8);

  /* Small objects: consecutive in the TLAB, 8-byte aligned, zeroed. */
  char *a = ugc_alloc(m, bytes_type, 10);
  char *b = ugc_alloc(m, bytes_type, 3);
  REQUIRE(a && b);
  CHECK(((uintptr_t)a & 7) == 0 && ((uintptr_t)b & 7) == 0);
  CHECK(b == a + 16 + 8);
  CHECK(ugc_object_type(a) == bytes_type && ugc_object_size(a) == 10);
  CHECK(all_zero(a, 10) && all_zero(b, 3));
  memset(a, 0xab, 10);

  /* Many small objects: TLAB refills, every one zeroed. */
  size_t small = 0;
  for (int i = 0; i < 20000; i++) {
    size_t n = (size_t)(i % 200);
    char *p = ugc_alloc(m, bytes_type, n);
    REQUIRE(p);
    CHECK(all_zero(p, n));
    memset(p, 0x5a, n);
    small++;
  }
  /* Medium (bypasses the TLAB), still moving. */
  char *medium = ugc_alloc(m, bytes_type, 20000);
  REQUIRE(medium);
  CHECK((uintptr_t)medium - heap->moving.base < heap->moving.reserved_bytes);
  CHECK(all_zero(medium, 20000));
  /* Large: its own mapping, outside both spaces. */
  char *large = ugc_alloc(m, bytes_type, 100000);
  REQUIRE(large);
  CHECK((uintptr_t)large - heap->moving.base >= heap->moving.covered_bytes);
  CHECK(all_zero(large, 100000));
  CHECK(ugc_object_size(large) == 100000);
  /* Pinned: the non-moving space. */
  char *pinned = ugc_alloc_pinned(m, bytes_type, 100);
  REQUIRE(pinned);
  CHECK((uintptr_t)pinned - heap->nonmoving.base < heap->nonmoving.end - heap->nonmoving.base);
  CHECK(all_zero(pinned, 100));
  CHECK(ugc_object_size(pinned) == 100);
  char *pinned_large = ugc_alloc_pinned(m, bytes_type, 70000);
  REQUIRE(pinned_large);
  CHECK((uintptr_t)pinned_large - heap->moving.base >= heap->moving.covered_bytes);

  walk_count c = {0, 0};
  ugc_heap_walk(m, count, &c);
  CHECK_EQ_U64(c.objects, 2 + small + 4);
  ugc_error error;
  CHECK(ugc_verify(m, &error) == 0);

  /* ugc_reserve: the next allocations fit without reaching the slow path's refill. */
  CHECK(ugc_reserve(m, 1000 * ugc_alloc_size(92)));
  uintptr_t limit = ugc_fast(m)->tlab_limit;
  for (int i = 0; i < 1000; i++)
    REQUIRE(ugc_alloc(m, bytes_type, 92));
  CHECK(ugc_fast(m)->tlab_limit == limit);

  /* Nothing is rooted: a collection frees everything, the heap is empty again. */
  memset(pinned, 0x77, 100);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  CHECK_EQ_U64(stats.heap_used_bytes, 0);
  CHECK_EQ_U64(stats.large_used_bytes, 0);
  CHECK_EQ_U64(stats.nonmoving_used_bytes, 0);
  CHECK(stats.cycles == 1);
  /* A reused non-moving cell is zeroed. */
  char *again = ugc_alloc_pinned(m, bytes_type, 100);
  REQUIRE(again);
  CHECK(all_zero(again, 100));
  /* Fresh moving memory after compaction is zeroed too. */
  for (int i = 0; i < 2000; i++) {
    char *p = ugc_alloc(m, bytes_type, 64);
    REQUIRE(p);
    CHECK(all_zero(p, 64));
  }
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
