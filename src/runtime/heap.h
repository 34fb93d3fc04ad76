/* The heap and mutator structures and the runtime's internal interfaces. */
#ifndef UGC_RUNTIME_HEAP_H
#define UGC_RUNTIME_HEAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "compact/compact.h"
#include "compact/update_pages.h"
#include "heap/large.h"
#include "heap/nonmoving.h"
#include "heap/object.h"
#include "runtime/pins.h"
#include "heap/space.h"
#include "mark/satb.h"
#include "runtime/addrmap.h"
#include "runtime/assist.h"
#include "runtime/events.h"
#include "runtime/finalize.h"
#include "runtime/histogram.h"
#include "runtime/sizing.h"
#include "runtime/workers.h"

struct ugc_backend_ops; /* backend/backend.h */

#define UGC_TLAB_BYTES ((size_t)32 * 1024)

/* Mutator states. Changed only under heap->sp_lock; read by the collector under it. */
enum ugc_mutator_state {
  UGC_MUTATOR_RUNNING = 0, /* may touch the heap: a pause waits for it */
  UGC_MUTATOR_PARKED,      /* stopped at a safepoint */
  UGC_MUTATOR_BLOCKING,    /* inside a blocking region */
  UGC_MUTATOR_COLLECTING,  /* runs the pause */
  UGC_MUTATOR_GONE,        /* after fork(): a thread that does not exist in the child */
};

struct ugc_mutator {
  ugc_mutator_fast fast; /* must stay the first member (include/uffdgc/inline.h) */
  ugc_heap *heap;
  ugc_alloc_failure last_failure; /* ugc_last_alloc_failure */
  uintptr_t tlab_start;           /* start of the current TLAB (for allocation statistics) */
  uintptr_t tlab_marked_to;       /* its objects below this are marked black (by this thread,
                                     ugc_cmark_mark_own_tlab); 0: none */
  int state;                      /* enum ugc_mutator_state */
  /* Set by ugc_reserve: the TLAB's free room belongs to a reserved sequence, whose
   * allocations neither poll nor collect. Ends when one does not fit, or the TLAB ends. */
  bool reserved;
  bool in_walk; /* inside ugc_heap_walk: allocating would deadlock */
  pthread_t thread;
  pid_t tid;                /* kernel thread id, for messages */
  ugc_mutator *thread_next; /* the thread's other attached mutators (thread_watch.c) */
  /* For messages (thread_watch.c): the last call that changed the state, and when (ns,
   * CLOCK_MONOTONIC); set under sp_lock. Who detached the mutator, and how. */
  const char *last_call;
  uint64_t last_call_ns;
  pid_t detached_tid; /* 0: not detached since its attach */
  const char *detached_how;
  ugc_mutator *prev, *next; /* attach order */
  /* Concurrent marking: the write barrier's buffer (mark/satb.c) and how many values it
   * recorded since the last remark pause. */
  ugc_satb_buffer *satb;
  uint64_t satb_recorded;
  /* Scan work this mutator owes the cycle's marking (runtime/assist.c); negative: ahead. */
  int64_t assist_debt;
};

/* Registered slots, dense in slots[0, count) (the collector walks them). For O(1) removal
 * (runtime/roots.c): `where` maps each registered slot to one of its entries, and the
 * entries of a slot registered more than once are linked through prev/next. */
typedef struct ugc_slot_links {
  size_t prev, next; /* other entries of the same slot; SIZE_MAX = none */
} ugc_slot_links;

typedef struct ugc_slot_list {
  void ***slots;
  ugc_slot_links *links;
  size_t count, capacity;
  ugc_addrmap where;
} ugc_slot_list;

typedef struct ugc_enumerator {
  ugc_root_enumerator fn;
  void *data;
} ugc_enumerator;

/* Registered hooks of one kind (runtime/hooks.c): fn is an ugc_after_mark_fn or an
 * ugc_relocation_fn. */
typedef struct ugc_hook {
  void (*fn)(void);
  void *data;
} ugc_hook;

typedef struct ugc_hook_list {
  ugc_hook *hooks;
  size_t count, capacity;
} ugc_hook_list;

struct ugc_heap {
  ugc_config config;      /* resolved: defaults and environment applied */
  ugc_tag_rule root_rule; /* of every root, weak and finalizer slot (config) */
  char delivery[16];      /* config.delivery points here */
  size_t small_limit;
  const struct ugc_backend_ops *backend;
  void *backend_data;

  ugc_type_table types;
  ugc_moving_space moving;
  ugc_nonmoving_space nonmoving;
  ugc_large_space large;
  ugc_compact_plan plan;
  ugc_update_pages update_pages; /* references of non-moving objects updated after the pause */
  ugc_workers workers;

  /* Allocation, types, roots and statistics. The collector takes it once the world is
   * stopped and keeps it for the whole pause; nobody waits for a safepoint while holding it. */
  pthread_mutex_t lock;

  /* Safepoints: the collector sets safepoint_requested and gc_in_progress together under
   * sp_lock, then waits on parked_cond until no other mutator is RUNNING; mutators wait on
   * resume_cond until gc_in_progress is false. */
  pthread_mutex_t sp_lock;
  pthread_cond_t parked_cond, resume_cond;
  _Atomic uint32_t safepoint_requested;
  bool gc_in_progress;
  pthread_t pause_thread; /* the thread running the pause, while gc_in_progress */
  uint64_t pause_epoch;   /* bumped at the end of every pause */
  uint64_t gc_epoch;      /* bumped at the end of every collection */
  ugc_mutator *mutators_head, *mutators_tail;
  /* Detached mutators are kept (attached = 0) and reused, so that a call through a stale
   * mutator pointer is caught as a misuse instead of reading freed memory. */
  ugc_mutator *detached;

  ugc_slot_list globals, weaks;
  ugc_addrmap identity;        /* payload address -> identity hash (runtime/identity.c) */
  ugc_pin_table pins;          /* runtime/pins.c */
  uint64_t identity_counter;   /* source of new identity hashes */
  ugc_finalize_state finalize; /* runtime/finalize.c */
  ugc_enumerator *enumerators;
  size_t enumerator_count, enumerator_capacity;
  ugc_hook_list after_mark, relocation; /* runtime/hooks.c */
  bool in_after_mark;                   /* ugc_is_marked is allowed */

  /* Concurrent marking (runtime/concurrent_mark.c): NULL when config.concurrent_mark is 0.
   * `marking` (the write barrier) is true from the initial to the remark pause;
   * `allocate_black` (new moving-space objects are live) from the initial to the
   * compaction pause; `allocate_black_other` (new non-moving and large objects are marked)
   * from the initial pause until the sweep. Written with the heap lock held (the first two
   * only inside pauses); allocation reads them under the lock. */
  struct ugc_cmark *cmark;
  bool marking, allocate_black, allocate_black_other;
  char cycle_note[640]; /* appended to the cycle's trace line, then cleared */
  ugc_satb_queue satb;
  ugc_assist assist; /* mutator-assisted marking (runtime/assist.c) */

  size_t trigger_bytes;  /* moving occupancy that starts a collection */
  size_t other_since_gc; /* large + non-moving bytes allocated since the last cycle */
  ugc_sizing sizing;     /* allocation during marking, for the trigger (runtime/sizing.c) */
  ugc_stats stats;
  /* Taken, besides the heap lock, by ugc_stats_get and by whoever folds a finished
   * concurrent compaction into stats (without the heap lock). Taken last: a leaf. */
  pthread_mutex_t stats_lock;
  ugc_events events;
  bool remap_fallback_reported;

  ugc_heap *next_heap; /* the process's list of heaps (for fork) */
};

/* ---- safepoints (mutator.c) ---- */
/* Stops every other mutator. `self` may be NULL (an unattached caller). If another pause
 * is in progress, waits for it first; with `skip_if_collected`, returns false instead of
 * stopping when a collection finished meanwhile. Returns true with the world stopped. */
bool ugc_world_stop(ugc_heap *heap, ugc_mutator *self, bool skip_if_collected);
void ugc_world_resume(ugc_heap *heap, ugc_mutator *self, bool collected);
/* With sp_lock held: returns once no pause is in progress. If the calling thread is a
 * RUNNING mutator of this heap, it counts as parked meanwhile (so the call is a safepoint,
 * not a deadlock). On the thread running the pause: a misuse of `call` (it would wait for
 * itself). */
void ugc_wait_pause_end_locked(ugc_heap *heap, const char *call);
/* Frees the kept detached mutators (heap destruction). */
void ugc_mutators_free_detached(ugc_heap *heap);
/* Calls fn for every attached mutator in attach order (world stopped or sp_lock held). */
void ugc_heap_for_each_mutator(ugc_heap *heap, void (*fn)(ugc_mutator *, void *), void *data);
/* Ends the TLAB of a mutator: the unused rest becomes a filler. Heap lock held. */
void ugc_tlab_retire(ugc_mutator *mutator);
void ugc_tlabs_retire_all(ugc_heap *heap);

/* ---- collection (collect.c) ---- */
/* Runs one full collection; world stopped and heap lock held by the caller. */
void ugc_collect_locked(ugc_heap *heap);
/* How far the next cycle's allocation reaches into the moving space after a collection
 * that left `moving_live` bytes live there: the sizing target max(heap_initial, live *
 * growth_factor), plus, with concurrent marking, how far past the trigger mutators allocate
 * before that cycle's compaction pause (ugc_sizing_reach); at most heap_max, and heap_max
 * when a mutator found the heap full since the last compaction pause. What a backend may
 * keep memory for. */
size_t ugc_heap_next_extent(const ugc_heap *heap, size_t moving_live);

/* The steps of a cycle once marking is complete. ugc_collect_locked runs them all in one
 * pause; concurrent marking runs the weak slots in its remark pause, the sweep and the plan
 * while mutators run and the rest in its compaction pause. Clocks of the pause that ends
 * with ugc_collect_compact_locked: `pause_start` and the CPU clocks were read when it
 * began; verify_ns: time this pause spent verifying (reported apart, never as pause
 * time); verify_earlier_ns: verification in an earlier pause of the same cycle (the
 * initial pause): reported, not subtracted. */
typedef struct ugc_cycle_clock {
  uint64_t pause_start, cpu_start, helpers_start, verify_ns, verify_earlier_ns;
} ugc_cycle_clock;
/* What the steps found, for the statistics and the trace line. */
typedef struct ugc_cycle_work {
  size_t used_before; /* moving space in use (before this cycle freed any) */
  size_t nonmoving_freed, large_freed;
  uint64_t sweep_ns, plan_ns;     /* sweeping (and weak slots), the plan */
  bool planned;                   /* heap->plan holds the plan; else nothing moves */
  uint64_t mark_end;              /* stop-the-world marking: when the pause's marking
                                     phase (mark, sweep, plan) ended; 0 with concurrent
                                     marking (the pause ending is all compaction) */
  uint64_t initial_ns, remark_ns; /* concurrent marking: its earlier pauses */
} ugc_cycle_work;
struct ugc_mark_totals;
/* Clears the weak slots whose referents marking did not reach. Objects whose headers lie
 * in [black_low, black_high) count as live (allocated during marking, bits not set yet).
 * World stopped: a mutator could otherwise read a dead referent out of a slot. */
void ugc_collect_clear_dead_weaks(ugc_heap *heap, uintptr_t black_low, uintptr_t black_high);
/* Marking is complete: the verifier's bad references, the mark_done event. */
void ugc_collect_mark_done(ugc_heap *heap, const struct ugc_mark_totals *totals, uint64_t mark_ns);
/* Sweeps the non-moving and large spaces. Heap lock held (allocation in them waits). */
void ugc_collect_sweep(ugc_heap *heap, ugc_cycle_work *work);
/* Computes heap->plan over [base, plan_top) from the final bitmaps, with tables for an
 * extension up to reserve_top (0: none); sets work->planned. Reads only the bitmaps: no
 * lock needed while nothing else touches heap->plan or marks below plan_top. */
void ugc_collect_plan(ugc_heap *heap, uintptr_t plan_top, uintptr_t reserve_top,
                      ugc_cycle_work *work);
/* The compaction pause: references, backend hand-off, statistics, trace line. World
 * stopped, heap lock held, heap->plan covering [base, top) when work->planned. */
void ugc_collect_compact_locked(ugc_heap *heap, const struct ugc_mark_totals *totals,
                                const ugc_cycle_work *work, const ugc_cycle_clock *clock);
/* Runs the heap verifier and counts what it finds ("before"/"after" name the moment);
 * returns the time it took. */
uint64_t ugc_collect_verify_locked(ugc_heap *heap, const char *when);
/* Stops the world, collects (unless another thread's collection finished while waiting,
 * when `skip_if_collected`), resumes. */
void ugc_collect_now(ugc_heap *heap, ugc_mutator *self, bool skip_if_collected);
/* A mutator about to wait for the compaction in flight (no lock held, the thread RUNNING)
 * builds pages of it instead (backend.h, compact_assist), counted in
 * stats.compaction.pages_by_waiting_mutators. Returns the pages it took (0: none). */
size_t ugc_collect_assist_compaction(ugc_heap *heap);

/* ---- references (lookup.c) ---- */
typedef enum ugc_ref_kind {
  UGC_REF_NONE = 0, /* not a heap reference (immediate, NULL, outside the heap) */
  UGC_REF_MOVING,
  UGC_REF_NONMOVING,
  UGC_REF_LARGE,
  UGC_REF_BAD, /* inside a heap range but not an object start */
} ugc_ref_kind;

/* Classifies an untagged value. Cheap checks only (range, alignment, a sane header for the
 * moving space); the verifier does the exact object-start check. */
static inline ugc_ref_kind ugc_heap_lookup(const ugc_heap *heap, uintptr_t ref) {
  uintptr_t hdr = ref - UGC_HEADER_BYTES;
  /* Concurrent marking calls this without the heap lock while mutators bump top (relaxed
   * store, ugc_moving_space_bump): one relaxed load; objects above a stale top are new,
   * allocated black. */
  uintptr_t top = __atomic_load_n(&heap->moving.top, __ATOMIC_RELAXED);
  if (ref - heap->moving.base - UGC_HEADER_BYTES < top - heap->moving.base) {
    if (ref & 7)
      return UGC_REF_BAD;
    uint64_t header = ugc_header_load(hdr);
    ugc_type_id type = ugc_header_type(header);
    if (type == UGC_FILLER_TYPE || type >= ugc_type_count(&heap->types) ||
        ugc_header_total(header) > top - hdr)
      return UGC_REF_BAD;
    return UGC_REF_MOVING;
  }
  if (ref - heap->nonmoving.base < heap->nonmoving.end - heap->nonmoving.base)
    return ugc_nonmoving_cell_index(&heap->nonmoving, hdr) >= 0 ? UGC_REF_NONMOVING : UGC_REF_BAD;
  if (ref - heap->moving.base < heap->moving.reserved_bytes)
    return UGC_REF_BAD; /* above the bump pointer */
  if (ref >= heap->large.low && ref < heap->large.high) {
    if (ugc_large_find(&heap->large, hdr))
      return UGC_REF_LARGE;
    return UGC_REF_BAD;
  }
  return UGC_REF_NONE;
}

/* The marker's fast test: whether an untagged value can be a moving-space reference (in
 * [base + 8, top], 8-byte aligned). Range and alignment only, no memory read: the marker
 * sets the mark bit first and reads the header only if it won (it needs the size then),
 * so an already marked object costs no header miss. Values that fail go through
 * ugc_heap_lookup; the full header check is the verifier's (and verify mode's) job. */
static inline bool ugc_heap_maybe_moving(uintptr_t base, uintptr_t top, uintptr_t ref) {
  return ref - base - UGC_HEADER_BYTES < top - base && !(ref & 7);
}

/* ---- roots (roots.c) ---- */
/* Visits every root slot in a fixed order: each mutator's handle stack (attach order), the
 * global roots (registration order), then the enumerators. World stopped. */
void ugc_roots_visit(ugc_heap *heap, ugc_tracer *tracer);

/* ---- thread_watch.c ---- */
/* Adds the calling thread's new mutator to its list (detached automatically at thread exit). */
void ugc_thread_watch_add(ugc_mutator *mutator);
/* Removes a mutator from the calling thread's list (ugc_thread_detach). */
void ugc_thread_watch_remove(ugc_mutator *mutator);
/* sp_lock held, pause requested: names every other mutator still RUNNING after waited_ms
 * and what it last did in the library; fatal for one whose thread no longer exists. */
void ugc_world_stop_report_late(ugc_heap *heap, ugc_mutator *self, uint64_t waited_ms);
/* Records `call` as the mutator's last state change (sp_lock held). */
void ugc_mutator_note(ugc_mutator *mutator, const char *call);
/* Why `mutator` (NULL or detached) cannot be used: the calling thread, and who detached it
 * and how, or that nothing did (memory never attached, or overwritten). */
void ugc_mutator_describe_unusable(const ugc_mutator *mutator, char *text, size_t size);
/* ugc_thread_detach, saying how the detach came about (for ugc_check_attached's message). */
void ugc_thread_detach_as(ugc_mutator *mutator, const char *how);

/* ---- kernel_access.c ---- */
/* With config.trace: one line when system calls into the heap lose what the delivery mode
 * promises (UFFD_USER_MODE_ONLY). */
void ugc_kernel_access_report(const ugc_heap *heap);

/* ---- misc ---- */
/* heap->stats_lock, for backends folding their counters in outside the pause. */
void ugc_stats_lock(ugc_heap *heap);
void ugc_stats_unlock(ugc_heap *heap);

/* Fills *error (may be NULL) with code and a formatted message. */
void ugc_set_error(ugc_error *error, ugc_error_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The calling mutator must be attached: aborts with a misuse message otherwise. */
void ugc_check_attached(const ugc_mutator *mutator, const char *call);

#endif
