/* Stop-the-world marking with explicit mark stacks (no recursion), parallel when there is
 * enough work to share.
 *
 * The collecting thread starts alone: it marks the roots and traces. Helpers are woken only
 * once its stack holds enough to share (or it has traced for a while with something left
 * to give): on a VM a wake-up costs 15-35 us, more than a small heap takes to mark. From
 * then on a busy marker gives part of its stack to the pool (mark_pool.h) whenever another
 * one is idle, taken from the bottom of the stack: with depth-first tracing the oldest
 * entries are the roots of the largest untraced subgraphs, the top ones mostly leaves.
 *
 * Hot path (no verify mode): a moving-space reference is recognised by range and alignment
 * alone and goes into a small prefetch queue (prefetch_queue.h) while its bitmap words and
 * header are fetched. When it leaves the queue the mark bit -- the object-start bit of its
 * header word -- is tested, then set; only the thread that set it reads the header (for the
 * size: every word of a live object gets its live-words bit, the plan needs them). A header
 * that makes no sense then (filler, unknown type, past the top) is a bad reference: the
 * start bit is cleared again (no live-words bit was set) and the value ignored.
 * In verify mode every value is classified first with the full check (ugc_heap_lookup) and
 * bad references are reported with their slot, as the verifier does.
 *
 * Non-moving cells and large objects have their own mark bits. Whoever sets an object's
 * mark bit pushes it and traces it once. */
#include "mark/mark.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mark/marker.h"
#include "os/log.h"
#include "os/time.h"
#include "runtime/heap.h"

/* The collecting thread wakes the helpers once its stack holds this many entries... */
#define SHARE_STACK_ENTRIES 64u
/* ...or once it has traced this many objects (~0.1-0.2 ms) alone with some left to give:
 * a deep, narrow graph never grows a big stack but may still be worth sharing. */
#define SHARE_AFTER_OBJECTS 8192u
/* How often (in traced objects) a marker looks whether it should give work away. */
#define SHARE_CHECK_OBJECTS 32u
/* At most this many entries are given at once (the rest stays local). */
#define GIVE_MAX_ENTRIES (16u * UGC_MARK_CHUNK_ENTRIES)
/* How far ahead of the top of the stack objects are prefetched. */
#define POP_PREFETCH_DISTANCE 8u
/* An idle marker spins this long for work before it sleeps. */
#define IDLE_SPIN_NS 20000u
/* A concurrent drain keeps at least this many chunks in the pool for assists when it can. */
#define ASSIST_STOCK_CHUNKS 4u
/* The scan work a piece of a reference array counts for (its slots' bytes). */
#define PIECE_WORK_BYTES (2048u * 8u)

static void ref_list_push(ref_list *list, uintptr_t ref) {
  if (list->count == list->capacity) {
    size_t capacity = list->capacity ? 2 * list->capacity : 256;
    uintptr_t *items = realloc(list->items, capacity * sizeof *items);
    if (!items)
      ugc_fatal("out of memory for %zu weak objects while marking", capacity);
    list->items = items;
    list->capacity = capacity;
  }
  list->items[list->count++] = ref;
}

void ugc_mark_push(mark_worker *w, uintptr_t ref) {
  if (w->count == w->capacity && w->bottom > 0 && w->bottom >= w->capacity / 4) {
    /* Space given away at the bottom: reuse it before growing. */
    memmove(w->stack, w->stack + w->bottom, (w->count - w->bottom) * sizeof *w->stack);
    w->count -= w->bottom;
    w->bottom = 0;
  }
  if (w->count == w->capacity) {
    size_t capacity = w->capacity ? 2 * w->capacity : 1024;
    uintptr_t *stack = realloc(w->stack, capacity * sizeof *stack);
    if (!stack)
      ugc_fatal("out of memory growing a mark stack to %zu entries", capacity);
    w->stack = stack;
    w->capacity = capacity;
  }
  w->stack[w->count++] = ref;
}

static void report_bad(mark_worker *w, const void *slot, uintptr_t ref) {
  if (w->from_barrier)
    return;
  w->bad_refs++;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&w->ctx->bad_reported, &expected, 1))
    return;
  if (slot)
    snprintf(w->ctx->first_bad, sizeof w->ctx->first_bad,
             "slot %p holds %#lx: inside the heap but not an object start", slot,
             (unsigned long)ref);
  else
    snprintf(w->ctx->first_bad, sizeof w->ctx->first_bad,
             "a slot holds %#lx: inside the heap but not an object start", (unsigned long)ref);
}

/* ---- the bitmaps (heap/space.h) ---- */

/* Sets the mark (object-start) bit of the word at `index` unless it is set already; true if
 * this call set it. The plain load first avoids a locked read-modify-write (and taking the
 * cache line exclusive) for objects already marked, the common case for shared objects. */
static inline bool claim_bit(_Atomic uint64_t *bitmap, size_t index) {
  uint64_t bit = UINT64_C(1) << (index & 63);
  _Atomic uint64_t *word = &bitmap[index >> 6];
  if (atomic_load_explicit(word, memory_order_relaxed) & bit)
    return false;
  return !(atomic_fetch_or_explicit(word, bit, memory_order_relaxed) & bit);
}

/* ---- marking one reference ---- */

/* A moving-space candidate (in range, aligned): mark it if nobody has. */
void ugc_mark_moving(mark_worker *w, uintptr_t ref) {
  uintptr_t hdr = ref - UGC_HEADER_BYTES;
  size_t first = (hdr - w->base) >> 3;
  if (!claim_bit(w->starts, first))
    return;
  uint64_t header = ugc_header_load(hdr);
  ugc_type_id type = ugc_header_type(header);
  size_t total = ugc_header_total(header);
  if (__builtin_expect(type == UGC_FILLER_TYPE || type >= w->type_count || total > w->top - hdr,
                       0)) {
    /* Not an object start. Give the bit back so that the plan does not see an object. */
    atomic_fetch_and_explicit(&w->starts[first >> 6], ~(UINT64_C(1) << (first & 63)),
                              memory_order_relaxed);
    report_bad(w, NULL, ref);
    return;
  }
  ugc_live_words_set(w->bitmap, first, first + (total >> 3));
  w->moving_bytes += total;
  w->objects++;
  ugc_mark_push(w, ref);
}

/* Any other value: classified with the full check (non-moving cells, large objects, bad
 * values; in verify mode every value comes here). */
static void mark_checked_kind(mark_worker *w, const void *slot, uintptr_t ref, ugc_ref_kind kind);

static void mark_checked(mark_worker *w, const void *slot, uintptr_t ref) {
  mark_context *ctx = w->ctx;
  ugc_heap *heap = ctx->heap;
  if (!ctx->new_objects_black) {
    mark_checked_kind(w, slot, ref, ugc_heap_lookup(heap, ref));
    return;
  }
  if (ref - w->base < heap->moving.reserved_bytes) {
    /* Below the snapshot's top headers never change while marking runs; above it every
     * object is new (black). */
    if (ref - w->base - UGC_HEADER_BYTES >= w->top - w->base)
      return;
    mark_checked_kind(w, slot, ref, ugc_heap_lookup(heap, ref));
    return;
  }
  if (!ctx->concurrent) {
    mark_checked_kind(w, slot, ref, ugc_heap_lookup(heap, ref));
    return;
  }
  /* Allocation changes the non-moving and large-object tables under the heap lock; objects
   * allocated during marking are already marked, so the lock is only held for the lookup
   * and the mark bit. */
  pthread_mutex_lock(&heap->lock);
  mark_checked_kind(w, slot, ref, ugc_heap_lookup(heap, ref));
  pthread_mutex_unlock(&heap->lock);
}

static void mark_checked_kind(mark_worker *w, const void *slot, uintptr_t ref, ugc_ref_kind kind) {
  ugc_heap *heap = w->ctx->heap;
  uintptr_t hdr = ref - UGC_HEADER_BYTES;
  switch (kind) {
  case UGC_REF_NONE:
    return;
  case UGC_REF_BAD:
    report_bad(w, slot, ref);
    return;
  case UGC_REF_MOVING: {
    size_t total = ugc_header_total(ugc_header_load(hdr));
    if (ugc_live_mark(&heap->moving, hdr, total)) {
      w->moving_bytes += total;
      w->objects++;
      ugc_mark_push(w, ref);
    }
    return;
  }
  case UGC_REF_NONMOVING:
    if (ugc_nonmoving_mark(&heap->nonmoving, hdr)) {
      w->nonmoving_bytes += ugc_header_total(ugc_header_load(hdr));
      w->objects++;
      ugc_mark_push(w, ref);
    }
    return;
  case UGC_REF_LARGE: {
    ugc_large_object *object = ugc_large_find(&heap->large, hdr);
    if (!atomic_exchange_explicit(&object->marked, 1, memory_order_relaxed)) {
      w->large_bytes += ugc_header_total(ugc_header_load(hdr));
      w->objects++;
      ugc_mark_push(w, ref);
    }
    return;
  }
  }
}

/* The slot is read with a relaxed atomic load: with concurrent marking a mutator may be
 * storing into it (the barrier recorded what it overwrote). */
static inline void mark_slot(mark_worker *w, uintptr_t *slot, const ugc_tag_rule *rule) {
  uintptr_t ref = ugc_tag_reference(__atomic_load_n(slot, __ATOMIC_RELAXED), rule);
  if (__builtin_expect(ugc_heap_maybe_moving(w->base, w->top, ref), 1)) {
    size_t word = (ref - UGC_HEADER_BYTES - w->base) >> 3;
    __builtin_prefetch((const void *)&w->bitmap[word >> 6], 1);
    __builtin_prefetch((const void *)&w->starts[word >> 6], 1);
    __builtin_prefetch((const void *)(ref - UGC_HEADER_BYTES), 0);
    if (ugc_prefetch_queue_full(&w->queue))
      ugc_mark_moving(w, ugc_prefetch_queue_take(&w->queue));
    ugc_prefetch_queue_put(&w->queue, ref);
    return;
  }
  if (ref)
    mark_checked(w, slot, ref);
}

/* The tracer callback: roots, and the slots of CUSTOM objects. */
static void mark_visit(ugc_tracer *tracer, void *slot, const ugc_tag_rule *rule) {
  mark_slot((mark_worker *)tracer, (uintptr_t *)slot, rule);
}

static void mark_visit_verified(ugc_tracer *tracer, void *slot, const ugc_tag_rule *rule) {
  mark_worker *w = (mark_worker *)tracer;
  uintptr_t ref = ugc_tag_reference(__atomic_load_n((uintptr_t *)slot, __ATOMIC_RELAXED), rule);
  if (ref)
    mark_checked(w, slot, ref);
}

/* ---- tracing ----
 *
 * A stack entry is an object's payload address, or a piece of a large reference array:
 * the array's address with the piece number + 1 in the bits above UGC_PIECE_SHIFT (user
 * addresses are below 2^47). Long arrays are cut into pieces so that several markers can
 * scan one (a 1M-entry table took a whole marker for milliseconds) and so that the
 * share checks, which run between entries, keep running. */
#define UGC_PIECE_SHIFT 48
#define PIECE_SLOTS 2048u /* 16 KiB of references per piece */
#define PIECE_MAX ((1u << (64 - UGC_PIECE_SHIFT)) - 2)

static inline uintptr_t entry_object(uintptr_t entry) {
  return entry & ((UINT64_C(1) << UGC_PIECE_SHIFT) - 1);
}

/* Slots per piece of an array with `slots` element slots (grows for huge arrays so that
 * the piece number fits). */
static inline size_t piece_slots(size_t slots) {
  size_t per = (slots + PIECE_MAX - 1) / PIECE_MAX;
  return per > PIECE_SLOTS ? per : PIECE_SLOTS;
}

static inline void mark_slots(mark_worker *w, uintptr_t *slot, size_t count,
                              const ugc_tag_rule *rule) {
  for (size_t i = 0; i < count; i++)
    mark_slot(w, &slot[i], rule);
}

/* The element slots of a REF_ARRAY object at `ref`: all of them, or the first piece with
 * the other pieces pushed for later (or for other markers). */
static void trace_array_elements(mark_worker *w, const ugc_type_info *type, uintptr_t ref,
                                 uint64_t header) {
  size_t payload_bytes = ugc_header_payload(header);
  if (payload_bytes < type->fixed_size + 8)
    return;
  uintptr_t *elements = (uintptr_t *)(ref + type->fixed_size);
  size_t slots = (payload_bytes - type->fixed_size) / 8;
  size_t per = piece_slots(slots);
  if (slots < 2 * per || (ref >> UGC_PIECE_SHIFT)) {
    mark_slots(w, elements, slots, &type->tags);
    return;
  }
  size_t pieces = (slots + per - 1) / per;
  for (size_t piece = pieces - 1; piece >= 1; piece--)
    ugc_mark_push(w, ref | (uintptr_t)(piece + 1) << UGC_PIECE_SHIFT);
  mark_slots(w, elements, per, &type->tags);
}

static void trace_array_piece(mark_worker *w, const ugc_type_info *type, uintptr_t ref,
                              uint64_t header, size_t piece) {
  size_t slots = (ugc_header_payload(header) - type->fixed_size) / 8;
  size_t per = piece_slots(slots);
  size_t first = piece * per;
  size_t count = slots - first < per ? slots - first : per;
  mark_slots(w, (uintptr_t *)(ref + type->fixed_size) + first, count, &type->tags);
}

/* ---- weak slots and ephemerons ----
 *
 * An object with weak slots is traced through its strong slots only and remembered; once
 * marking is over (ugc_marker_finish) its weak slots whose referents are unmarked get the
 * type's cleared value. An ephemeron's value is traced as soon as its key is known to be
 * live; otherwise the ephemeron waits in a list. Every drain with the world stopped ends
 * with a fixpoint: ephemerons whose keys got marked since have their values marked and
 * traced, until a round marks nothing. The ephemerons left then have unreachable keys and
 * are cleared at the finish. Concurrent drains only add to the lists: the fixpoint needs
 * the full lookups of non-moving and large keys, and it runs in the final pause anyway
 * (docs/design.md, "Weak slots and ephemerons"). */

/* Whether a key is already known to be live, without locks (any mode): a marked or new
 * moving-space object. Anything else waits for the fixpoint. */
static bool key_known_live(const mark_worker *w, uintptr_t key) {
  if (key - w->base >= w->ctx->heap->moving.reserved_bytes)
    return false;
  uintptr_t hdr = key - UGC_HEADER_BYTES;
  if (hdr - w->base >= w->top - w->base)
    return w->ctx->new_objects_black && hdr >= w->top;
  size_t index = (hdr - w->base) >> 3;
  return (atomic_load_explicit(&w->starts[index >> 6], memory_order_relaxed) >> (index & 63)) & 1;
}

static void trace_weak_object(mark_worker *w, const ugc_type_info *type, uintptr_t ref) {
  const uint32_t *offsets = type->ref_offsets;
  if (type->ephemeron) {
    uintptr_t key = ugc_tag_reference(
        __atomic_load_n((uintptr_t *)(ref + offsets[0]), __ATOMIC_RELAXED), &type->tags);
    if (!key || key_known_live(w, key))
      w->tracer.visit(&w->tracer, (void *)(ref + offsets[1]), &type->tags);
    else
      ref_list_push(&w->ephemerons, ref);
    return;
  }
  for (uint32_t i = 0; i < type->strong_count; i++)
    w->tracer.visit(&w->tracer, (void *)(ref + offsets[i]), &type->tags);
  ref_list_push(&w->weak_holders, ref);
}

/* World stopped: whether `ref` (a value that is not 0) is to a live object or no object. */
static bool ref_live(const mark_context *ctx, uintptr_t ref) {
  const ugc_heap *heap = ctx->heap;
  uintptr_t top = ctx->workers[0].top;
  if (ctx->new_objects_black && ref - heap->moving.base < heap->moving.reserved_bytes &&
      ref - UGC_HEADER_BYTES >= top)
    return true; /* allocated during marking; its bits are set after the last drain */
  return ugc_mark_is_live(heap, ref);
}

/* One fixpoint round (world stopped): traces the values of ephemerons whose keys are live
 * now, from worker 0. Whether it marked any. */
static bool resolve_ephemerons(mark_context *ctx) {
  const ugc_type_table *types = &ctx->heap->types;
  mark_worker *first = &ctx->workers[0];
  bool progress = false;
  for (unsigned i = 0; i < ctx->worker_capacity; i++) {
    ref_list *list = &ctx->workers[i].ephemerons;
    size_t kept = 0;
    for (size_t j = 0; j < list->count; j++) {
      uintptr_t ref = list->items[j];
      const ugc_type_info *type =
          ugc_type_get(types, ugc_header_type(ugc_header_load(ref - UGC_HEADER_BYTES)));
      uintptr_t key = ugc_tag_reference(*(uintptr_t *)(ref + type->ref_offsets[0]), &type->tags);
      if (!key || ref_live(ctx, key)) {
        first->tracer.visit(&first->tracer, (void *)(ref + type->ref_offsets[1]), &type->tags);
        progress = true;
      } else {
        list->items[kept++] = ref;
      }
    }
    list->count = kept;
  }
  return progress;
}

static void clear_slot_if_dead(const mark_context *ctx, uintptr_t *slot,
                               const ugc_type_info *type) {
  uintptr_t ref = ugc_tag_reference(*slot, &type->tags);
  if (ref && !ref_live(ctx, ref))
    *slot = type->cleared_value;
}

/* After the last drain (world stopped): dead referents leave weak slots, ephemerons whose
 * keys died lose key and value. */
static void clear_weak_refs(mark_context *ctx) {
  const ugc_type_table *types = &ctx->heap->types;
  for (unsigned i = 0; i < ctx->worker_capacity; i++) {
    mark_worker *w = &ctx->workers[i];
    for (size_t j = 0; j < w->ephemerons.count; j++) {
      uintptr_t ref = w->ephemerons.items[j];
      const ugc_type_info *type =
          ugc_type_get(types, ugc_header_type(ugc_header_load(ref - UGC_HEADER_BYTES)));
      uintptr_t *key = (uintptr_t *)(ref + type->ref_offsets[0]);
      uintptr_t *value = (uintptr_t *)(ref + type->ref_offsets[1]);
      uintptr_t key_ref = ugc_tag_reference(*key, &type->tags);
      if (key_ref && !ref_live(ctx, key_ref))
        *key = *value = type->cleared_value;
    }
    for (size_t j = 0; j < w->weak_holders.count; j++) {
      uintptr_t ref = w->weak_holders.items[j];
      const ugc_type_info *type =
          ugc_type_get(types, ugc_header_type(ugc_header_load(ref - UGC_HEADER_BYTES)));
      for (uint32_t k = type->strong_count; k < type->ref_count; k++)
        clear_slot_if_dead(ctx, (uintptr_t *)(ref + type->ref_offsets[k]), type);
    }
    free(w->ephemerons.items);
    free(w->weak_holders.items);
  }
}

/* One stack entry: the slots of a marked object (ugc_object_visit, with the common layouts
 * inlined: an indirect call per slot showed up as a tenth of marking), or an array piece.
 * Returns its scan work: the object's bytes, or the piece's. */
static size_t trace_entry(mark_worker *w, const ugc_type_table *types, uintptr_t entry) {
  uintptr_t ref = entry_object(entry);
  uint64_t header = ugc_header_load(ref - UGC_HEADER_BYTES);
  const ugc_type_info *type = ugc_type_get(types, ugc_header_type(header));
  if (entry != ref) {
    trace_array_piece(w, type, ref, header, (entry >> UGC_PIECE_SHIFT) - 1);
    return PIECE_WORK_BYTES;
  }
  size_t work = ugc_header_total(header);
  if (__builtin_expect(type->strong_count != type->ref_count, 0)) {
    trace_weak_object(w, type, ref);
    return work;
  }
  if (w->tracer.visit != mark_visit || type->layout == UGC_LAYOUT_CUSTOM) {
    ugc_object_visit(types, header, (void *)ref, &w->tracer);
    return work;
  }
  if (type->layout == UGC_LAYOUT_LEAF)
    return work;
  ugc_tag_rule rule = type->tags;
  for (uint32_t i = 0; i < type->ref_count; i++)
    mark_slot(w, (uintptr_t *)(ref + type->ref_offsets[i]), &rule);
  if (type->layout == UGC_LAYOUT_REF_ARRAY)
    trace_array_elements(w, type, ref, header);
  return work;
}

/* Gives the bottom half of the stack (at most GIVE_MAX_ENTRIES) to the pool. */
static void give_work(mark_context *ctx, mark_worker *w) {
  size_t n = ugc_mark_local_work(w) / 2;
  if (n > GIVE_MAX_ENTRIES)
    n = GIVE_MAX_ENTRIES;
  w->bottom += ugc_mark_pool_give(&ctx->pool, w->stack + w->bottom, n);
}

static void helper_main(void *raw, size_t index, unsigned thread);

/* Worker 0, still alone: whether it is time to bring the helpers in. */
static void maybe_start_sharing(mark_context *ctx, mark_worker *w) {
  size_t work = ugc_mark_local_work(w);
  if (work < SHARE_STACK_ENTRIES && (w->traced < SHARE_AFTER_OBJECTS || work < 2))
    return;
  ctx->sharing = true;
  if (!ctx->concurrent)              /* a concurrent drain entered it at the start (assists) */
    ugc_mark_pool_enter(&ctx->pool); /* cannot fail: nobody has gone idle yet */
  give_work(ctx, w);
  ugc_workers_start(&ctx->heap->workers, ctx->worker_count - 1, 1, helper_main, ctx);
}

/* A GC thread's scan work since it last published it becomes credit that assisting
 * mutators may take instead of marking (ugc_marker_take_credit). */
static void publish_credit(mark_context *ctx, mark_worker *w) {
  size_t fresh = w->scanned - w->scanned_published;
  if (fresh && !w->assist) {
    atomic_fetch_add_explicit(&ctx->scan_credit, fresh, memory_order_relaxed);
    w->scanned_published = w->scanned;
  }
}

/* Every SHARE_CHECK_OBJECTS traced objects: bring the helpers in (worker 0, alone so far),
 * or give work to an idle GC thread or to a mutator that wants to assist. */
static void share_check(mark_context *ctx, mark_worker *w) {
  if (ctx->concurrent)
    publish_credit(ctx, w);
  if (!ctx->sharing && ctx->worker_count > 1 && w == ctx->workers) {
    maybe_start_sharing(ctx, w);
    return;
  }
  if (ugc_mark_local_work(w) <= 1)
    return;
  size_t pooled = atomic_load_explicit(&ctx->pool.chunks, memory_order_relaxed);
  /* While mutators run, some work waits in the pool for them even when they have not
   * asked yet: the GC thread may be descheduled when they do. */
  bool stock = ctx->concurrent && !w->assist && pooled < ASSIST_STOCK_CHUNKS;
  if (stock || ugc_mark_pool_hungry(&ctx->pool) ||
      (atomic_load_explicit(&ctx->assist_hungry, memory_order_relaxed) && !pooled)) {
    atomic_store_explicit(&ctx->assist_hungry, false, memory_order_relaxed);
    give_work(ctx, w);
  }
}

/* Traces until the stack and the prefetch queue are empty (true), or until the scan work
 * reaches `stop_at` (false: an assist's budget is spent; checked now and then). */
bool ugc_mark_drain(mark_context *ctx, mark_worker *w, size_t stop_at) {
  const ugc_type_table *types = &ctx->heap->types;
  bool may_share = ctx->worker_count > 1 || ctx->concurrent;
  unsigned since_check = 0;
  for (;;) {
    while (w->count > w->bottom) {
      uintptr_t entry = w->stack[--w->count];
      /* The object popped a few steps from now, if nothing is pushed meanwhile: a stack
       * filled by a large array is popped long after its headers were read. */
      if (w->count - w->bottom > POP_PREFETCH_DISTANCE)
        __builtin_prefetch((const void *)(entry_object(w->stack[w->count - POP_PREFETCH_DISTANCE]) -
                                          UGC_HEADER_BYTES));
      w->scanned += trace_entry(w, types, entry);
      w->traced++;
      if (may_share && ++since_check == SHARE_CHECK_OBJECTS) {
        since_check = 0;
        if (w->scanned >= stop_at)
          return false;
        share_check(ctx, w);
      }
    }
    w->bottom = w->count = 0;
    if (ugc_prefetch_queue_empty(&w->queue))
      return true;
    ugc_mark_moving(w, ugc_prefetch_queue_take(&w->queue));
  }
}

/* A marker that has entered the pool: local work, then chunks from the pool until the end. */
static void mark_shared(mark_context *ctx, mark_worker *w) {
  uintptr_t entries[UGC_MARK_CHUNK_ENTRIES];
  for (;;) {
    ugc_mark_drain(ctx, w, SIZE_MAX);
    size_t n = ugc_mark_pool_take(&ctx->pool, entries);
    if (!n)
      return;
    for (size_t i = 0; i < n; i++)
      ugc_mark_push(w, entries[i]);
  }
}

static void helper_main(void *raw, size_t index, unsigned thread) {
  mark_context *ctx = raw;
  if (ugc_mark_pool_enter(&ctx->pool))
    mark_shared(ctx, &ctx->workers[index + 1]);
}

ugc_marker *ugc_marker_create(ugc_heap *heap, uintptr_t snapshot_top, bool new_objects_black) {
  mark_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx)
    ugc_fatal("out of memory for a marking context");
  ctx->heap = heap;
  ctx->pool_workers = heap->workers.count;
  ctx->worker_count = heap->workers.count;
  ctx->worker_capacity = ctx->pool_workers + ASSIST_SLOTS;
  ctx->new_objects_black = new_objects_black;
  size_t workers_bytes = ctx->worker_capacity * sizeof *ctx->workers;
  ctx->workers = aligned_alloc(_Alignof(mark_worker), workers_bytes);
  if (!ctx->workers)
    ugc_fatal("out of memory for %u mark workers", ctx->worker_capacity);
  memset(ctx->workers, 0, workers_bytes);
  ugc_mark_pool_init(&ctx->pool, IDLE_SPIN_NS);
  /* Closed until the first concurrent drain opens it: an assist finds no work before. */
  atomic_store_explicit(&ctx->pool.done, true, memory_order_relaxed);
  bool verify = heap->config.verify;
  for (unsigned i = 0; i < ctx->worker_capacity; i++) {
    mark_worker *w = &ctx->workers[i];
    w->tracer.visit = verify ? mark_visit_verified : mark_visit;
    w->ctx = ctx;
    w->base = heap->moving.base;
    w->top = snapshot_top;
    w->bitmap = (_Atomic uint64_t *)heap->moving.live_words;
    w->starts = (_Atomic uint64_t *)heap->moving.start_words;
    w->type_count = ugc_type_count(&heap->types);
    w->assist = i >= ctx->pool_workers;
  }
  return ctx;
}

/* A fresh pool for drains with the world stopped (mutators cannot assist then). */
static void pool_reset(mark_context *ctx) {
  ctx->totals_gives += ctx->pool.gives;
  ctx->totals_sleeps += ctx->pool.sleeps;
  ugc_mark_pool_destroy(&ctx->pool);
  ugc_mark_pool_init(&ctx->pool, IDLE_SPIN_NS);
}

void ugc_marker_set_mode(ugc_marker *ctx, bool concurrent, unsigned threads) {
  if (ctx->concurrent && !concurrent)
    pool_reset(ctx); /* no assist runs any more (ugc_assist_end) */
  /* Written only when it changes: assists opened in the initial pause
   * (ugc_marker_open_for_assists) already run and read it. */
  if (ctx->concurrent != concurrent)
    ctx->concurrent = concurrent;
  if (threads < 1)
    threads = 1;
  unsigned worker_count = threads < ctx->pool_workers ? threads : ctx->pool_workers;
  if (ctx->worker_count != worker_count)
    ctx->worker_count = worker_count;
  /* Types registered since (only between pauses) are known to every worker; an assist's
   * worker is written only when a type was registered since. */
  uint32_t type_count = ugc_type_count(&ctx->heap->types);
  for (unsigned i = 0; i < ctx->worker_capacity; i++)
    if (ctx->workers[i].type_count != type_count)
      ctx->workers[i].type_count = type_count;
}

void ugc_marker_visit_roots(ugc_marker *ctx) {
  /* Roots are marked on this thread (enumerators are embedder code). */
  ugc_roots_visit(ctx->heap, &ctx->workers[0].tracer);
}

/* Values the write barrier recorded. The tag rule of a CUSTOM type's slot is known only to
 * its trace callback, so a recorded value may still carry tag bits, or be an immediate:
 * references are 8-byte aligned, so the low three bits go, and every value takes the full
 * check (never the fast path's header-trusting claim). A value that is no object is
 * skipped without a report: the marker never vouched for it as a reference slot. */
void ugc_marker_add_values(ugc_marker *ctx, const uintptr_t *values, size_t count) {
  mark_worker *w = &ctx->workers[0];
  w->from_barrier = true;
  for (size_t i = 0; i < count; i++) {
    uintptr_t ref = values[i] & ~(uintptr_t)7;
    if (ref)
      mark_checked(w, NULL, ref);
  }
  w->from_barrier = false;
}

static void drain_all(ugc_marker *ctx) {
  mark_worker *first = &ctx->workers[0];
  ctx->sharing = false;
  /* A concurrent drain keeps its pool (an assisting mutator may be looking at it): it
   * reopens it with worker 0 entered, and it ends, closed, when every marker is idle. */
  if (ctx->concurrent && atomic_load_explicit(&ctx->pool.done, memory_order_relaxed))
    ugc_mark_pool_reopen(&ctx->pool);
  ugc_mark_drain(ctx, first, SIZE_MAX);
  if (ctx->sharing || ctx->concurrent)
    mark_shared(ctx, first);
  if (ctx->sharing)
    ugc_workers_finish(&ctx->heap->workers);
  ctx->shared_any |= ctx->sharing;
  if (ctx->concurrent)
    publish_credit(ctx, first);
  else
    pool_reset(ctx); /* the pool is done: the next drain needs a fresh one */
}

void ugc_marker_drain(ugc_marker *ctx) {
  drain_all(ctx);
  if (!ctx->concurrent)
    while (resolve_ephemerons(ctx))
      drain_all(ctx);
}

size_t ugc_marker_objects(const ugc_marker *ctx) {
  size_t objects = 0;
  for (unsigned i = 0; i < ctx->worker_capacity; i++)
    objects += ctx->workers[i].objects;
  return objects;
}

/* The embedder's after-marking hooks (registered by runtime/hooks.c), in rounds: their
 * slots are marked at once (full check, so ugc_is_marked sees them) and traced after the
 * round, ephemeron fixpoint included; another round follows while one marked anything. */
static void run_after_mark_hooks(mark_context *ctx) {
  ugc_heap *heap = ctx->heap;
  if (!heap->after_mark.count)
    return;
  mark_worker *first = &ctx->workers[0];
  void (*visit)(ugc_tracer *, void *, const ugc_tag_rule *) = first->tracer.visit;
  ctx->concurrent = false;
  heap->in_after_mark = true;
  for (unsigned round = 1;; round++) {
    size_t before = ugc_marker_objects(ctx);
    first->tracer.visit = mark_visit_verified;
    for (size_t i = 0; i < heap->after_mark.count; i++)
      ((ugc_after_mark_fn)heap->after_mark.hooks[i].fn)(heap, &first->tracer, round,
                                                        heap->after_mark.hooks[i].data);
    first->tracer.visit = visit;
    if (ugc_marker_objects(ctx) == before)
      break;
    ugc_marker_drain(ctx);
  }
  heap->in_after_mark = false;
}

bool ugc_is_marked(ugc_heap *heap, const void *obj) {
  if (!heap->in_after_mark)
    ugc_misuse("ugc_is_marked", "called outside an after-marking hook");
  return ugc_mark_is_live_or_new(heap, (uintptr_t)obj);
}

void ugc_marker_finish(ugc_marker *ctx, ugc_mark_totals *totals) {
  run_after_mark_hooks(ctx);
  clear_weak_refs(ctx);
  memset(totals, 0, sizeof *totals);
  for (unsigned i = 0; i < ctx->worker_capacity; i++) {
    mark_worker *w = &ctx->workers[i];
    totals->moving_bytes += w->moving_bytes;
    totals->nonmoving_bytes += w->nonmoving_bytes;
    totals->large_bytes += w->large_bytes;
    totals->objects += w->objects;
    totals->bad_refs += w->bad_refs;
  }
  snprintf(totals->first_bad, sizeof totals->first_bad, "%s", ctx->first_bad);
  totals->shared = ctx->shared_any;
  totals->pool_gives = ctx->totals_gives;
  totals->pool_sleeps = ctx->totals_sleeps;
}

void ugc_marker_destroy(ugc_marker *ctx) {
  for (unsigned i = 0; i < ctx->worker_capacity; i++)
    free(ctx->workers[i].stack);
  ugc_mark_pool_destroy(&ctx->pool);
  free(ctx->workers);
  free(ctx);
}

void ugc_mark_heap(ugc_heap *heap, ugc_mark_totals *totals) {
  ugc_marker *marker = ugc_marker_create(heap, heap->moving.top, false);
  ugc_marker_visit_roots(marker);
  ugc_marker_drain(marker);
  ugc_finalize_after_mark(heap, marker);
  ugc_marker_finish(marker, totals);
  ugc_marker_destroy(marker);
}

bool ugc_mark_is_live_or_new(const ugc_heap *heap, uintptr_t ref) {
  const ugc_moving_space *space = &heap->moving;
  if (heap->allocate_black && ref - space->base < space->reserved_bytes &&
      ref - UGC_HEADER_BYTES >= heap->satb.black_low)
    return true;
  return ugc_mark_is_live(heap, ref);
}

bool ugc_mark_is_live(const ugc_heap *heap, uintptr_t ref) {
  uintptr_t hdr = ref - UGC_HEADER_BYTES;
  switch (ugc_heap_lookup(heap, ref)) {
  case UGC_REF_MOVING:
    return ugc_live_bit(&heap->moving, hdr);
  case UGC_REF_NONMOVING:
    return ugc_nonmoving_is_marked(&heap->nonmoving, hdr);
  case UGC_REF_LARGE:
    return atomic_load_explicit(&ugc_large_find(&heap->large, hdr)->marked, memory_order_relaxed);
  default:
    return true;
  }
}
