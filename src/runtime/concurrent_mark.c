/* The concurrent-marking cycle and its collector thread (see concurrent_mark.h and
 * docs/design.md, "Concurrent marking"). */
#include "runtime/concurrent_mark.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "mark/mark.h"
#include "os/cancel.h"
#include "os/inject.h"
#include "os/log.h"
#include "os/signals.h"
#include "os/time.h"
#include "runtime/heap.h"

/* Concurrent drains stop taking the barrier's buffers after this many rounds (a mutator
 * that fills them as fast as they are marked must not keep the cycle open forever); what
 * is left is marked in the remark pause. */
#define MAX_CONCURRENT_ROUNDS 64

/* The remark pause marks what the barrier's full buffers hold, and all they reach. While
 * the world stops, a mutator that polls rarely keeps running and filling buffers (a 100 ms
 * loop with no safepoint left 2,700 buffers of 510 values: a 56 ms remark). So the pause
 * looks first: above this many full buffers it resumes the world at once and marks them
 * concurrently, up to REMARK_RETRIES times; then it marks whatever is there (a mutator that
 * outruns the GC threads must not keep the cycle open). */
#define REMARK_MAX_FULL_BUFFERS 64
#define REMARK_RETRIES 4

typedef struct black_range {
  uintptr_t start, end;
} black_range;

typedef struct black_ranges {
  black_range *items;
  size_t count, capacity;
} black_ranges;

static void ranges_add(black_ranges *list, uintptr_t start, uintptr_t end) {
  if (list->count == list->capacity) {
    size_t capacity = list->capacity ? 2 * list->capacity : 256;
    black_range *items = realloc(list->items, capacity * sizeof *items);
    if (!items)
      ugc_fatal("out of memory recording allocated-black ranges");
    list->items = items;
    list->capacity = capacity;
  }
  list->items[list->count++] = (black_range){start, end};
}

typedef struct ugc_cmark {
  pthread_mutex_t lock;
  pthread_cond_t wake, done;
  uint64_t requested, started, completed; /* cycles */
  bool active;                            /* a cycle runs (started, not completed) */
  bool marking;                           /* its concurrent drains run: waiters may assist */
  bool hold;                              /* fork in progress: start no cycle */
  bool stopping;                          /* heap destruction */
  bool thread_running;
  pid_t owner_pid; /* the process the thread runs in */
  pthread_t thread;
  unsigned threads; /* GC threads marking while mutators run */
  /* Allocate black: TLABs retired from the initial to the compaction pause (heap lock)
   * wait in `pending` until the collector thread marks their objects, while mutators run
   * or, for the few retired last, in the compaction pause. Medium objects get their bits
   * when they are bumped (ugc_cmark_medium_allocated, heap lock). */
  black_ranges pending;
  size_t black_tlab_bytes;   /* marked from ranges in this cycle (atomic: mutators add) */
  size_t black_medium_bytes; /* marked at allocation in this cycle (heap lock) */
  void (*between_pauses)(void *);
  void *between_pauses_data;
  void (*after_plan)(void *);
  void *after_plan_data;
  /* The mark bitmaps are clean below clean_to (cleared by the collector thread before the
   * initial pause, see clear_bitmaps_early); the last cycle set bits only below
   * marked_top (the top at its compaction pause). */
  uintptr_t clean_to, marked_top;
  /* What the last marking found live (objects allocated black not included): the scan
   * work the next one expects, for the mutator assists' pacing. 0 before the first. */
  size_t last_marked;
  uint64_t plan_rounds; /* extensions of the plan between the pauses, all cycles (atomic) */
} ugc_cmark;

/* ---- the cycle ---- */

static void set_marking(ugc_mutator *mutator, void *data) {
  mutator->fast.marking = *(const bool *)data;
}

/* Where the last cycle's marks end: below its top at the compaction pause (objects
 * allocated black included), or below the plan's old top (a stop-the-world cycle). */
static uintptr_t dirty_bitmap_top(const ugc_heap *heap) {
  uintptr_t planned = heap->plan.old_top, marked = heap->cmark->marked_top;
  return planned > marked ? planned : marked;
}

/* Initial pause: roots into the mark stack, barrier on. World stopped, heap lock held.
 * Sets *verify_ns to the time spent verifying (not pause time). */
static ugc_marker *initial_pause(ugc_heap *heap, uint64_t *verify_ns) {
  ugc_moving_space *space = &heap->moving;
  heap->backend->compact_wait(heap);
  /* As in ugc_collect_locked: the last cycle's update ranges go while the world is stopped,
   * before this cycle's sweep can free their objects. */
  ugc_update_pages_pause_begin(&heap->update_pages);
  ugc_event_cycle_start(heap, heap->stats.cycles + 1);
  ugc_tlabs_retire_all(heap);
  ugc_sizing_mark_started(heap);
  *verify_ns = heap->config.verify ? ugc_collect_verify_locked(heap, "before") : 0;
  /* Normally clean already (clear_bitmaps_early); a cycle that began without it clears
   * here what the last cycle marked. */
  uintptr_t dirty_top = dirty_bitmap_top(heap);
  if (dirty_top > heap->cmark->clean_to)
    ugc_moving_space_clear_bitmap_to(space, dirty_top);
  heap->cmark->clean_to = 0; /* marking dirties them from now on */
  uintptr_t snapshot_top = space->top;
  heap->satb.black_low = snapshot_top;
  heap->satb.black_bytes = space->base + space->reserved_bytes - snapshot_top;
  ugc_marker *marker = ugc_marker_create(heap, snapshot_top, true);
  ugc_marker_visit_roots(marker);
  size_t expected = heap->cmark->last_marked;
  if (!expected) /* no marking yet: everything might be live */
    expected = (snapshot_top - space->base) + heap->nonmoving.used_bytes + heap->large.used_bytes;
  ugc_assist_begin(heap, marker, expected);
  heap->marking = true;
  heap->allocate_black = heap->allocate_black_other = true;
  heap->cmark->black_tlab_bytes = heap->cmark->black_medium_bytes = 0;
  bool on = true;
  ugc_heap_for_each_mutator(heap, set_marking, &on);
  return marker;
}

/* Marks the barrier's full buffers; returns how many there were. */
static size_t mark_full_buffers(ugc_heap *heap, ugc_marker *marker) {
  ugc_satb_buffer *list = ugc_satb_take_full(&heap->satb);
  size_t buffers = 0;
  for (ugc_satb_buffer *b = list; b; b = b->next, buffers++)
    ugc_marker_add_values(marker, b->values, b->count);
  ugc_satb_recycle(&heap->satb, list);
  return buffers;
}

static size_t mark_retired_tlabs(ugc_heap *heap, bool locked);

static void mark_concurrently(ugc_heap *heap, ugc_marker *marker, unsigned threads) {
  ugc_marker_set_mode(marker, true, threads);
  for (int round = 0; round < MAX_CONCURRENT_ROUNDS; round++) {
    ugc_marker_drain(marker);
    mark_retired_tlabs(heap, false);
    if (!mark_full_buffers(heap, marker))
      break;
  }
}

typedef struct flush_arg {
  ugc_marker *marker;
  ugc_stats *stats;
} flush_arg;

static void flush_mutator(ugc_mutator *mutator, void *data) {
  flush_arg *arg = data;
  if (mutator->satb) {
    ugc_marker_add_values(arg->marker, mutator->satb->values, mutator->satb->count);
    mutator->satb->count = 0;
  }
  arg->stats->mark_barrier_values += mutator->satb_recorded;
  mutator->satb_recorded = 0;
  mutator->fast.marking = 0;
}

/* Allocate black: marks every object in [from, to) live (a walkable run of objects
 * allocated during the cycle). Other threads may set bits in the same bitmap words (GC
 * threads tracing a reference into the run, a mutator marking a medium object next to it),
 * so every bitmap update is an atomic OR; but not one per object: the start bits of one
 * bitmap word (64 heap words) are gathered and ORed at once, and the live-words bits of a
 * run of consecutive objects (a TLAB is one, up to its filler) are set in one call. Setting
 * a bit another thread set too is harmless: the bits only say "live", and nothing traces
 * these objects (their referents were marked when written, by the barrier). Per object this
 * is a header load and a shift, against two atomic ORs (about 3x faster on gcbench). */
static size_t mark_objects_in(ugc_heap *heap, uintptr_t from, uintptr_t to) {
  ugc_moving_space *space = &heap->moving;
  _Atomic uint64_t *starts = (_Atomic uint64_t *)space->start_words;
  size_t bytes = 0, start_index = SIZE_MAX, run_start = 0, run_end = 0;
  uint64_t start_bits = 0;
  for (uintptr_t at = from; at < to;) {
    uint64_t header = ugc_header_load(at);
    size_t total = ugc_header_total(header), word = (at - space->base) >> 3;
    if (ugc_header_type(header) != UGC_FILLER_TYPE) {
      if (word >> 6 != start_index) {
        if (start_bits)
          atomic_fetch_or_explicit(&starts[start_index], start_bits, memory_order_relaxed);
        start_index = word >> 6;
        start_bits = 0;
      }
      start_bits |= UINT64_C(1) << (word & 63);
      if (word != run_end) { /* a filler ended the last run */
        ugc_live_words_set((_Atomic uint64_t *)space->live_words, run_start, run_end);
        run_start = word;
      }
      run_end = word + (total >> 3);
      bytes += total;
    }
    at += total;
  }
  if (start_bits)
    atomic_fetch_or_explicit(&starts[start_index], start_bits, memory_order_relaxed);
  ugc_live_words_set((_Atomic uint64_t *)space->live_words, run_start, run_end);
  return bytes;
}

void ugc_cmark_tlab_retired(ugc_heap *heap, uintptr_t start, uintptr_t end) {
  if (heap->cmark && start < end)
    ranges_add(&heap->cmark->pending, start, end);
}

/* Marking the TLAB here instead of in the collector thread's pass over `pending`: the
 * objects' headers were just written by this thread, so the pass costs a few cache hits
 * per object instead of misses; and the work is paced by allocation, as assists are. The
 * collector thread, which gets a third of the CPUs beside two mutators on 2 CPUs, spent
 * most of the time between the remark and the compaction pause on that pass (mt: 20-27 ms
 * for 60-80 MiB allocated black), while mutators allocated more black objects that the
 * compaction then copied. Sound for the plan's rounds (extend_plan_in_rounds): the TLAB is
 * still open while its bits are set, so no round plans over it, and it is retired under
 * the heap lock afterwards, which orders the bits before any round that sees it retired. */
void ugc_cmark_mark_own_tlab(ugc_mutator *mutator) {
  uintptr_t start = mutator->tlab_start, cursor = mutator->fast.tlab_cursor;
  if (!start || mutator->tlab_marked_to == cursor)
    return;
  size_t bytes = mark_objects_in(mutator->heap, start, cursor);
  __atomic_fetch_add(&mutator->heap->cmark->black_tlab_bytes, bytes, __ATOMIC_RELAXED);
  mutator->tlab_marked_to = cursor;
}

void ugc_cmark_medium_allocated(ugc_heap *heap, uintptr_t hdr, size_t total) {
  ugc_live_mark(&heap->moving, hdr, total);
  heap->cmark->black_medium_bytes += total;
}

/* The TLABs retired so far, for mark_taken. Heap lock held. */
static black_ranges take_retired_locked(ugc_cmark *c) {
  black_ranges taken = c->pending;
  memset(&c->pending, 0, sizeof c->pending);
  return taken;
}

/* Marks the objects of `taken` (collector thread, or the pause) and frees the list. Returns
 * the bytes marked. */
static size_t mark_taken(ugc_heap *heap, black_ranges *taken) {
  size_t bytes = 0;
  for (size_t i = 0; i < taken->count; i++)
    bytes += mark_objects_in(heap, taken->items[i].start, taken->items[i].end);
  free(taken->items);
  __atomic_fetch_add(&heap->cmark->black_tlab_bytes, bytes, __ATOMIC_RELAXED);
  return bytes;
}

/* Marks the objects of the TLABs retired so far (`locked`: in a pause, heap lock held;
 * otherwise while mutators run). Their headers were written before the retiring thread
 * released the heap lock; only slots change since. Returns the bytes marked. */
static size_t mark_retired_tlabs(ugc_heap *heap, bool locked) {
  if (!locked)
    pthread_mutex_lock(&heap->lock);
  black_ranges taken = take_retired_locked(heap->cmark);
  if (!locked)
    pthread_mutex_unlock(&heap->lock);
  return mark_taken(heap, &taken);
}

/* The remark pause's steps, for the trace line (UGC_TRACE). */
typedef struct remark_steps {
  uint64_t retire_ns, buffers_ns, roots_drain_ns, finalize_ns, finish_ns, weaks_ns;
  size_t buffers, objects; /* full barrier buffers taken; objects marked in the pause */
} remark_steps;

typedef struct cycle_times {
  uint64_t initial_ns, concurrent_ns, remark_ns, pause_black_ns, between_ns;
  remark_steps remark;
  unsigned remark_retries; /* stops given up for the barrier's buffers (REMARK_RETRIES) */
  unsigned plan_rounds;    /* extensions of the plan between the pauses */
} cycle_times;

/* Pads the moving space's top to a page boundary with a filler: the plan computed while
 * mutators run covers [base, that boundary), and objects allocated after it start on a
 * page of their own, so the plan can be extended over them (ugc_compact_plan_extend) and
 * no bitmap word is shared across the boundary. Heap lock held. Returns the boundary, or
 * 0 when the space has no room for the padding (the plan is then made in the pause). */
static uintptr_t pad_top_to_page(ugc_moving_space *space) {
  size_t pad = (size_t)(-(space->top - space->base)) & (UGC_PAGE_SIZE - 1);
  if (pad) {
    uintptr_t at = ugc_moving_space_bump(space, pad);
    if (!at)
      return 0;
    *(uint64_t *)at = ugc_filler_header(pad);
  }
  return space->top;
}

/* Remark pause: the rest of marking (bounded: the barrier's buffers, roots again, the
 * drain), then the weak slots. World stopped, heap lock held. Returns the top up to which
 * the plan is computed while mutators run (0: in the compaction pause). */
static uintptr_t remark_pause(ugc_heap *heap, ugc_marker *marker, ugc_mark_totals *totals,
                              remark_steps *steps) {
  uint64_t t0 = ugc_now_ns();
  ugc_tlabs_retire_all(heap);
  ugc_marker_set_mode(marker, false, heap->workers.count);
  uint64_t t1 = ugc_now_ns();
  flush_arg arg = {marker, &heap->stats};
  ugc_heap_for_each_mutator(heap, flush_mutator, &arg);
  steps->buffers = mark_full_buffers(heap, marker);
  uint64_t t2 = ugc_now_ns();
  size_t before = ugc_marker_objects(marker);
  /* Roots again: a referent read from a weak slot during marking may be held only by a
   * root now (roots have no barrier). Everything else they hold is marked already. */
  ugc_marker_visit_roots(marker);
  ugc_marker_drain(marker);
  steps->objects = ugc_marker_objects(marker) - before;
  heap->stats.mark_final_objects += steps->objects;
  uint64_t t3 = ugc_now_ns();
  /* Finalization before the clearing in ugc_marker_finish: resurrected objects count as
   * live there. Objects allocated during marking are live without their bits yet
   * (ugc_mark_is_live_or_new). */
  ugc_finalize_after_mark(heap, marker);
  heap->marking = false;
  heap->satb.black_bytes = 0;
  uint64_t t4 = ugc_now_ns();
  ugc_marker_finish(marker, totals);
  heap->cmark->last_marked = totals->moving_bytes + totals->nonmoving_bytes + totals->large_bytes;
  uint64_t t5 = ugc_now_ns();
  /* Here, not later: once the world runs, a mutator could read a dead referent out of a
   * weak slot and store it where nothing would mark it. */
  ugc_collect_clear_dead_weaks(heap, heap->satb.black_low, heap->moving.top);
  uintptr_t plan_top = pad_top_to_page(&heap->moving);
  uint64_t t6 = ugc_now_ns();
  *steps = (remark_steps){t1 - t0, t2 - t1, t3 - t2,        t4 - t3,
                          t5 - t4, t6 - t5, steps->buffers, steps->objects};
  return plan_top;
}

/* Extending the plan in rounds (docs/design.md, "Extending the plan in rounds"): the
 * compaction pause only has to mark and plan what was allocated after the last round. */
#define PLAN_ROUNDS 8                               /* each over what the last one's took */
#define PLAN_ROUNDS_LEFT_BYTES ((uintptr_t)1 << 20) /* less left: the pause does the rest */
#define PLAN_SMALL_ROUND_BYTES ((uintptr_t)3 * UGC_PAGE_SIZE) /* plan.small_rounds */
#define PLAN_SMALL_ROUNDS 100000

/* The lowest start of a TLAB a mutator still allocates in, or the top when none is open
 * below it. Below it every TLAB has been retired, so it is pending or marked already, and
 * every medium object has its bits (set at allocation). sp_lock (the list of mutators) and
 * heap lock (tlab_start, written only under it) held. */
static uintptr_t open_tlabs_low(ugc_heap *heap) {
  uintptr_t low = heap->moving.top;
  for (ugc_mutator *m = heap->mutators_head; m; m = m->next)
    if (m->tlab_start && m->tlab_start < low)
      low = m->tlab_start;
  return low;
}

/* A mutator in a blocking region cannot allocate until it leaves it, and leaving takes
 * sp_lock: its TLAB can be retired for it (a filler over the rest, the range to `pending`),
 * so that an idle thread's TLAB does not hold the rounds below it for the whole window. Not
 * a thread inside a ugc_reserve sequence (its next allocations must not reach the slow
 * path). Both locks held. */
static void retire_blocked_tlabs(ugc_heap *heap) {
  for (ugc_mutator *m = heap->mutators_head; m; m = m->next)
    if (m->state == UGC_MUTATOR_BLOCKING && m->tlab_start && !m->reserved)
      ugc_tlab_retire(m);
}

/* Extends the plan from plan_top towards the top while mutators run, in rounds. A round
 * retires the TLABs of mutators in blocking regions, takes, under both locks, the lowest
 * open TLAB's start L and the list of retired TLABs,
 * marks those, and extends the plan to the highest page boundary B <= L that no live object
 * crosses (ugc_compact_plan_extend_boundary). That is sound because the bitmaps below L are
 * final once the taken TLABs are marked:
 *  - a TLAB below L was retired before the locks were taken: its range was in the list
 *    taken now or in one an earlier round (or the marking since the remark) marked;
 *  - a TLAB retired after the locks were released starts at L or above (it was open), so
 *    it lies past B and waits in `pending` for the next round or the pause;
 *  - a medium object below L got its bits when it was bumped, under the heap lock, before
 *    the locks were taken here; one bumped later lies at the top or above, past L, and the
 *    bits a mutator sets for it share no bitmap word with the region (B is page aligned);
 *  - the extension reads only bitmap words below B and the plan, which nothing else reads
 *    or writes until the compaction pause (no compaction is in flight: run_cycle waited for
 *    the last one, and this thread starts them).
 * Pins: a pin made after the snapshot, or a pinned object at or above plan_top, makes the
 * pause plan again from scratch (compaction_pause), whatever the rounds did; the rounds
 * stop as soon as they see one, there being no use in extending a plan that is dropped.
 * Rounds stop when less than PLAN_ROUNDS_LEFT_BYTES is left above B, when a round gains
 * nothing (a running mutator keeps a TLAB open low, one that has not allocated since it
 * opened it: the pause does the rest, as without rounds)
 * or after PLAN_ROUNDS. Returns the rounds that extended the plan. */
static unsigned extend_plan_in_rounds(ugc_heap *heap, uintptr_t plan_top) {
  ugc_compact_plan *plan = &heap->plan;
  bool small = ugc_inject("plan.small_rounds");
  unsigned rounds = 0, max_rounds = small ? PLAN_SMALL_ROUNDS : PLAN_ROUNDS;
  while (rounds < max_rounds) {
    pthread_mutex_lock(&heap->sp_lock); /* sp_lock before the heap lock (mutator.c) */
    ugc_wait_pause_end_locked(heap, "the plan's rounds");
    pthread_mutex_lock(&heap->lock);
    bool replan = ugc_pins_changed(heap) || ugc_pins_at_or_above(heap, plan_top);
    retire_blocked_tlabs(heap);
    uintptr_t limit = open_tlabs_low(heap), top = heap->moving.top;
    black_ranges taken = take_retired_locked(heap->cmark);
    pthread_mutex_unlock(&heap->lock);
    pthread_mutex_unlock(&heap->sp_lock);
    mark_taken(heap, &taken);
    if (replan)
      break;
    /* plan.small_rounds: the first boundary past steps of 3 pages (an object longer than
     * that crosses some of them: then a step further). */
    uintptr_t to = plan->old_top;
    for (uintptr_t cap = plan->old_top; to <= plan->old_top && cap < limit;) {
      cap = small && limit - cap > PLAN_SMALL_ROUND_BYTES ? cap + PLAN_SMALL_ROUND_BYTES : limit;
      to = ugc_compact_plan_extend_boundary(plan, cap);
    }
    if (to <= plan->old_top || ugc_compact_plan_extend(plan, to) != 0)
      break;
    rounds++;
    /* What is left is measured now, not at the round's start: the round's marking took
     * long enough for mutators to allocate hundreds of MiB meanwhile (the first cycle of
     * frag 4 GiB: 200-650 MiB planned in the pause, 6-77 ms, with the stale measure). */
    pthread_mutex_lock(&heap->lock);
    top = heap->moving.top;
    pthread_mutex_unlock(&heap->lock);
    if (!small && top - to < PLAN_ROUNDS_LEFT_BYTES)
      break;
  }
  return rounds;
}

/* What mutators allocated since the plan, before the compaction pause: the plan extended
 * over it in rounds, then the TLABs retired meanwhile marked. The less is left, the shorter
 * the pause. Returns the rounds. */
static unsigned catch_up(ugc_heap *heap, uintptr_t plan_top, const ugc_cycle_work *work) {
  unsigned rounds = plan_top && work->planned ? extend_plan_in_rounds(heap, plan_top) : 0;
  __atomic_fetch_add(&heap->cmark->plan_rounds, rounds, __ATOMIC_RELAXED);
  for (int round = 0; round < 4 && mark_retired_tlabs(heap, false); round++)
    ;
  return rounds;
}

/* Between the remark and the compaction pause, while mutators run (and keep allocating
 * black): the retired TLABs below plan_top get their bits, the non-moving and large
 * spaces are swept, the plan is computed from the now final bitmaps below plan_top and
 * extended in rounds over what mutators allocated meanwhile. Returns the rounds. */
static unsigned between_pauses(ugc_heap *heap, uintptr_t plan_top, ugc_cycle_work *work) {
  ugc_cmark *c = heap->cmark;
  pthread_mutex_lock(&c->lock);
  void (*hook)(void *) = c->between_pauses;
  void *hook_data = c->between_pauses_data;
  pthread_mutex_unlock(&c->lock);
  if (hook)
    hook(hook_data);
  mark_retired_tlabs(heap, false); /* every range below plan_top was pending at the remark */
  pthread_mutex_lock(&heap->lock);
  uint64_t sweep_start = ugc_now_ns();
  ugc_collect_sweep(heap, work);
  heap->allocate_black_other = false;
  work->sweep_ns = ugc_now_ns() - sweep_start;
  ugc_pins_snapshot(heap, plan_top);
  pthread_mutex_unlock(&heap->lock);
  if (plan_top)
    ugc_collect_plan(heap, plan_top, heap->moving.limit, work);
  pthread_mutex_lock(&c->lock);
  hook = c->after_plan;
  hook_data = c->after_plan_data;
  pthread_mutex_unlock(&c->lock);
  if (hook)
    hook(hook_data);
  return catch_up(heap, plan_top, work);
}

/* Compaction pause: the last TLABs get their bits, the plan is extended over what was
 * allocated since its last round (or since plan_top), then references, hand-off and the cycle's
 * statistics. World stopped, heap lock held. */
static void compaction_pause(ugc_heap *heap, uintptr_t plan_top, ugc_mark_totals *totals,
                             ugc_cycle_work *work, const ugc_cycle_clock *clock,
                             cycle_times *times) {
  ugc_cmark *c = heap->cmark;
  ugc_moving_space *space = &heap->moving;
  ugc_tlabs_retire_all(heap);
  /* The room mutators had for this cycle ends here: compaction gives back what is free. */
  ugc_sizing_mark_ended(heap);
  heap->allocate_black = false;
  uint64_t black_start = ugc_now_ns();
  mark_retired_tlabs(heap, true);
  uint64_t plan_start = ugc_now_ns();
  /* No plan yet, or it would move a pinned object: one pinned since the plan, or one that
   * was allocated above plan_top (black) and pinned before it, which the extension would
   * slide (stress/test_pin_io[copy,thread] saw a pinned object move 2 pages down, and the
   * read(2) into it overwrite the headers of the objects that took its place). */
  size_t in_pause_planned = 0; /* bytes the pause plans, for the trace line */
  if (!plan_top || ugc_pins_changed(heap) || ugc_pins_at_or_above(heap, plan_top)) {
    in_pause_planned = space->top - space->base;
    ugc_pins_snapshot(heap, plan_top);
    ugc_collect_plan(heap, space->top, 0, work);
  } else if (work->planned) {
    in_pause_planned = space->top - heap->plan.old_top; /* after the last round */
    if (ugc_compact_plan_extend(&heap->plan, space->top) != 0) {
      in_pause_planned = space->top - space->base;
      ugc_collect_plan(heap, space->top, 0, work); /* cannot happen with reserve_top */
    }
  }
  uint64_t plan_end = ugc_now_ns();
  work->plan_ns += plan_end - plan_start;
  times->pause_black_ns = plan_end - black_start;
  size_t black = c->black_tlab_bytes + c->black_medium_bytes;
  heap->stats.mark_black_bytes += black;
  totals->moving_bytes += black;
  work->used_before = space->top - space->base;
  c->marked_top = space->top;
  snprintf(heap->cycle_note, sizeof heap->cycle_note,
           " concurrent(marking=%.2fms black=%.1fMiB after-remark=%.2fms plan-rounds=%u "
           "in-pause=%.2fms in-pause-planned=%.1fMiB) remark(retries=%u retire=%.2fms "
           "buffers=%zu/%.2fms "
           "roots+drain=%zu/%.2fms finalize=%.2fms finish=%.2fms weaks=%.2fms)",
           times->concurrent_ns / 1e6, black / 1048576.0, times->between_ns / 1e6,
           times->plan_rounds, times->pause_black_ns / 1e6, in_pause_planned / 1048576.0,
           times->remark_retries, times->remark.retire_ns / 1e6, times->remark.buffers,
           times->remark.buffers_ns / 1e6, times->remark.objects,
           times->remark.roots_drain_ns / 1e6, times->remark.finalize_ns / 1e6,
           times->remark.finish_ns / 1e6, times->remark.weaks_ns / 1e6);
  ugc_collect_compact_locked(heap, totals, work, clock);
}

/* Stops the world and takes the heap lock; returns the pause's start. */
static uint64_t pause_begin(ugc_heap *heap) {
  ugc_world_stop(heap, NULL, false);
  pthread_mutex_lock(&heap->lock);
  return ugc_now_ns();
}

/* Clears the mark bitmaps while mutators run, so that the initial pause does not (2.5 ms
 * of a 2.6 ms pause at a 1 GiB heap). Only the previous cycle's marks are there, all below
 * its old top (objects allocated black are below it too), and nothing reads them once its
 * compaction has finished: allocation never touches the bitmaps outside marking, and only
 * this thread starts cycles and compactions. */
static void clear_bitmaps_early(ugc_heap *heap) {
  ugc_cmark *c = heap->cmark;
  pthread_mutex_lock(&heap->lock);
  uintptr_t dirty_top = dirty_bitmap_top(heap);
  pthread_mutex_unlock(&heap->lock);
  if (dirty_top > heap->moving.base)
    ugc_moving_space_clear_bitmap_to(&heap->moving, dirty_top);
  c->clean_to = dirty_top;
}

/* Tells the threads waiting for a cycle (ugc_cmark_collect) that marking runs, so that they
 * mark too, or that it no longer does. */
static void set_waiters_marking(ugc_cmark *c, bool marking) {
  pthread_mutex_lock(&c->lock);
  c->marking = marking;
  if (marking)
    pthread_cond_broadcast(&c->done);
  pthread_mutex_unlock(&c->lock);
}

static void run_cycle(ugc_heap *heap) {
  ugc_cmark *c = heap->cmark;
  /* Let a compaction in flight finish while mutators still run (the pause checks again). */
  heap->backend->compact_wait(heap);
  clear_bitmaps_early(heap);

  ugc_world_stop(heap, NULL, false);
  pthread_mutex_lock(&heap->lock);
  uint64_t cpu_start = ugc_thread_cpu_ns();
  uint64_t helpers_start = ugc_workers_cpu_ns(&heap->workers);
  uint64_t start = ugc_now_ns();
  uint64_t verify_ns;
  ugc_marker *marker = initial_pause(heap, &verify_ns);
  cycle_times times = {0};
  times.initial_ns = ugc_now_ns() - start - verify_ns;
  ugc_stats_record_pause(&heap->stats.pause_mark, times.initial_ns);
  ugc_stats_record_pause(&heap->stats.pause, times.initial_ns);
  pthread_mutex_unlock(&heap->lock);
  ugc_world_resume(heap, NULL, false);
  set_waiters_marking(c, true);

  uint64_t concurrent_start = ugc_now_ns();
  mark_concurrently(heap, marker, c->threads);
  set_waiters_marking(c, false);
  ugc_assist_end(heap); /* before the remark pause: an assisting mutator is not parked */
  times.concurrent_ns = ugc_now_ns() - concurrent_start;

  uint64_t remark_start = pause_begin(heap);
  while (times.remark_retries < REMARK_RETRIES &&
         ugc_satb_full_count(&heap->satb) > REMARK_MAX_FULL_BUFFERS) {
    uint64_t stop_ns = ugc_now_ns() - remark_start;
    ugc_stats_record_pause(&heap->stats.pause_mark, stop_ns); /* it did stop the world */
    ugc_stats_record_pause(&heap->stats.pause, stop_ns);
    heap->stats.mark_remark_retries++;
    pthread_mutex_unlock(&heap->lock);
    ugc_world_resume(heap, NULL, false);
    times.remark_retries++;
    uint64_t again = ugc_now_ns();
    mark_concurrently(heap, marker, c->threads);
    times.concurrent_ns += ugc_now_ns() - again;
    remark_start = pause_begin(heap);
  }
  heap->stats.mark_concurrent_cycles++;
  heap->stats.mark_concurrent_ns += times.concurrent_ns;
  ugc_mark_totals totals;
  uintptr_t plan_top = remark_pause(heap, marker, &totals, &times.remark);
  uint64_t remark_end = ugc_now_ns();
  times.remark_ns = remark_end - remark_start;
  ugc_stats_record_pause(&heap->stats.pause_mark, times.remark_ns);
  ugc_stats_record_pause(&heap->stats.pause, times.remark_ns);
  ugc_collect_mark_done(heap, &totals, times.remark_ns);
  pthread_mutex_unlock(&heap->lock);
  ugc_world_resume(heap, NULL, false);
  ugc_marker_destroy(marker); /* freeing the stacks can take milliseconds: not in the pause */

  ugc_cycle_work work = {.initial_ns = times.initial_ns, .remark_ns = times.remark_ns};
  uint64_t between_start = ugc_now_ns();
  times.plan_rounds = between_pauses(heap, plan_top, &work);
  if (heap->backend->compact_prepare) { /* no compaction in flight: this thread starts them */
    heap->backend->compact_prepare(heap);
    /* Freeing from-space can take milliseconds, during which mutators allocate. */
    times.plan_rounds += catch_up(heap, plan_top, &work);
  }
  times.between_ns = ugc_now_ns() - between_start;

  uint64_t compaction_start = pause_begin(heap);
  heap->stats.plan_concurrent_ns += times.between_ns;
  /* The CPU of the whole cycle counts, the marking's and the plan's included. */
  ugc_cycle_clock clock = {compaction_start, cpu_start, helpers_start, 0, verify_ns};
  compaction_pause(heap, plan_top, &totals, &work, &clock, &times);
  pthread_mutex_unlock(&heap->lock);
  ugc_world_resume(heap, NULL, true);
  if (heap->backend->compact_resumed)
    heap->backend->compact_resumed(heap); /* what the pause left to start (backend.h) */
  /* The card table the mutators marked until the pause: cleared now, not in the next
   * pause. Only this thread swaps tables (in the compaction pause). */
  ugc_moving_space_clear_spare_cards(&heap->moving);
  ugc_event_pause_done(heap);
}

void ugc_cmark_set_between_pauses_hook(ugc_heap *heap, void (*hook)(void *), void *data) {
  ugc_cmark *c = heap->cmark;
  pthread_mutex_lock(&c->lock);
  c->between_pauses = hook;
  c->between_pauses_data = data;
  pthread_mutex_unlock(&c->lock);
}

uint64_t ugc_cmark_plan_rounds(ugc_heap *heap) {
  return heap->cmark ? __atomic_load_n(&heap->cmark->plan_rounds, __ATOMIC_RELAXED) : 0;
}

void ugc_cmark_set_after_plan_hook(ugc_heap *heap, void (*hook)(void *), void *data) {
  ugc_cmark *c = heap->cmark;
  pthread_mutex_lock(&c->lock);
  c->after_plan = hook;
  c->after_plan_data = data;
  pthread_mutex_unlock(&c->lock);
}

/* ---- the collector thread ---- */

static void *collector_main(void *raw) {
  ugc_heap *heap = raw;
  ugc_cmark *c = heap->cmark;
  pthread_mutex_lock(&c->lock);
  for (;;) {
    while (!c->stopping && (c->requested == c->completed || c->hold))
      pthread_cond_wait(&c->wake, &c->lock);
    if (c->stopping)
      break;
    c->started++;
    c->active = true;
    pthread_mutex_unlock(&c->lock);
    run_cycle(heap);
    pthread_mutex_lock(&c->lock);
    c->completed++;
    c->active = false;
    pthread_cond_broadcast(&c->done);
  }
  pthread_mutex_unlock(&c->lock);
  return NULL;
}

/* c->lock held. */
static void ensure_thread(ugc_heap *heap) {
  ugc_cmark *c = heap->cmark;
  if (c->thread_running && c->owner_pid == getpid())
    return;
  if (ugc_thread_create_quiet(&c->thread, collector_main, heap, "uffdgc-collect") != 0)
    ugc_fatal("cannot start the concurrent-marking thread");
  c->thread_running = true;
  c->owner_pid = getpid();
}

int ugc_cmark_init(ugc_heap *heap) {
  ugc_satb_init(&heap->satb);
  ugc_assist_init(&heap->assist);
  if (!heap->config.concurrent_mark)
    return 0;
  ugc_cmark *c = calloc(1, sizeof *c);
  if (!c)
    return -1;
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->wake, NULL);
  pthread_cond_init(&c->done, NULL);
  /* Half the GC threads mark while mutators run (one on 2 CPUs): they must not take the
   * CPUs from the mutators they spare a pause. */
  c->threads = heap->workers.count > 1 ? heap->workers.count / 2 : 1;
  heap->cmark = c;
  return 0;
}

void ugc_cmark_destroy(ugc_heap *heap) {
  ugc_cmark *c = heap->cmark;
  if (c) {
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_broadcast(&c->wake);
    bool join = c->thread_running && c->owner_pid == getpid();
    pthread_mutex_unlock(&c->lock);
    if (join)
      pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->done);
    free(c->pending.items);
    free(c);
    heap->cmark = NULL;
  }
  ugc_satb_destroy(&heap->satb);
  ugc_assist_destroy(&heap->assist);
}

/* c->lock held: the cycle that satisfies a request. */
static uint64_t request_locked(ugc_heap *heap, bool fresh) {
  ugc_cmark *c = heap->cmark;
  uint64_t pending_from = fresh ? c->started : c->completed;
  if (c->requested == pending_from)
    c->requested++;
  ensure_thread(heap);
  pthread_cond_signal(&c->wake);
  return c->requested;
}

void ugc_cmark_start(ugc_heap *heap) {
  ugc_cmark *c = heap->cmark;
  pthread_mutex_lock(&c->lock);
  request_locked(heap, false);
  pthread_mutex_unlock(&c->lock);
}

void ugc_cmark_collect(ugc_heap *heap, ugc_mutator *self, bool fresh) {
  ugc_cmark *c = heap->cmark;
  pthread_mutex_lock(&c->lock);
  uint64_t ticket = request_locked(heap, fresh);
  bool done = c->completed >= ticket;
  pthread_mutex_unlock(&c->lock);
  if (done)
    return;
  if (self)
    ugc_blocking_enter(self);
  int cancel = ugc_cancel_off(); /* cancelled here, the thread would keep the marker's lock */
  pthread_mutex_lock(&c->lock);
  uint64_t helped = 0; /* the last cycle whose marking this thread took part in */
  while (c->completed < ticket) {
    /* Marking runs on one GC thread beside the mutators (on 2 CPUs), and this thread has
     * nothing to do but wait for it: it marks too, as a mutator assist, once per cycle
     * (until no work is left to take), outside its blocking region. */
    if (self && c->marking && c->started != helped) {
      helped = c->started;
      pthread_mutex_unlock(&c->lock);
      ugc_blocking_leave(self);
      ugc_assist_while_waiting(self);
      ugc_blocking_enter(self);
      pthread_mutex_lock(&c->lock);
      continue;
    }
    pthread_cond_wait(&c->done, &c->lock);
  }
  pthread_mutex_unlock(&c->lock);
  ugc_cancel_restore(cancel);
  if (self)
    ugc_blocking_leave(self);
}

void ugc_cmark_mutator_detach(ugc_mutator *mutator) {
  ugc_heap *heap = mutator->heap;
  ugc_satb_buffer *buffer = mutator->satb;
  mutator->satb = NULL;
  heap->stats.mark_barrier_values += mutator->satb_recorded;
  mutator->satb_recorded = 0;
  if (!buffer)
    return;
  pthread_mutex_lock(&heap->satb.lock);
  if (buffer->count) {
    buffer->next = heap->satb.full;
    heap->satb.full = buffer;
    __atomic_store_n(&heap->satb.full_count, heap->satb.full_count + 1, __ATOMIC_RELAXED);
  } else {
    buffer->next = heap->satb.spare;
    heap->satb.spare = buffer;
  }
  pthread_mutex_unlock(&heap->satb.lock);
}

/* The calling thread's RUNNING mutator of this heap, or NULL. sp_lock held. */
static ugc_mutator *running_self(ugc_heap *heap) {
  for (ugc_mutator *m = heap->mutators_head; m; m = m->next)
    if (pthread_equal(m->thread, pthread_self()) && m->state == UGC_MUTATOR_RUNNING)
      return m;
  return NULL;
}

void ugc_cmark_fork_prepare(ugc_heap *heap) {
  ugc_cmark *c = heap->cmark;
  if (!c)
    return;
  /* The cycle's pauses must not wait for this thread while it waits for the cycle. */
  pthread_mutex_lock(&heap->sp_lock);
  ugc_mutator *self = running_self(heap);
  if (self) {
    self->state = UGC_MUTATOR_BLOCKING;
    pthread_cond_broadcast(&heap->parked_cond);
  }
  pthread_mutex_unlock(&heap->sp_lock);
  int cancel = ugc_cancel_off();
  pthread_mutex_lock(&c->lock);
  c->hold = true;
  while (c->active)
    pthread_cond_wait(&c->done, &c->lock);
  pthread_mutex_unlock(&c->lock);
  if (self) {
    pthread_mutex_lock(&heap->sp_lock);
    while (heap->gc_in_progress)
      pthread_cond_wait(&heap->resume_cond, &heap->sp_lock);
    self->state = UGC_MUTATOR_RUNNING;
    pthread_mutex_unlock(&heap->sp_lock);
  }
  ugc_cancel_restore(cancel);
}

void ugc_cmark_fork_parent(ugc_heap *heap) {
  ugc_cmark *c = heap->cmark;
  if (!c)
    return;
  pthread_mutex_lock(&c->lock);
  c->hold = false;
  pthread_cond_broadcast(&c->wake);
  pthread_mutex_unlock(&c->lock);
}

/* The child collects with stop-the-world marking: it has none of the parent's threads,
 * and a child usually execs or exits soon. (A concurrent cycle in a child of a process that
 * had never collected lost objects of the vanished threads about once in 15 runs of
 * test_runtime_fork with the copy backend; the cause was not found.) */
void ugc_cmark_fork_child(ugc_heap *heap) {
  ugc_cmark *c = heap->cmark;
  pthread_mutex_init(&heap->satb.lock, NULL);
  ugc_assist_fork_child(&heap->assist);
  if (!c)
    return;
  heap->cmark = NULL;
  free(c->pending.items);
  free(c);
}
