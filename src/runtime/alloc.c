/* Allocation slow paths: TLAB refills, medium objects straight from the bump pointer, the
 * non-moving and large-object spaces, the collection trigger and running out of memory. */
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "heap/vm.h"
#include "os/time.h"
#include "runtime/concurrent_mark.h"
#include "runtime/heap.h"

typedef enum alloc_space { SPACE_MOVING, SPACE_NONMOVING, SPACE_LARGE } alloc_space;

/* Objects above this bypass the TLAB (they would waste too much of one). */
#define MEDIUM_BYTES (UGC_TLAB_BYTES / 4)

static size_t occupancy(const ugc_heap *heap) {
  return (heap->moving.top - heap->moving.base) + heap->other_since_gc;
}

/* Every slow-path allocation is checked (the inline path reaches here for every allocation
 * in checking mode, and for none inside a blocking region or a heap walk). */
static void check_request(ugc_mutator *mutator, ugc_type_id type, size_t bytes, const char *call) {
  ugc_check_attached(mutator, call);
  if (!pthread_equal(mutator->thread, pthread_self()))
    ugc_misuse(call, "the mutator belongs to another thread (each thread attaches its own)");
  if (mutator->state == UGC_MUTATOR_BLOCKING)
    ugc_misuse(call, "allocation inside a blocking region (between ugc_blocking_enter and "
                     "ugc_blocking_leave the thread must not touch the heap)");
  if (mutator->in_walk)
    ugc_misuse(call, "allocation inside a ugc_heap_walk callback (the world is stopped and the "
                     "heap locked for the walk)");
  const ugc_type_table *types = &mutator->heap->types;
  if (type == UGC_FILLER_TYPE || type >= ugc_type_count(types))
    ugc_misuse(call, "unregistered type id");
  if (bytes >= ((size_t)1 << 32))
    ugc_misuse(call, "size overflow: the payload must be below 4 GiB");
  const ugc_type_info *info = ugc_type_get(types, type);
  if ((info->layout == UGC_LAYOUT_FIXED || info->layout == UGC_LAYOUT_REF_ARRAY) &&
      bytes < info->fixed_size) {
    char reason[160];
    snprintf(reason, sizeof reason, "%zu bytes for type \"%s\", whose fixed part is %zu bytes",
             bytes, info->name, info->fixed_size);
    ugc_misuse(call, reason);
  }
}

/* heap_max bounds the whole heap: the moving space in use, the non-moving cells and the
 * large objects' mappings. Heap lock held. */
static bool within_heap_max(const ugc_heap *heap, size_t bytes) {
  size_t used =
      (heap->moving.top - heap->moving.base) + heap->nonmoving.used_bytes + heap->large.used_bytes;
  return used <= heap->config.heap_max && bytes <= heap->config.heap_max - used;
}

/* Bytes of a new allocation that hold recycled memory (ugc_moving_space.recycled_low): the
 * allocating thread zeroes them after dropping the heap lock, before anything else can see
 * them (it reaches no safepoint before). */
typedef struct zero_span {
  uintptr_t low, high;
} zero_span;

static void zero_recycled(const zero_span *zero) {
  if (zero->low < zero->high)
    memset((void *)zero->low, 0, zero->high - zero->low);
}

/* Bumps the moving space; the backend may map memory it kept into what it hands out.
 * Heap lock held. */
static uintptr_t bump_moving(ugc_heap *heap, size_t bytes, zero_span *zero) {
  ugc_moving_space *space = &heap->moving;
  uintptr_t start = ugc_moving_space_bump(space, bytes);
  if (!start)
    return 0;
  if (heap->backend->prepare_alloc)
    heap->backend->prepare_alloc(heap, start, start + bytes);
  ugc_moving_space_recycled_part(space, start, start + bytes, &zero->low, &zero->high);
  return start;
}

/* Starts a new TLAB of at least `min_bytes`. Heap lock held. */
static bool refill_tlab_locked(ugc_heap *heap, ugc_mutator *mutator, size_t min_bytes,
                               zero_span *zero) {
  size_t bytes = min_bytes > UGC_TLAB_BYTES ? ugc_round_up(min_bytes, 8) : UGC_TLAB_BYTES;
  ugc_tlab_retire(mutator);
  uintptr_t start = within_heap_max(heap, bytes) ? bump_moving(heap, bytes, zero) : 0;
  if (!start && bytes > min_bytes) { /* near the limit: a smaller TLAB still serves */
    bytes = ugc_round_up(min_bytes, 8);
    start = within_heap_max(heap, bytes) ? bump_moving(heap, bytes, zero) : 0;
  }
  if (!start)
    return false;
  mutator->tlab_start = start;
  mutator->fast.tlab_cursor = start;
  mutator->fast.tlab_limit = start + bytes;
  return true;
}

/* One attempt; returns the header address or 0. Past the trigger it fails unless
 * `past_trigger` (after a collection, the hard limits alone decide). Heap lock held. */
static uintptr_t try_alloc_locked(ugc_heap *heap, ugc_mutator *mutator, alloc_space space,
                                  size_t total, bool past_trigger, zero_span *zero) {
  if (!past_trigger && occupancy(heap) + total > heap->trigger_bytes) {
    if (!heap->cmark)
      return 0;
    /* Concurrent marking: start a cycle and keep allocating up to the hard limit while it
     * runs (objects allocated meanwhile are live: allocate black, below). */
    if (!heap->allocate_black)
      ugc_cmark_start(heap);
  }
  uintptr_t hdr = 0;
  switch (space) {
  case SPACE_MOVING:
    if (total > MEDIUM_BYTES) {
      hdr = within_heap_max(heap, total) ? bump_moving(heap, total, zero) : 0;
      if (hdr)
        heap->stats.allocated_bytes += total;
      if (hdr && heap->allocate_black) /* no TLAB to mark later: its bits now */
        ugc_cmark_medium_allocated(heap, hdr, total);
    } else if (refill_tlab_locked(heap, mutator, total, zero)) {
      hdr = mutator->fast.tlab_cursor;
      mutator->fast.tlab_cursor += total;
    }
    break;
  case SPACE_NONMOVING: {
    hdr = within_heap_max(heap, total) ? ugc_nonmoving_alloc(&heap->nonmoving, total) : 0;
    if (hdr && heap->allocate_black_other) {
      ugc_nonmoving_mark(&heap->nonmoving, hdr);
      heap->stats.mark_black_bytes += total;
    }
    if (hdr) {
      heap->other_since_gc += total;
      heap->stats.allocated_bytes += total;
    }
    break;
  }
  case SPACE_LARGE:
    hdr =
        within_heap_max(heap, ugc_round_up(total, 4096)) ? ugc_large_alloc(&heap->large, total) : 0;
    if (hdr && heap->allocate_black_other) {
      atomic_store_explicit(&ugc_large_find(&heap->large, hdr)->marked, 1, memory_order_relaxed);
      heap->stats.mark_black_bytes += total;
    }
    if (hdr) {
      heap->other_since_gc += total;
      heap->stats.allocated_bytes += total;
    }
    break;
  }
  return hdr;
}

/* Records why the last attempt failed, for ugc_last_alloc_failure. */
static void record_failure(ugc_mutator *mutator, alloc_space space, size_t bytes, size_t total) {
  ugc_heap *heap = mutator->heap;
  static const ugc_space public_space[] = {UGC_SPACE_MOVING, UGC_SPACE_NONMOVING, UGC_SPACE_LARGE};
  pthread_mutex_lock(&heap->lock);
  size_t used =
      (heap->moving.top - heap->moving.base) + heap->nonmoving.used_bytes + heap->large.used_bytes;
  size_t space_used = space == SPACE_MOVING      ? heap->moving.top - heap->moving.base
                      : space == SPACE_NONMOVING ? heap->nonmoving.used_bytes
                                                 : heap->large.used_bytes;
  bool over_max = total > heap->config.heap_max;
  bool heap_max =
      !over_max && !within_heap_max(heap, space == SPACE_LARGE ? ugc_round_up(total, 4096) : total);
  mutator->last_failure = (ugc_alloc_failure){
      .space = public_space[space],
      .requested_bytes = bytes,
      .heap_max_reached = heap_max,
      .space_limit_reached = !over_max && !heap_max,
      .heap_used_bytes = used,
      .space_used_bytes = space_used,
  };
  pthread_mutex_unlock(&heap->lock);
}

void ugc_last_alloc_failure(ugc_mutator *mutator, ugc_alloc_failure *failure) {
  ugc_check_attached(mutator, "ugc_last_alloc_failure");
  *failure = mutator->last_failure;
}

/* A failed attempt: collect. With concurrent marking an attempt fails only at heap_max (past
 * the trigger allocation goes on while the cycle runs), so this is a mutator that ran out of
 * heap and waits for the cycle: counted, as it means the trigger came too late. Memory
 * comes back only at the next compaction pause, and no cycle starts before the compaction
 * in progress (if any) is complete: the thread first builds pages of it (backend.h,
 * compact_assist), which shortens the wait instead of leaving its CPU idle. */
static void collect_for_room(ugc_heap *heap, ugc_mutator *mutator, bool skip_if_collected) {
  bool concurrent = heap->cmark != NULL;
  uint64_t start = concurrent ? ugc_now_ns() : 0;
  bool marking = mutator->fast.marking; /* set and cleared in pauses: stable here */
  if (concurrent) {
    pthread_mutex_lock(&heap->lock);
    ugc_sizing_ran_full(heap);
    pthread_mutex_unlock(&heap->lock);
  }
  uint64_t build_start = ugc_now_ns();
  uint64_t build_ns = ugc_collect_assist_compaction(heap) ? ugc_now_ns() - build_start : 0;
  ugc_collect_now(heap, mutator, skip_if_collected);
  if (concurrent) {
    uint64_t waited = ugc_now_ns() - start;
    pthread_mutex_lock(&heap->lock);
    heap->stats.alloc_waits++;
    heap->stats.alloc_waits_marking += marking;
    heap->stats.alloc_wait_ns += waited;
    heap->stats.alloc_wait_build_ns += build_ns;
    pthread_mutex_unlock(&heap->lock);
  }
}

static void *alloc_in(ugc_mutator *mutator, ugc_type_id type, size_t bytes, alloc_space space) {
  ugc_heap *heap = mutator->heap;
  size_t total = ugc_alloc_size(bytes);
  /* Paid before the allocation, as a TLAB's worth for a small object: the room this
   * thread takes from the heap while marking runs. */
  bool in_tlab = space == SPACE_MOVING && total <= MEDIUM_BYTES;
  ugc_assist_alloc(mutator, in_tlab && total < UGC_TLAB_BYTES ? UGC_TLAB_BYTES : total);
  /* The TLAB this refill replaces: marked now, while its objects are in this thread's
   * cache (allocate_black changes only in pauses, while this thread is parked). */
  if (in_tlab && heap->allocate_black)
    ugc_cmark_mark_own_tlab(mutator);
  /* Attempt 0 respects the trigger; a collection (skipped if another thread's just ran);
   * attempt 1 may use the whole heap; one last full collection; attempt 2; then OOM. */
  for (int attempt = 0; attempt < 3; attempt++) {
    zero_span zero = {0, 0};
    pthread_mutex_lock(&heap->lock);
    uintptr_t hdr = try_alloc_locked(heap, mutator, space, total, attempt > 0, &zero);
    pthread_mutex_unlock(&heap->lock);
    zero_recycled(&zero);
    if (hdr) {
      *(uint64_t *)hdr = ugc_header_make(type, bytes);
      return (void *)(hdr + UGC_HEADER_BYTES);
    }
    if (attempt < 2)
      collect_for_room(heap, mutator, attempt == 0);
  }
  record_failure(mutator, space, bytes, total);
  ugc_alloc_failed(heap, bytes);
  return NULL;
}

static void *take_from_tlab(ugc_mutator *mutator, ugc_type_id type, size_t bytes) {
  uintptr_t hdr = mutator->fast.tlab_cursor;
  mutator->fast.tlab_cursor += ugc_alloc_size(bytes);
  *(uint64_t *)hdr = ugc_header_make(type, bytes);
  return (void *)(hdr + UGC_HEADER_BYTES);
}

/* A large object inside a reserved sequence: it gets its own mapping as always, but its
 * room comes out of the reservation (the end of the TLAB becomes a filler), so neither a
 * trigger check nor a collection is needed. If the mapping fails, the reserved room itself
 * holds it (it then lives in the moving space). */
static void *reserved_large(ugc_mutator *mutator, ugc_type_id type, size_t bytes) {
  ugc_heap *heap = mutator->heap;
  ugc_mutator_fast *fast = &mutator->fast;
  size_t total = ugc_alloc_size(bytes);
  pthread_mutex_lock(&heap->lock);
  uintptr_t hdr = ugc_large_alloc(&heap->large, total);
  if (hdr && heap->allocate_black_other) /* allocate black, as in try_alloc_locked */
    atomic_store_explicit(&ugc_large_find(&heap->large, hdr)->marked, 1, memory_order_relaxed);
  if (hdr) {
    fast->tlab_limit -= total;
    *(uint64_t *)fast->tlab_limit = ugc_filler_header(total);
    heap->stats.allocated_bytes += total;
  }
  pthread_mutex_unlock(&heap->lock);
  if (!hdr)
    return take_from_tlab(mutator, type, bytes);
  *(uint64_t *)hdr = ugc_header_make(type, bytes);
  return (void *)(hdr + UGC_HEADER_BYTES);
}

void *ugc_alloc_slow(ugc_mutator *mutator, ugc_type_id type, size_t bytes) {
  check_request(mutator, type, bytes, "ugc_alloc");
  ugc_heap *heap = mutator->heap;
  ugc_mutator_fast *fast = &mutator->fast;
  size_t total = ugc_alloc_size(bytes);
  if (mutator->reserved) {
    /* Inside a reserved sequence: no safepoint, no collection, whatever the size. */
    if (total <= fast->tlab_limit - fast->tlab_cursor)
      return bytes >= heap->config.large_threshold ? reserved_large(mutator, type, bytes)
                                                   : take_from_tlab(mutator, type, bytes);
    mutator->reserved = false; /* past the reservation: an ordinary allocation */
  }
  ugc_safepoint(mutator);
  if (bytes >= heap->config.large_threshold)
    return alloc_in(mutator, type, bytes, SPACE_LARGE);
  /* What is left of the TLAB may still fit it. */
  if (total <= fast->tlab_limit - fast->tlab_cursor)
    return take_from_tlab(mutator, type, bytes);
  return alloc_in(mutator, type, bytes, SPACE_MOVING);
}

void *ugc_alloc_pinned(ugc_mutator *mutator, ugc_type_id type, size_t bytes) {
  check_request(mutator, type, bytes, "ugc_alloc_pinned");
  ugc_safepoint(mutator);
  ugc_heap *heap = mutator->heap;
  bool large = bytes >= heap->config.large_threshold;
  void *payload = alloc_in(mutator, type, bytes, large ? SPACE_LARGE : SPACE_NONMOVING);
  if (payload && large) { /* kept out of updates that could fail its system calls */
    pthread_mutex_lock(&heap->lock);
    ugc_large_object *object = ugc_large_find(&heap->large, (uintptr_t)payload - UGC_HEADER_BYTES);
    if (object)
      object->allocated_pinned = true;
    pthread_mutex_unlock(&heap->lock);
  }
  return payload;
}

bool ugc_reserve(ugc_mutator *mutator, size_t bytes) {
  ugc_check_attached(mutator, "ugc_reserve");
  ugc_safepoint(mutator);
  ugc_mutator_fast *fast = &mutator->fast;
  if (bytes <= fast->tlab_limit - fast->tlab_cursor)
    return mutator->reserved = true;
  ugc_heap *heap = mutator->heap;
  if (bytes > heap->config.heap_max) {
    record_failure(mutator, SPACE_MOVING, bytes, bytes);
    return false;
  }
  ugc_assist_alloc(mutator, bytes > UGC_TLAB_BYTES ? bytes : UGC_TLAB_BYTES);
  if (heap->allocate_black) /* as in alloc_in */
    ugc_cmark_mark_own_tlab(mutator);
  for (int attempt = 0; attempt < 3; attempt++) {
    zero_span zero = {0, 0};
    pthread_mutex_lock(&heap->lock);
    bool ok = (attempt > 0 || occupancy(heap) + bytes <= heap->trigger_bytes) &&
              refill_tlab_locked(heap, mutator, bytes, &zero);
    pthread_mutex_unlock(&heap->lock);
    zero_recycled(&zero);
    if (ok)
      return mutator->reserved = true;
    if (attempt < 2)
      ugc_collect_now(heap, mutator, attempt == 0);
  }
  record_failure(mutator, SPACE_MOVING, bytes, bytes);
  ugc_alloc_failed(heap, bytes);
  return false;
}
