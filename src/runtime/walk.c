/* Walking every object of the heap, and the public ugc_heap_walk. */
#include "backend/backend.h"
#include "runtime/heap.h"
#include "runtime/verify.h"

typedef struct cell_walk {
  ugc_object_fn fn;
  void *data;
  bool stopped;
} cell_walk;

static bool walk_cell(uintptr_t hdr, void *raw) {
  cell_walk *walk = raw;
  if (!walk->fn(hdr, walk->data)) {
    walk->stopped = true;
    return false;
  }
  return true;
}

bool ugc_walk_objects_locked(ugc_heap *heap, ugc_object_fn fn, void *data) {
  uintptr_t at = heap->moving.base, top = heap->moving.top;
  uint32_t type_count = ugc_type_count(&heap->types);
  while (at < top) {
    uint64_t header = ugc_header_load(at);
    size_t total = ugc_header_total(header);
    if (ugc_header_type(header) >= type_count || total > top - at)
      return false;
    if (ugc_header_type(header) != UGC_FILLER_TYPE && !fn(at, data))
      return true;
    at += total;
  }
  cell_walk walk = {fn, data, false};
  ugc_nonmoving_for_each(&heap->nonmoving, walk_cell, &walk);
  if (walk.stopped)
    return true;
  for (size_t i = 0; i < heap->large.count; i++)
    if (!fn(heap->large.objects[i].hdr, data))
      return true;
  return true;
}

typedef struct public_walk {
  ugc_walk_fn fn;
  void *data;
} public_walk;

static bool walk_public(uintptr_t hdr, void *raw) {
  public_walk *walk = raw;
  uint64_t header = ugc_header_load(hdr);
  return walk->fn((void *)(hdr + UGC_HEADER_BYTES), ugc_header_type(header),
                  ugc_header_payload(header), walk->data);
}

void ugc_heap_walk(ugc_mutator *mutator, ugc_walk_fn fn, void *data) {
  ugc_check_attached(mutator, "ugc_heap_walk");
  if (mutator->in_walk)
    ugc_misuse("ugc_heap_walk", "called inside a ugc_heap_walk callback");
  ugc_heap *heap = mutator->heap;
  ugc_world_stop(heap, mutator, false);
  pthread_mutex_lock(&heap->lock);
  heap->backend->compact_wait(heap);
  ugc_tlabs_retire_all(heap);
  public_walk walk = {fn, data};
  /* The TLAB is retired: an allocation from fn reaches the slow path, which refuses it. */
  mutator->in_walk = true;
  ugc_walk_objects_locked(heap, walk_public, &walk);
  mutator->in_walk = false;
  pthread_mutex_unlock(&heap->lock);
  ugc_world_resume(heap, mutator, false);
}
