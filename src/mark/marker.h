/* The marker's insides, shared by mark.c (stop-the-world and concurrent drains) and
 * mark_assist.c (mutator assists). Nothing outside mark/ includes it. */
#ifndef UGC_MARK_MARKER_H
#define UGC_MARK_MARKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap/object.h"
#include "mark/mark.h"
#include "mark/mark_pool.h"
#include "mark/prefetch_queue.h"

/* Mutators that may assist a concurrent marking at the same time (a marker slot each). */
#define ASSIST_SLOTS 8u

typedef struct ugc_marker mark_context;

typedef struct ref_list {
  uintptr_t *items;
  size_t count, capacity;
} ref_list;

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
  /* Scan work (bytes of objects and array pieces traced), and how much of it the GC
   * threads have already offered to assisting mutators as credit. */
  size_t scanned, scanned_published;
  bool assist; /* a mutator's slot (ugc_marker_assist): its work is not credit */
  size_t moving_bytes, nonmoving_bytes, large_bytes, objects, bad_refs;
  bool from_barrier; /* marking values the write barrier recorded (see add_values) */
  /* Traced objects with weak slots, and ephemerons whose key was not yet known to be live
   * when they were traced (see "weak slots and ephemerons" in mark.c). */
  ref_list weak_holders, ephemerons;
} mark_worker;

struct ugc_marker {
  ugc_heap *heap;
  mark_worker *workers;
  unsigned worker_capacity; /* workers allocated: the pool's, then ASSIST_SLOTS */
  unsigned pool_workers;    /* the worker pool's size (GC threads) */
  /* worker_count, sharing and concurrent are atomic: assisting mutators read them while the
   * collector thread's drain sets them (values, not orderings, matter). */
  _Atomic unsigned worker_count; /* GC-thread workers taking part in the current drain */
  _Atomic bool sharing;          /* helpers were started in this drain (set by worker 0 only) */
  /* Concurrent marking: moving-space values at or above `top` (the snapshot's bump
   * pointer) are objects allocated during marking, live by construction and never traced;
   * while `concurrent`, mutators run, so looking up non-moving and large references (whose
   * tables allocation changes) takes the heap lock. */
  bool new_objects_black;
  _Atomic bool concurrent;
  bool shared_any; /* some drain brought helpers in */
  size_t totals_gives, totals_sleeps;
  /* Mutator assists (concurrent drains only): which assist slots are taken, whether one
   * found the pool empty (the GC threads then give work), the GC threads' scan work not
   * yet taken as credit by a mutator. */
  _Atomic unsigned assist_slots_taken;
  _Atomic bool assist_hungry;
  _Atomic size_t scan_credit;
  ugc_mark_pool pool;
  _Atomic int bad_reported;
  char first_bad[160];
};

/* Pushes a marked object (or an array piece) on the worker's stack. */
void ugc_mark_push(mark_worker *w, uintptr_t ref);
/* A moving-space candidate (in range, aligned): marks it and pushes it unless it was. */
void ugc_mark_moving(mark_worker *w, uintptr_t ref);
/* Traces until the stack and the prefetch queue are empty (true), or until the scan work
 * reaches `stop_at` (false: an assist's budget is spent; checked now and then). */
bool ugc_mark_drain(mark_context *ctx, mark_worker *w, size_t stop_at);

static inline size_t ugc_mark_local_work(const mark_worker *w) {
  return w->count - w->bottom;
}

#endif
