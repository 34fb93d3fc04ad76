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

#include "mark/mark_pool.h"
#include "mark/prefetch_queue.h"
#include "os/log.h"
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

typedef struct ugc_marker mark_context;

/* Cache-line aligned: every field is written while marking, and two workers sharing a
 * line made parallel marking slower than marking alone. */
typedef struct mark_worker {
  _Alignas(64) ugc_tracer tracer; /* first: the visit callback casts back */
  mark_context *ctx;
  /* Copies of the heap's bounds, read on every reference. */
  uintptr_t base, top;
  _Atomic uint64_t *bitmap; /* live-words bitmap */
  _Atomic uint64_t *starts; /* object-start bitmap: its header-word bit is the mark bit */
  uint32_t type_count;
  ugc_prefetch_queue queue;
  /* Payload addresses of marked, untraced objects: stack[bottom, count). Work is given
   * away from the bottom, popped from the top. */
  uintptr_t *stack;
  size_t bottom, count, capacity;
  size_t traced;
  size_t moving_bytes, nonmoving_bytes, large_bytes, objects, bad_refs;
  bool from_barrier; /* marking values the write barrier recorded (see add_values) */
} mark_worker;

struct ugc_marker {
  ugc_heap *heap;
  mark_worker *workers;
  unsigned worker_capacity; /* workers allocated (the pool's size) */
  unsigned worker_count;    /* workers taking part in the current drain */
  bool sharing;             /* helpers were started in this drain (set by worker 0 only) */
  /* Concurrent marking: moving-space values at or above `top` (the snapshot's bump
   * pointer) are objects allocated during marking, live by construction and never traced;
   * while `concurrent`, mutators run, so looking up non-moving and large references (whose
   * tables allocation changes) takes the heap lock. */
  bool new_objects_black;
  bool concurrent;
  bool shared_any; /* some drain brought helpers in */
  size_t totals_gives, totals_sleeps;
  ugc_mark_pool pool;
  _Atomic int bad_reported;
  char first_bad[160];
};

static void push(mark_worker *w, uintptr_t ref) {
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
static void mark_moving(mark_worker *w, uintptr_t ref) {
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
  push(w, ref);
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
      push(w, ref);
    }
    return;
  }
  case UGC_REF_NONMOVING:
    if (ugc_nonmoving_mark(&heap->nonmoving, hdr)) {
      w->nonmoving_bytes += ugc_header_total(ugc_header_load(hdr));
      w->objects++;
      push(w, ref);
    }
    return;
  case UGC_REF_LARGE: {
    ugc_large_object *object = ugc_large_find(&heap->large, hdr);
    if (!atomic_exchange_explicit(&object->marked, 1, memory_order_relaxed)) {
      w->large_bytes += ugc_header_total(ugc_header_load(hdr));
      w->objects++;
      push(w, ref);
    }
    return;
  }
  }
}

/* The slot is read with a relaxed atomic load: with concurrent marking a mutator may be
 * storing into it (the barrier recorded what it overwrote). */
static inline void mark_slot(mark_worker *w, uintptr_t *slot, uintptr_t tag_mask) {
  uintptr_t ref = __atomic_load_n(slot, __ATOMIC_RELAXED) & ~tag_mask;
  if (__builtin_expect(ugc_heap_maybe_moving(w->base, w->top, ref), 1)) {
    size_t word = (ref - UGC_HEADER_BYTES - w->base) >> 3;
    __builtin_prefetch((const void *)&w->bitmap[word >> 6], 1);
    __builtin_prefetch((const void *)&w->starts[word >> 6], 1);
    __builtin_prefetch((const void *)(ref - UGC_HEADER_BYTES), 0);
    if (ugc_prefetch_queue_full(&w->queue))
      mark_moving(w, ugc_prefetch_queue_take(&w->queue));
    ugc_prefetch_queue_put(&w->queue, ref);
    return;
  }
  if (ref)
    mark_checked(w, slot, ref);
}

/* The tracer callback: roots, and the slots of CUSTOM objects. */
static void mark_visit(ugc_tracer *tracer, void *slot, uintptr_t tag_mask) {
  mark_slot((mark_worker *)tracer, (uintptr_t *)slot, tag_mask);
}

static void mark_visit_verified(ugc_tracer *tracer, void *slot, uintptr_t tag_mask) {
  mark_worker *w = (mark_worker *)tracer;
  uintptr_t ref = __atomic_load_n((uintptr_t *)slot, __ATOMIC_RELAXED) & ~tag_mask;
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

static inline void mark_slots(mark_worker *w, uintptr_t *slot, size_t count, uintptr_t tag_mask) {
  for (size_t i = 0; i < count; i++)
    mark_slot(w, &slot[i], tag_mask);
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
    mark_slots(w, elements, slots, type->tag_mask);
    return;
  }
  size_t pieces = (slots + per - 1) / per;
  for (size_t piece = pieces - 1; piece >= 1; piece--)
    push(w, ref | (uintptr_t)(piece + 1) << UGC_PIECE_SHIFT);
  mark_slots(w, elements, per, type->tag_mask);
}

static void trace_array_piece(mark_worker *w, const ugc_type_info *type, uintptr_t ref,
                              uint64_t header, size_t piece) {
  size_t slots = (ugc_header_payload(header) - type->fixed_size) / 8;
  size_t per = piece_slots(slots);
  size_t first = piece * per;
  size_t count = slots - first < per ? slots - first : per;
  mark_slots(w, (uintptr_t *)(ref + type->fixed_size) + first, count, type->tag_mask);
}

/* One stack entry: the slots of a marked object (ugc_object_visit, with the common layouts
 * inlined: an indirect call per slot showed up as a tenth of marking), or an array piece. */
static void trace_entry(mark_worker *w, const ugc_type_table *types, uintptr_t entry) {
  uintptr_t ref = entry_object(entry);
  uint64_t header = ugc_header_load(ref - UGC_HEADER_BYTES);
  const ugc_type_info *type = ugc_type_get(types, ugc_header_type(header));
  if (entry != ref) {
    trace_array_piece(w, type, ref, header, (entry >> UGC_PIECE_SHIFT) - 1);
    return;
  }
  if (w->tracer.visit != mark_visit || type->layout == UGC_LAYOUT_CUSTOM) {
    ugc_object_visit(types, header, (void *)ref, &w->tracer);
    return;
  }
  if (type->layout == UGC_LAYOUT_LEAF)
    return;
  uintptr_t tag_mask = type->tag_mask;
  for (uint32_t i = 0; i < type->ref_count; i++)
    mark_slot(w, (uintptr_t *)(ref + type->ref_offsets[i]), tag_mask);
  if (type->layout == UGC_LAYOUT_REF_ARRAY)
    trace_array_elements(w, type, ref, header);
}

static size_t local_work(const mark_worker *w) {
  return w->count - w->bottom;
}

/* Gives the bottom half of the stack (at most GIVE_MAX_ENTRIES) to the pool. */
static void give_work(mark_context *ctx, mark_worker *w) {
  size_t n = local_work(w) / 2;
  if (n > GIVE_MAX_ENTRIES)
    n = GIVE_MAX_ENTRIES;
  w->bottom += ugc_mark_pool_give(&ctx->pool, w->stack + w->bottom, n);
}

static void helper_main(void *raw, size_t index, unsigned thread);

/* Worker 0, still alone: whether it is time to bring the helpers in. */
static void maybe_start_sharing(mark_context *ctx, mark_worker *w) {
  size_t work = local_work(w);
  if (work < SHARE_STACK_ENTRIES && (w->traced < SHARE_AFTER_OBJECTS || work < 2))
    return;
  ctx->sharing = true;
  ugc_mark_pool_enter(&ctx->pool); /* cannot fail: nobody has gone idle yet */
  give_work(ctx, w);
  ugc_workers_start(&ctx->heap->workers, ctx->worker_count - 1, 1, helper_main, ctx);
}

/* Traces until the stack and the prefetch queue are empty. */
static void drain(mark_context *ctx, mark_worker *w) {
  const ugc_type_table *types = &ctx->heap->types;
  bool may_share = ctx->worker_count > 1;
  unsigned since_check = 0;
  for (;;) {
    while (w->count > w->bottom) {
      uintptr_t entry = w->stack[--w->count];
      /* The object popped a few steps from now, if nothing is pushed meanwhile: a stack
       * filled by a large array is popped long after its headers were read. */
      if (w->count - w->bottom > POP_PREFETCH_DISTANCE)
        __builtin_prefetch((const void *)(entry_object(w->stack[w->count - POP_PREFETCH_DISTANCE]) -
                                          UGC_HEADER_BYTES));
      trace_entry(w, types, entry);
      w->traced++;
      if (may_share && ++since_check == SHARE_CHECK_OBJECTS) {
        since_check = 0;
        if (!ctx->sharing) /* only worker 0 runs before sharing starts */
          maybe_start_sharing(ctx, w);
        else if (local_work(w) > 1 && ugc_mark_pool_hungry(&ctx->pool))
          give_work(ctx, w);
      }
    }
    w->bottom = w->count = 0;
    if (ugc_prefetch_queue_empty(&w->queue))
      return;
    mark_moving(w, ugc_prefetch_queue_take(&w->queue));
  }
}

/* A marker that has entered the pool: local work, then chunks from the pool until the end. */
static void mark_shared(mark_context *ctx, mark_worker *w) {
  uintptr_t entries[UGC_MARK_CHUNK_ENTRIES];
  for (;;) {
    drain(ctx, w);
    size_t n = ugc_mark_pool_take(&ctx->pool, entries);
    if (!n)
      return;
    for (size_t i = 0; i < n; i++)
      push(w, entries[i]);
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
  ctx->worker_capacity = ctx->worker_count = heap->workers.count;
  ctx->new_objects_black = new_objects_black;
  size_t workers_bytes = ctx->worker_capacity * sizeof *ctx->workers;
  ctx->workers = aligned_alloc(_Alignof(mark_worker), workers_bytes);
  if (!ctx->workers)
    ugc_fatal("out of memory for %u mark workers", ctx->worker_capacity);
  memset(ctx->workers, 0, workers_bytes);
  ugc_mark_pool_init(&ctx->pool, IDLE_SPIN_NS);
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
  }
  return ctx;
}

void ugc_marker_set_mode(ugc_marker *ctx, bool concurrent, unsigned threads) {
  ctx->concurrent = concurrent;
  if (threads < 1)
    threads = 1;
  ctx->worker_count = threads < ctx->worker_capacity ? threads : ctx->worker_capacity;
  /* Types registered since (only between pauses) are known to every worker. */
  for (unsigned i = 0; i < ctx->worker_capacity; i++)
    ctx->workers[i].type_count = ugc_type_count(&ctx->heap->types);
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

void ugc_marker_drain(ugc_marker *ctx) {
  mark_worker *first = &ctx->workers[0];
  ctx->sharing = false;
  drain(ctx, first);
  if (ctx->sharing) {
    mark_shared(ctx, first);
    ugc_workers_finish(&ctx->heap->workers);
  }
  /* The pool is done: the next drain needs a fresh one. */
  ctx->totals_gives += ctx->pool.gives;
  ctx->totals_sleeps += ctx->pool.sleeps;
  ugc_mark_pool_destroy(&ctx->pool);
  ugc_mark_pool_init(&ctx->pool, IDLE_SPIN_NS);
  ctx->shared_any |= ctx->sharing;
}

size_t ugc_marker_objects(const ugc_marker *ctx) {
  size_t objects = 0;
  for (unsigned i = 0; i < ctx->worker_capacity; i++)
    objects += ctx->workers[i].objects;
  return objects;
}

void ugc_marker_finish(ugc_marker *ctx, ugc_mark_totals *totals) {
  memset(totals, 0, sizeof *totals);
  for (unsigned i = 0; i < ctx->worker_capacity; i++) {
    mark_worker *w = &ctx->workers[i];
    totals->moving_bytes += w->moving_bytes;
    totals->nonmoving_bytes += w->nonmoving_bytes;
    totals->large_bytes += w->large_bytes;
    totals->objects += w->objects;
    totals->bad_refs += w->bad_refs;
    free(w->stack);
  }
  snprintf(totals->first_bad, sizeof totals->first_bad, "%s", ctx->first_bad);
  totals->shared = ctx->shared_any;
  totals->pool_gives = ctx->totals_gives;
  totals->pool_sleeps = ctx->totals_sleeps;
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
