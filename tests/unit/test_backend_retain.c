/* Retention of moving-space memory between cycles (backend/retain.h), on the copy backend
 * or, with UFFDGC_BACKEND=move (tests/matrix.cmake), the move backend, whose recycled build
 * targets stay below the kept range:
 *   - after a compaction, allocation reuses the drained from-space pages (moved back with
 *     UFFDIO_MOVE: stats.compaction.pages_retained_reused grows) and every object it hands out of
 *     them still starts zeroed, small (TLAB) and medium alike; the heap verifies;
 *   - what is kept never exceeds the next cycle's extent: after a collection that shrinks
 *     the heap, from-space holds at most (extent - new top) resident bytes, not the old heap;
 *   - allocation while a large compaction runs (memory from the drained pool and its tail)
 *     hands out zeroed objects, and the live objects the compaction moved keep their
 *     contents. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fixture.h"
#include "runtime/heap.h"
#include "uffd/uffd.h"

#define MiB ((size_t)1 << 20)

static bool all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return false;
  return true;
}

/* Resident bytes of [addr, addr+len) (mincore). */
static size_t resident_bytes(uintptr_t addr, size_t len) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = len / page, resident = 0;
  unsigned char *vec = malloc(pages);
  REQUIRE(vec);
  REQUIRE(mincore((void *)addr, len, vec) == 0);
  for (size_t i = 0; i < pages; i++)
    resident += vec[i] & 1;
  free(vec);
  return resident * page;
}

static uint64_t recycled_pages(ugc_heap *heap) {
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  return stats.compaction.pages_retained_reused;
}

/* Fills about `bytes` of the heap with garbage objects whose payloads are all 0xa5. */
static void fill_garbage(ugc_mutator *m, ugc_type_id type, size_t bytes) {
  for (size_t done = 0; done < bytes; done += 1008) {
    unsigned char *p = ugc_alloc(m, type, 1000);
    REQUIRE(p);
    memset(p, 0xa5, 1000);
  }
}

/* Fills `live` (a rooted reference array) with `count` 1000-byte objects of 0xa5, as much
 * garbage after each. */
static void fill_live(ugc_mutator *m, ugc_type_id bytes_type, void **live, size_t count) {
  for (size_t i = 0; i < count; i++) {
    unsigned char *p = ugc_alloc(m, bytes_type, 1000);
    REQUIRE(p);
    memset(p, 0xa5, 1000);
    ugc_write(m, live, &live[i], p);
    fill_garbage(m, bytes_type, 1000);
  }
}

/* "copy", or the backend UFFDGC_BACKEND names. */
static const char *backend_name(void) {
  const char *name = getenv("UFFDGC_BACKEND");
  return name && *name ? name : "copy";
}

static ugc_heap *copy_heap(size_t heap_max, size_t heap_initial) {
  ugc_config config = fixture_config(heap_max, heap_initial);
  config.backend = backend_name();
  config.concurrent_mark = 1;
  return fixture_heap(&config);
}

/* A copy heap with a rooted array `live` of `live_bytes / 1008` 1000-byte objects (garbage
 * between them), in a scope the caller closes. `live` is rooted in place: keep `s` where it
 * is while the scope is open. */
typedef struct live_heap {
  ugc_heap *heap;
  ugc_mutator *m;
  ugc_type_id bytes_type;
  void **live;
  size_t count;
  ugc_scope scope;
} live_heap;

static void live_heap_open(live_heap *s, size_t heap_max, size_t initial, size_t live_bytes) {
  s->heap = copy_heap(heap_max, initial);
  s->bytes_type = fixture_leaf_type(s->heap, "bytes");
  ugc_type_id array_type = fixture_type(s->heap, "array", UGC_LAYOUT_REF_ARRAY, 0, NULL, 0);
  s->m = fixture_attach(s->heap);
  s->count = live_bytes / 1008;
  s->live = ugc_alloc(s->m, array_type, s->count * sizeof(void *));
  REQUIRE(s->live);
  s->scope = ugc_scope_open(s->m);
  ugc_root(s->m, &s->live);
  fill_live(s->m, s->bytes_type, s->live, s->count);
}

static void reuse_starts_zeroed(void) {
  ugc_heap *heap = copy_heap(256 * MiB, 64 * MiB);
  ugc_type_id bytes_type = fixture_leaf_type(heap, "bytes");
  ugc_mutator *m = fixture_attach(heap);
  fill_garbage(m, bytes_type, 48 * MiB);
  ugc_collect(m, UGC_COLLECT_FULL); /* nothing is live: the old heap is all garbage */
  ugc_collect(m, UGC_COLLECT_FINISH);
  uint64_t before = recycled_pages(heap);

  /* 40 MiB, small objects and medium ones (which bypass the TLAB), over the kept range. */
  size_t dirty = 0, objects = 0;
  for (size_t done = 0; done < 40 * MiB; objects++) {
    size_t n = objects % 16 == 15 ? 12000 + objects % 5000 : 8 + objects % 700;
    unsigned char *p = ugc_alloc(m, bytes_type, n);
    REQUIRE(p);
    dirty += !all_zero(p, n);
    memset(p, 0x5a, n);
    done += n + 8;
  }
  CHECK_EQ_U64(dirty, 0);
  uint64_t recycled = recycled_pages(heap) - before;
  printf("recycled %llu pages for 40 MiB allocated (%zu objects)\n", (unsigned long long)recycled,
         objects);
  CHECK(recycled >= (32 * MiB) / 4096); /* the kept range starts at the next 2 MiB */
  ugc_error error;
  CHECK(ugc_verify(m, &error) == 0);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
}

static void kept_within_target(void) {
  /* A live set that grows the trigger to about 2 x 64 MiB, garbage between its objects. */
  live_heap s;
  live_heap_open(&s, 512 * MiB, 16 * MiB, 64 * MiB);
  ugc_heap *heap = s.heap;
  ugc_mutator *m = s.m;
  ugc_type_id bytes_type = s.bytes_type;
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_collect(m, UGC_COLLECT_FINISH);
  /* Drop the live set: the next collection shrinks the sizing target to heap_initial. */
  ugc_scope_close(m, s.scope);
  s.live = NULL;
  fill_garbage(m, bytes_type, 8 * MiB);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_collect(m, UGC_COLLECT_FINISH);
  size_t target = heap->trigger_bytes, new_top = heap->moving.top - heap->moving.base;
  size_t extent = ugc_heap_next_extent(heap, new_top);
  size_t kept = resident_bytes(heap->moving.from_base, heap->moving.reserved_bytes);
  printf("after the shrink: target %zu MiB, extent %zu MiB, top %zu MiB, from-space resident "
         "%zu MiB\n",
         target / MiB, extent / MiB, new_top / MiB, kept / MiB);
  CHECK(target < 64 * MiB);
  CHECK(extent < 128 * MiB);
  CHECK(kept <= extent - new_top + 2 * MiB);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
}

/* 96 MiB live (1000-byte objects of 0xa5 with as much garbage between them) in a heap of
 * 200 MiB: the compaction slides every live object. Right after its pause, 240 MiB more are
 * allocated, over twice the room left: cycles run meanwhile, and allocation may run into
 * heap_max and wait (building pages of a compaction in progress, if it finds one; the
 * waits are printed, test_runtime_trigger makes them happen). */
static void allocation_during_compaction(void) {
  live_heap s;
  live_heap_open(&s, 200 * MiB, 200 * MiB, 96 * MiB);
  ugc_heap *heap = s.heap;
  ugc_mutator *m = s.m;
  ugc_type_id bytes_type = s.bytes_type;
  ugc_stats before;
  ugc_stats_get(heap, &before);
  ugc_collect(m, UGC_COLLECT_FULL); /* returns after the compaction pause */
  size_t dirty = 0, objects = 0;
  for (size_t done = 0; done < 240 * MiB; objects++) {
    size_t n = objects % 16 == 15 ? 12000 + objects % 5000 : 8 + objects % 700;
    unsigned char *p = ugc_alloc(m, bytes_type, n);
    REQUIRE(p);
    dirty += !all_zero(p, n);
    memset(p, 0x5a, n);
    done += n + 8;
  }
  ugc_collect(m, UGC_COLLECT_FINISH);
  ugc_stats after;
  ugc_stats_get(heap, &after);
  printf("during the compaction: %zu objects, %llu from-space pages reused, %llu allocations "
         "waited %.1f ms (%.1f ms of it building pages)\n",
         objects,
         (unsigned long long)(after.compaction.pages_retained_reused -
                              before.compaction.pages_retained_reused),
         (unsigned long long)(after.alloc_waits - before.alloc_waits),
         (after.alloc_wait_ns - before.alloc_wait_ns) / 1e6,
         (after.alloc_wait_build_ns - before.alloc_wait_build_ns) / 1e6);
  CHECK_EQ_U64(dirty, 0);
  CHECK(after.alloc_wait_build_ns - before.alloc_wait_build_ns <=
        after.alloc_wait_ns - before.alloc_wait_ns);
  size_t damaged = 0;
  for (size_t i = 0; i < s.count; i++) {
    const unsigned char *p = s.live[i];
    damaged += p[0] != 0xa5 || p[999] != 0xa5 || p[500] != 0xa5;
  }
  CHECK_EQ_U64(damaged, 0);
  ugc_error error;
  CHECK(ugc_verify(m, &error) == 0);
  ugc_scope_close(m, s.scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
}

int main(void) {
  char reason[200];
  const char *backend = backend_name();
  if (!ugc_backend_available(backend, reason, sizeof reason))
    SKIP("%s backend: %s", backend, reason);
  if (!(ugc_uffd_caps_get()->features & UFFD_FEATURE_MOVE))
    SKIP("no UFFDIO_MOVE here: the copy backend releases from-space instead of keeping it");
  printf("backend %s\n", backend);
  reuse_starts_zeroed();
  kept_within_target();
  allocation_during_compaction();
  return ugc_test_failures ? 1 : 0;
}
