/* The concurrent-marking cycle and its collector thread (see concurrent_mark.h and
 * docs/design.md, "Concurrent marking"). */
#include "runtime/concurrent_mark.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "mark/mark.h"
#include "os/log.h"
#include "os/signals.h"
#include "os/time.h"
#include "runtime/heap.h"

/* Concurrent drains stop taking the barrier's buffers after this many rounds (a mutator
 * that fills them as fast as they are marked must not keep the cycle open forever); what
 * is left is marked in the final pause. */
#define MAX_CONCURRENT_ROUNDS 64

typedef struct black_range {
  uintptr_t start, end;
} black_range;

typedef struct black_ranges {
  black_range *items;
  size_t count, capacity;
} black_ranges;

/* False when out of memory: the range is then left to the final pause's walk. */
static bool ranges_add(black_ranges *list, uintptr_t start, uintptr_t end) {
  if (list->count == list->capacity) {
    size_t capacity = list->capacity ? 2 * list->capacity : 256;
    black_range *items = realloc(list->items, capacity * sizeof *items);
    if (!items)
      return false;
    list->items = items;
    list->capacity = capacity;
  }
  list->items[list->count++] = (black_range){start, end};
  return true;
}

typedef struct ugc_cmark {
  pthread_mutex_t lock;
  pthread_cond_t wake, done;
  uint64_t requested, started, completed; /* cycles */
  bool active;                            /* a cycle runs (started, not completed) */
  bool hold;                              /* fork in progress: start no cycle */
  bool stopping;                          /* heap destruction */
  bool thread_running;
  pid_t owner_pid; /* the process the thread runs in */
  pthread_t thread;
  unsigned threads; /* GC threads marking while mutators run */
  /* Allocate black: TLABs retired during marking (heap lock) wait in `pending` until the
   * collector thread marks their objects while mutators run; marked ranges move to `marked`
   * (collector thread only), which the final pause skips. */
  black_ranges pending, marked;
  size_t black_bytes; /* marked from ranges so far in this cycle */
  /* The mark bitmaps are clean below this (cleared by the collector thread before the
   * initial pause, see clear_bitmaps_early). */
  uintptr_t clean_to;
} ugc_cmark;

/* ---- the cycle ---- */

static void set_marking(ugc_mutator *mutator, void *data) {
  mutator->fast.marking = *(const bool *)data;
}

/* Initial pause: roots into the mark stack, barrier on. World stopped, heap lock held.
 * Sets *verify_ns to the time spent verifying (not pause time). */
static ugc_marker *initial_pause(ugc_heap *heap, uint64_t *verify_ns) {
  ugc_moving_space *space = &heap->moving;
  heap->backend->compact_wait(heap);
  ugc_event_cycle_start(heap, heap->stats.cycles + 1);
  ugc_tlabs_retire_all(heap);
  ugc_sizing_mark_started(heap);
  *verify_ns = heap->config.verify ? ugc_collect_verify_locked(heap, "before") : 0;
  /* Normally clean already (clear_bitmaps_early); a cycle that began without it clears
   * here what the last cycle marked below its old top. */
  if (heap->plan.old_top > heap->cmark->clean_to)
    ugc_moving_space_clear_bitmap_to(space, heap->plan.old_top);
  heap->cmark->clean_to = 0; /* marking dirties them from now on */
  uintptr_t snapshot_top = space->top;
  heap->satb.black_low = snapshot_top;
  heap->satb.black_bytes = space->base + space->reserved_bytes - snapshot_top;
  ugc_marker *marker = ugc_marker_create(heap, snapshot_top, true);
  ugc_marker_visit_roots(marker);
  heap->marking = true;
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

static void mark_retired_tlabs(ugc_heap *heap);

static void mark_concurrently(ugc_heap *heap, ugc_marker *marker, unsigned threads) {
  ugc_marker_set_mode(marker, true, threads);
  for (int round = 0; round < MAX_CONCURRENT_ROUNDS; round++) {
    ugc_marker_drain(marker);
    mark_retired_tlabs(heap);
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
 * allocated during marking). Atomic bitmap updates: GC threads may be marking objects
 * below snapshot_top whose bitmap words this run's first word shares. */
static size_t mark_objects_in(ugc_heap *heap, uintptr_t from, uintptr_t to) {
  size_t bytes = 0;
  for (uintptr_t at = from; at < to;) {
    uint64_t header = ugc_header_load(at);
    size_t total = ugc_header_total(header);
    if (ugc_header_type(header) != UGC_FILLER_TYPE) {
      ugc_live_mark(&heap->moving, at, total);
      bytes += total;
    }
    at += total;
  }
  return bytes;
}

void ugc_cmark_tlab_retired(ugc_heap *heap, uintptr_t start, uintptr_t end) {
  if (heap->cmark && start < end)
    ranges_add(&heap->cmark->pending, start, end);
}

/* While mutators run: marks the objects of the TLABs retired so far. Their headers were
 * written before the retiring thread released the heap lock; only slots change since. */
static void mark_retired_tlabs(ugc_heap *heap) {
  ugc_cmark *c = heap->cmark;
  pthread_mutex_lock(&heap->lock);
  black_ranges taken = c->pending;
  memset(&c->pending, 0, sizeof c->pending);
  pthread_mutex_unlock(&heap->lock);
  for (size_t i = 0; i < taken.count; i++) {
    c->black_bytes += mark_objects_in(heap, taken.items[i].start, taken.items[i].end);
    if (!ranges_add(&c->marked, taken.items[i].start, taken.items[i].end))
      ugc_fatal("out of memory recording allocated-black ranges");
  }
  free(taken.items);
}

static int range_order(const void *a, const void *b) {
  uintptr_t x = ((const black_range *)a)->start, y = ((const black_range *)b)->start;
  return x < y ? -1 : x > y;
}

/* Final pause: every object in [from, top) was allocated during marking (allocation only
 * bumps, and TLABs are retired, so the range is walkable); those in ranges marked while
 * mutators ran are skipped. Returns the bytes of all of them. */
static size_t mark_new_objects(ugc_heap *heap, uintptr_t from) {
  ugc_cmark *c = heap->cmark;
  black_ranges *done = &c->marked;
  for (size_t i = 0; i < c->pending.count; i++) /* retired since the last concurrent pass */
    if (!ranges_add(done, c->pending.items[i].start, c->pending.items[i].end))
      ugc_fatal("out of memory recording allocated-black ranges");
  size_t skip_from = done->count - c->pending.count;
  size_t bytes = c->black_bytes;
  for (size_t i = skip_from; i < done->count; i++)
    bytes += mark_objects_in(heap, done->items[i].start, done->items[i].end);
  c->pending.count = 0;
  if (done->count > 1) /* items is NULL while nothing was recorded */
    qsort(done->items, done->count, sizeof *done->items, range_order);
  uintptr_t at = from;
  for (size_t i = 0; i <= done->count; i++) {
    uintptr_t gap_end = i < done->count ? done->items[i].start : heap->moving.top;
    if (gap_end > at) /* medium objects, bumped one by one */
      bytes += mark_objects_in(heap, at, gap_end);
    if (i < done->count && done->items[i].end > at)
      at = done->items[i].end;
  }
  done->count = 0;
  c->black_bytes = 0;
  return bytes;
}

typedef struct cycle_times {
  uint64_t initial_ns, concurrent_ns, remark_ns, black_ns;
  size_t black_bytes;
} cycle_times;

/* Final pause: the rest of marking, then the rest of the cycle. World stopped, heap lock
 * held. */
static void final_pause(ugc_heap *heap, ugc_marker *marker, const ugc_cycle_clock *clock,
                        cycle_times *times) {
  ugc_sizing_mark_ended(heap);
  ugc_tlabs_retire_all(heap);
  ugc_marker_set_mode(marker, false, heap->workers.count);
  flush_arg arg = {marker, &heap->stats};
  ugc_heap_for_each_mutator(heap, flush_mutator, &arg);
  mark_full_buffers(heap, marker);
  size_t before = ugc_marker_objects(marker);
  /* Roots again: a referent read from a weak slot during marking may be held only by a
   * root now (roots have no barrier). Everything else they hold is marked already. */
  ugc_marker_visit_roots(marker);
  ugc_marker_drain(marker);
  heap->stats.mark_final_objects += ugc_marker_objects(marker) - before;
  uint64_t black_start = ugc_now_ns();
  times->remark_ns = black_start - clock->pause_start;
  size_t black = mark_new_objects(heap, heap->satb.black_low);
  times->black_ns = ugc_now_ns() - black_start;
  times->black_bytes = black;
  heap->stats.mark_black_bytes += black;
  /* For the cycle's trace line (collect.c). */
  snprintf(heap->cycle_note, sizeof heap->cycle_note,
           " concurrent(initial=%.2fms marking=%.2fms remark=%.2fms black=%.2fms/%.1fMiB)",
           times->initial_ns / 1e6, times->concurrent_ns / 1e6, times->remark_ns / 1e6,
           times->black_ns / 1e6, black / 1048576.0);
  heap->marking = false;
  heap->satb.black_bytes = 0;
  ugc_mark_totals totals;
  ugc_marker_finish(marker, &totals);
  totals.moving_bytes += black;
  size_t used_before = heap->moving.top - heap->moving.base;
  ugc_collect_finish_locked(heap, &totals, used_before, clock);
}

/* Clears the mark bitmaps while mutators run, so that the initial pause does not (2.5 ms
 * of a 2.6 ms pause at a 1 GiB heap). Only the previous cycle's marks are there, all below
 * its old top (objects allocated black are below it too), and nothing reads them once its
 * compaction has finished: allocation never touches the bitmaps outside marking, and only
 * this thread starts cycles and compactions. */
static void clear_bitmaps_early(ugc_heap *heap) {
  ugc_cmark *c = heap->cmark;
  pthread_mutex_lock(&heap->lock);
  uintptr_t dirty_top = heap->plan.old_top;
  pthread_mutex_unlock(&heap->lock);
  if (dirty_top > heap->moving.base)
    ugc_moving_space_clear_bitmap_to(&heap->moving, dirty_top);
  c->clean_to = dirty_top;
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
  uint64_t initial = ugc_now_ns() - start - verify_ns;
  times.initial_ns = initial;
  ugc_stats_record_pause(&heap->stats.pause_mark, initial);
  ugc_stats_record_pause(&heap->stats.pause, initial);
  pthread_mutex_unlock(&heap->lock);
  ugc_world_resume(heap, NULL, false);

  uint64_t concurrent_start = ugc_now_ns();
  mark_concurrently(heap, marker, c->threads);
  uint64_t concurrent_ns = ugc_now_ns() - concurrent_start;

  ugc_world_stop(heap, NULL, false);
  pthread_mutex_lock(&heap->lock);
  heap->stats.mark_concurrent_cycles++;
  heap->stats.mark_concurrent_ns += concurrent_ns;
  /* The CPU the marking took so far counts; the final pause adds its own. */
  ugc_cycle_clock clock = {ugc_now_ns(), cpu_start, helpers_start, 0, verify_ns};
  times.concurrent_ns = concurrent_ns;
  final_pause(heap, marker, &clock, &times);
  pthread_mutex_unlock(&heap->lock);
  ugc_world_resume(heap, NULL, true);
  ugc_event_pause_done(heap);
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
    free(c->marked.items);
    free(c);
    heap->cmark = NULL;
  }
  ugc_satb_destroy(&heap->satb);
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
  pthread_mutex_lock(&c->lock);
  while (c->completed < ticket)
    pthread_cond_wait(&c->done, &c->lock);
  pthread_mutex_unlock(&c->lock);
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
  if (!c)
    return;
  heap->cmark = NULL;
  free(c->pending.items);
  free(c->marked.items);
  free(c);
}
