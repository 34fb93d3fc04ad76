/* The copy backend's memory kept for allocation (backend/retain.h): which from-space range
 * a compaction keeps for the next cycle, the pool allocation takes from while a compaction
 * runs, the kept chunks carried into it before the pause, and the allocation hook that
 * moves them in. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "backend/copy.h"
#include "backend/retain.h"
#include "runtime/heap.h"

/* Which heap range the next cycle allocates into and this compaction keeps from-space for:
 * from the new top, rounded up to a huge page, to the sizing target plus what mutators
 * allocate past the next cycle's trigger (ugc_heap_next_extent), within the old heap. Empty without
 * UFFDIO_MOVE, or when the whole heap is registered for the compaction. The move backend
 * recycles from-space pages only below the kept range (move.c, recycle_limit), so that a
 * page is never both a build target and kept. */
void ugc_copy_choose_kept_range(ugc_copy_backend *backend, const ugc_compact_plan *plan) {
  backend->keep_low = backend->keep_high = 0;
  if (!(backend->uffd.features & UFFD_FEATURE_MOVE) ||
      backend->registered_bytes == backend->space_bytes)
    return;
  ugc_heap *heap = backend->heap;
  uintptr_t low = (plan->new_top + UGC_RETAIN_CHUNK - 1) & ~(UGC_RETAIN_CHUNK - 1);
  uintptr_t target =
      backend->space_base + ugc_heap_next_extent(heap, plan->new_top - plan->space_base);
  uintptr_t high = (target + UGC_PAGE_SIZE - 1) & ~(uintptr_t)(UGC_PAGE_SIZE - 1);
  uintptr_t old_end = (plan->old_top + UGC_PAGE_SIZE - 1) & ~(uintptr_t)(UGC_PAGE_SIZE - 1);
  if (high > old_end)
    high = old_end;
  if (low < high) {
    backend->keep_low = low;
    backend->keep_high = high;
  }
}

/* Allocation during the compaction takes from-space the GC threads drained (retain.h),
 * with UFFDIO_MOVE, above the new top and below the last huge page of the heap (the hand-off's
 * touch). GC threads drain in steps of UGC_CONCURRENT_RELEASE_CHUNK (8 MiB); the pool holds two
 * steps, so that allocation finds memory between them, and releases older chunks beyond: drained
 * memory allocation does not take goes back early, as without the pool. The move backend
 * builds into drained pages itself (its release_from replaces copy_release_from, so nothing
 * drains into this pool): it opens with the tail alone, which lies above the old top, out
 * of the move backend's reach. */
#define DRAINED_POOL_BYTES (2 * UGC_CONCURRENT_RELEASE_CHUNK)
void ugc_copy_open_drained_pool(ugc_copy_backend *backend, const ugc_compact_plan *plan,
                                uintptr_t tail_low, uintptr_t tail_high) {
  if (!(backend->uffd.features & UFFD_FEATURE_MOVE) ||
      backend->registered_bytes == backend->space_bytes)
    return;
  uintptr_t heap_limit = backend->space_base + backend->space_bytes - UGC_HUGE_PAGE_SIZE;
  if (tail_high > heap_limit)
    tail_high = heap_limit;
  intptr_t from_delta = (intptr_t)(backend->from_base - backend->space_base);
  ugc_drained_open(&backend->drained, backend->from_base, plan->new_top, heap_limit,
                   DRAINED_POOL_BYTES, tail_low + (uintptr_t)from_delta,
                   (tail_high > tail_low ? tail_high : tail_low) + (uintptr_t)from_delta);
}

/* Kept chunks the last cycle's allocation did not reach would go with from-space below;
 * up to what mutators allocate while a cycle runs (the sizing headroom, at least the pool's
 * size) moves into the heap above the top instead, as allocation reaching it would have,
 * a few chunks per hold of the heap lock. The hand-off then carries it into from-space
 * above the old top, where no build reads: the pool's tail, which allocation during the
 * compaction takes from its first moment, before GC threads have drained anything. */
#define CARRY_STEP_CHUNKS 4
void ugc_copy_carry_kept_chunks(ugc_copy_backend *backend) {
  ugc_heap *heap = backend->heap;
  if (backend->owner_pid != getpid() || !ugc_retained_pending(&backend->retained))
    return;
  size_t budget = ugc_sizing_headroom(heap);
  if (budget < DRAINED_POOL_BYTES)
    budget = DRAINED_POOL_BYTES;
  uintptr_t limit = 0;
  for (;;) {
    ugc_retain_counts counts = {0};
    pthread_mutex_lock(&heap->lock);
    uintptr_t top = heap->moving.top;
    uintptr_t next = atomic_load_explicit(&backend->retained.next, memory_order_relaxed);
    if (!limit)
      limit = ((top + UGC_RETAIN_CHUNK - 1) & ~(UGC_RETAIN_CHUNK - 1)) + budget;
    if (!next || next >= limit) {
      pthread_mutex_unlock(&heap->lock);
      return;
    }
    uintptr_t end = next + CARRY_STEP_CHUNKS * UGC_RETAIN_CHUNK;
    ugc_retained_take(&backend->retained, &backend->uffd, top, end < limit ? end : limit,
                      &heap->moving.recycled_low, &heap->moving.recycled_high, &counts);
    pthread_mutex_unlock(&heap->lock);
    ugc_stats_lock(heap); /* reused when allocation takes them (prepare_alloc, the pool) */
    heap->stats.compaction.move_ioctls += counts.move_calls;
    heap->stats.compaction.madvise_calls += counts.release_calls;
    ugc_stats_unlock(heap);
  }
}

/* Allocation reaches [start, end): the drained or kept chunks it needs move in
 * (backend/retain.h).
 * Heap lock held. */
void ugc_copy_prepare_alloc(ugc_heap *heap, uintptr_t start, uintptr_t end) {
  ugc_copy_backend *backend = heap->backend_data;
  if (backend->keep_low < backend->keep_high) /* set in the pause, under the heap lock */
    atomic_store_explicit(&backend->alloc_frontier, end, memory_order_relaxed);
  bool compacting = atomic_load_explicit(&backend->compacting, memory_order_acquire);
  if (!compacting && !ugc_retained_pending(&backend->retained))
    return;
  if (backend->owner_pid != getpid()) { /* the parent's descriptor: never act through it */
    ugc_retained_drop(&backend->retained, false);
    return;
  }
  ugc_retain_counts counts = {0};
  if (compacting) /* the pool is open from the hand-off to complete_compaction */
    ugc_drained_take(&backend->drained, &backend->uffd, start, end, &heap->moving.recycled_low,
                     &heap->moving.recycled_high, &counts);
  ugc_retained_take(&backend->retained, &backend->uffd, start, end, &heap->moving.recycled_low,
                    &heap->moving.recycled_high, &counts);
  ugc_compaction_stats *s = &heap->stats.compaction;
  ugc_stats_lock(heap);
  s->pages_retained_reused += counts.moved_bytes / UGC_PAGE_SIZE;
  s->move_ioctls += counts.move_calls;
  s->madvise_calls += counts.release_calls;
  ugc_stats_unlock(heap);
}
