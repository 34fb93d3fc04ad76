/* One collection cycle and the public entry points that run one. With stop-the-world
 * marking (config.concurrent_mark 0) the world is stopped once per cycle; the stop is
 * recorded as one pause, and its two phases separately:
 *
 *   retire TLABs -> (verify) -> mark -> weak slots -> sweep non-moving, free large -> plan
 *     [marking phase ends]
 *   update roots, weak slots, non-moving and large objects -> backend hand-off (stw: all of
 *     the compaction) -> top = new_top -> (verify: stw, or mode 2)  [compaction phase ends]
 *
 * With concurrent marking (runtime/concurrent_mark.c) the same steps run in three pauses
 * and between them: this file keeps the steps, that one the order. The plan (forwarding)
 * is preparation for compaction, but it belongs with marking: it only reads the mark
 * bitmaps, so it runs while mutators run once marking is complete, as in Android's design.
 * The compaction phase is what a concurrent backend needs the world stopped for: roots and
 * the kernel hand-off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "heap/vm.h"
#include "mark/mark.h"
#include "os/log.h"
#include "os/time.h"
#include "runtime/addrmap.h"
#include "runtime/concurrent_mark.h"
#include "runtime/heap.h"
#include "runtime/hooks.h"
#include "runtime/identity.h"
#include "runtime/trace.h"
#include "runtime/verify.h"

#define DENSE_THRESHOLD 0.95

/* ---- reference updating ---- */

typedef struct update_tracer {
  ugc_tracer tracer;
  const ugc_compact_plan *plan;
  ugc_addrmap *seen; /* root slots already updated, or NULL (object slots are unique) */
} update_tracer;

static void update_visit(ugc_tracer *tracer, void *slot, const ugc_tag_rule *rule) {
  update_tracer *u = (update_tracer *)tracer;
  if (u->seen) {
    /* A slot reported twice (rooted twice, or by two enumerator calls) must move once. */
    bool inserted = true;
    if (!ugc_addrmap_put(u->seen, (uintptr_t)slot, 0, &inserted))
      ugc_fatal("out of memory while updating roots");
    if (!inserted)
      return;
  }
  ugc_compact_update_slot(u->plan, slot, rule);
}

static bool update_cell(uintptr_t hdr, void *data) {
  update_tracer *u = data;
  ugc_object_visit(u->plan->types, ugc_header_load(hdr), (void *)(hdr + UGC_HEADER_BYTES),
                   &u->tracer);
  return true;
}

/* Updating the slots of non-moving and large objects is split into items that the worker
 * pool shares: one per non-moving span, one per large object, or one per piece of a large
 * reference array (a run with ~140 arrays of 160 KB spent 16-20 ms here on one thread).
 * Object slots are unique and the plan is read-only, so items need no synchronisation. */
#define UPDATE_PIECE_SLOTS 8192u                   /* 64 KiB of references per item */
#define UPDATE_PARALLEL_BYTES ((size_t)256 * 1024) /* below this, one thread is faster */

typedef struct update_item {
  uint32_t kind;  /* UPDATE_SPAN or UPDATE_LARGE */
  uint32_t piece; /* large objects: the piece of the element slots (0 = also the rest) */
  size_t index;   /* the span or the large object */
} update_item;

enum { UPDATE_SPAN, UPDATE_LARGE };

typedef struct update_job {
  const ugc_compact_plan *plan;
  const ugc_heap *heap;
  update_item *items;
  size_t count, capacity;
  size_t bytes; /* of objects to update: decides whether to share */
} update_job;

static bool add_item(update_job *job, uint32_t kind, size_t index, uint32_t piece) {
  if (job->count == job->capacity) {
    size_t capacity = job->capacity ? 2 * job->capacity : 256;
    update_item *items = realloc(job->items, capacity * sizeof *items);
    if (!items)
      return false;
    job->items = items;
    job->capacity = capacity;
  }
  job->items[job->count++] = (update_item){kind, piece, index};
  return true;
}

/* How many pieces of element slots a REF_ARRAY object has beyond the first (0 for any
 * other object). */
static size_t extra_pieces(const ugc_type_info *type, uint64_t header) {
  size_t payload = ugc_header_payload(header);
  if (type->layout != UGC_LAYOUT_REF_ARRAY || payload < type->fixed_size + 8)
    return 0;
  size_t slots = (payload - type->fixed_size) / 8;
  return (slots - 1) / UPDATE_PIECE_SLOTS;
}

static bool plan_items(update_job *job) {
  const ugc_heap *heap = job->heap;
  const ugc_update_pages *deferred = &heap->update_pages;
  if (!deferred->pending || !deferred->nonmoving_deferred) {
    for (size_t s = 0; s < heap->nonmoving.span_count; s++)
      if (!add_item(job, UPDATE_SPAN, s, 0))
        return false;
    job->bytes += heap->nonmoving.used_bytes;
  }
  for (size_t i = 0; i < heap->large.count; i++) {
    if (deferred->pending && ugc_update_pages_defers_large(deferred, i))
      continue;
    uint64_t header = ugc_header_load(heap->large.objects[i].hdr);
    const ugc_type_info *type = ugc_type_get(&heap->types, ugc_header_type(header));
    if (type->layout == UGC_LAYOUT_LEAF)
      continue;
    job->bytes += ugc_header_payload(header);
    size_t pieces = 1 + extra_pieces(type, header);
    for (size_t piece = 0; piece < pieces; piece++)
      if (!add_item(job, UPDATE_LARGE, i, (uint32_t)piece))
        return false;
  }
  return true;
}

/* A large object: piece 0 is all of it but the element slots past the first piece. */
static void update_large(const update_job *job, update_tracer *u, uintptr_t hdr, uint32_t piece) {
  uint64_t header = ugc_header_load(hdr);
  const ugc_type_info *type = ugc_type_get(&job->heap->types, ugc_header_type(header));
  uintptr_t payload = hdr + UGC_HEADER_BYTES;
  if (!extra_pieces(type, header)) {
    update_cell(hdr, u);
    return;
  }
  size_t slots = (ugc_header_payload(header) - type->fixed_size) / 8;
  size_t first = (size_t)piece * UPDATE_PIECE_SLOTS;
  size_t count = slots - first < UPDATE_PIECE_SLOTS ? slots - first : UPDATE_PIECE_SLOTS;
  uintptr_t *elements = (uintptr_t *)(payload + type->fixed_size) + first;
  for (size_t i = 0; i < count; i++)
    ugc_compact_update_slot(job->plan, &elements[i], &type->tags);
  if (piece == 0)
    for (uint32_t i = 0; i < type->ref_count; i++)
      ugc_compact_update_slot(job->plan, (void *)(payload + type->ref_offsets[i]), &type->tags);
}

static void update_item_run(void *raw, size_t index, unsigned worker) {
  const update_job *job = raw;
  const update_item *item = &job->items[index];
  update_tracer u = {{update_visit}, job->plan, NULL};
  if (item->kind == UPDATE_LARGE) {
    update_large(job, &u, job->heap->large.objects[item->index].hdr, item->piece);
    return;
  }
  const ugc_nm_span *span = job->heap->nonmoving.spans[item->index];
  for (size_t cell = 0; cell < span->cell_count; cell++)
    if ((span->alloc_bits[cell >> 6] >> (cell & 63)) & 1u)
      update_cell(span->start + cell * span->cell_bytes, &u);
}

/* Every reference the backend will not rewrite: roots, weak slots, and the slots of live
 * non-moving and large objects (the backend only rewrites the moving space). With a
 * concurrent backend, big non-moving objects are left to compact/update_pages.c: the
 * backend protects them at its hand-off and they are updated page by page after the pause
 * (anything it does not take is updated in place after the hand-off, still in the pause). */
/* Pinned large objects are updated in the pause, whatever the delivery (update_pages.h). */
static bool large_pinned(const void *ctx, uintptr_t hdr) {
  const ugc_heap *heap = ctx;
  const ugc_large_object *object = ugc_large_find(&heap->large, hdr);
  return (object && object->allocated_pinned) ||
         ugc_addrmap_get(&heap->pins.counts, hdr + UGC_HEADER_BYTES) != NULL;
}

static void update_references(ugc_heap *heap, const ugc_compact_plan *plan) {
  ugc_update_pages *deferred = &heap->update_pages;
  if (heap->backend->concurrent) {
    bool may_fault = ugc_heap_syscalls_may_fault(heap, NULL, 0);
    ugc_update_pages_select(deferred, plan, &heap->types, &heap->nonmoving, &heap->large,
                            !may_fault, large_pinned, heap);
  }
  ugc_addrmap seen = {0};
  update_tracer roots = {{update_visit}, plan, &seen};
  ugc_roots_visit(heap, &roots.tracer);
  for (size_t i = 0; i < heap->weaks.count; i++)
    update_visit(&roots.tracer, heap->weaks.slots[i], &heap->root_rule);
  ugc_finalize_visit_registered(heap, &roots.tracer);
  ugc_addrmap_free(&seen);

  update_job job = {.plan = plan, .heap = heap};
  if (plan_items(&job) && job.bytes >= UPDATE_PARALLEL_BYTES && heap->workers.count > 1) {
    ugc_workers_run(&heap->workers, job.count, 1, update_item_run, &job);
  } else {
    update_tracer objects = {{update_visit}, plan, NULL};
    if (!deferred->pending || !deferred->nonmoving_deferred)
      ugc_nonmoving_for_each(&heap->nonmoving, update_cell, &objects);
    for (size_t i = 0; i < heap->large.count; i++)
      if (!deferred->pending || !ugc_update_pages_defers_large(deferred, i))
        update_cell(heap->large.objects[i].hdr, &objects);
  }
  free(job.items);
}

/* ---- the steps after marking ---- */

void ugc_collect_clear_dead_weaks(ugc_heap *heap, uintptr_t black_low, uintptr_t black_high) {
  for (size_t i = 0; i < heap->weaks.count; i++) {
    void **slot = heap->weaks.slots[i];
    uintptr_t ref = ugc_tag_reference((uintptr_t)*slot, &heap->root_rule);
    if (!ref || ref - UGC_HEADER_BYTES - black_low < black_high - black_low)
      continue; /* NULL, or allocated during marking (live, bits not set yet) */
    if (!ugc_mark_is_live(heap, ref))
      *slot = NULL;
  }
  ugc_identity_prune(heap); /* before the sweep frees any object it names */
}

/* Without a plan nothing moves: dead objects become fillers so that the space stays
 * walkable and nothing dead points at freed large objects or cells. */
static void fill_dead_objects(ugc_heap *heap) {
  uintptr_t at = heap->moving.base, top = heap->moving.top, gap = 0;
  while (at < top) {
    size_t total = ugc_header_total(ugc_header_load(at));
    bool live =
        ugc_header_type(ugc_header_load(at)) != UGC_FILLER_TYPE && ugc_live_bit(&heap->moving, at);
    if (live) {
      if (gap)
        *(uint64_t *)gap = ugc_filler_header(at - gap);
      gap = 0;
    } else if (!gap) {
      gap = at;
    }
    at += total;
  }
  if (gap)
    *(uint64_t *)gap = ugc_filler_header(top - gap);
}

static void use_card_table(ugc_mutator *mutator, void *cards) {
  mutator->fast.cards = cards;
}

/* Returns the time it took: verification is reported apart, never as pause time. */
static uint64_t run_verifier(ugc_heap *heap, const char *when) {
  uint64_t start = ugc_now_ns();
  char first[200];
  size_t problems = ugc_verify_locked(heap, first, sizeof first);
  heap->stats.verify_cycles++;
  heap->stats.verify_failures += problems;
  if (problems)
    ugc_warn("verify %s cycle %llu: %zu problem(s); first: %s", when,
             (unsigned long long)heap->stats.cycles + 1, problems, first);
  return ugc_now_ns() - start;
}

uint64_t ugc_collect_verify_locked(ugc_heap *heap, const char *when) {
  return run_verifier(heap, when);
}

void ugc_collect_mark_done(ugc_heap *heap, const ugc_mark_totals *totals, uint64_t mark_ns) {
  if (totals->bad_refs && heap->config.verify) {
    heap->stats.verify_failures += totals->bad_refs;
    ugc_warn("marking found %zu reference(s) into the heap that are not objects; first: %s",
             totals->bad_refs, totals->first_bad);
  }
  ugc_event_mark_done(heap, totals->moving_bytes + totals->nonmoving_bytes + totals->large_bytes,
                      mark_ns);
}

size_t ugc_heap_next_extent(const ugc_heap *heap, size_t moving_live) {
  /* A heap that ran full in this cycle will again: mutators allocate up to the limit. */
  if (heap->sizing.ran_full)
    return heap->config.heap_max;
  /* The trigger's target, plus how far past the trigger the cycle it starts allocates. */
  size_t next = ugc_sizing_target(heap, moving_live) + ugc_sizing_reach(heap);
  return next < heap->config.heap_max ? next : heap->config.heap_max;
}

void ugc_collect_sweep(ugc_heap *heap, ugc_cycle_work *work) {
  uint64_t start = ugc_now_ns();
  work->nonmoving_freed = ugc_nonmoving_sweep(&heap->nonmoving);
  work->large_freed = ugc_large_sweep(&heap->large);
  work->sweep_ns += ugc_now_ns() - start;
}

void ugc_collect_plan(ugc_heap *heap, uintptr_t plan_top, uintptr_t reserve_top,
                      ugc_cycle_work *work) {
  ugc_moving_space *space = &heap->moving;
  ugc_compact_plan *plan = &heap->plan;
  plan->space_base = space->base;
  plan->old_top = plan_top;
  plan->reserve_top = reserve_top;
  plan->live_words = space->live_words;
  plan->start_words = space->start_words;
  plan->types = &heap->types;
  plan->dense_threshold = DENSE_THRESHOLD;
  plan->pinned = heap->pins.headers;
  plan->pinned_count = heap->pins.header_count;
  plan->whole_slides = heap->backend->whole_page_slides;
  plan->leave_untouched = heap->backend->untouched_spans &&
                          (!heap->backend->concurrent || heap->config.untouched_concurrent);
  uint64_t start = ugc_now_ns();
  work->planned = ugc_compact_plan_compute(plan) == 0;
  work->plan_ns += ugc_now_ns() - start;
}

void ugc_collect_compact_locked(ugc_heap *heap, const ugc_mark_totals *totals,
                                const ugc_cycle_work *work, const ugc_cycle_clock *clock) {
  ugc_moving_space *space = &heap->moving;
  ugc_compact_plan *plan = &heap->plan;
  uint64_t mark_end = work->mark_end ? work->mark_end : clock->pause_start;
  if (work->planned) {
    uint64_t refs_start = ugc_now_ns();
    update_references(heap, plan);
    uint64_t identity_start = ugc_now_ns();
    ugc_identity_forward(heap, plan);
    ugc_hooks_relocation(heap, plan);
    uint64_t handoff_start = ugc_now_ns();
    if (heap->backend->compact_start(heap, plan) != 0)
      ugc_fatal("backend %s could not compact (it must fall back internally)", heap->backend->name);
    uint64_t in_pause_start = ugc_now_ns();
    ugc_update_pages_in_pause(&heap->update_pages); /* what the backend did not take */
    /* Where the compaction phase goes, for the trace line (docs/benchmarks.md). */
    size_t used = strlen(heap->cycle_note);
    snprintf(heap->cycle_note + used, sizeof heap->cycle_note - used,
             " refs=%.2fms (identity+hooks=%.2fms) handoff=%.2fms updates-in-pause=%.2fms",
             (handoff_start - refs_start) / 1e6, (handoff_start - identity_start) / 1e6,
             (in_pause_start - handoff_start) / 1e6, (ugc_now_ns() - in_pause_start) / 1e6);
    if (heap->update_pages.pages_in_pause) {
      ugc_stats_lock(heap);
      heap->stats.compaction.update_pages_in_pause += heap->update_pages.pages_in_pause;
      ugc_stats_unlock(heap);
    }
    space->top = plan->new_top;
    ugc_compact_plan_keep_padding(plan);
  } else {
    ugc_warn("no memory for the compaction plan; cycle %llu does not compact",
             (unsigned long long)heap->stats.cycles + 1);
    ugc_hooks_relocation(heap, NULL);
    fill_dead_objects(heap);
  }
  /* A concurrent compaction is verified once it has finished, together with what the
   * mutators did meanwhile: by the next cycle's "before" check, or ugc_verify. Waiting for
   * it here would build every page in the pause, and the fault path would never be
   * verified. Mode 2 asks for exactly that. */
  uint64_t verify_after_ns = 0;
  if (heap->config.verify >= 2 || (heap->config.verify && !heap->backend->concurrent)) {
    uint64_t wait_start = ugc_now_ns(); /* waiting for the compaction is part of it */
    heap->backend->compact_wait(heap);
    run_verifier(heap, "after");
    verify_after_ns = ugc_now_ns() - wait_start;
  }
  /* The mutators mark a clean card table from here on; the one they marked is cleared
   * after the pause (concurrent marking's collector) or by the next swap. */
  uint64_t cards_start = ugc_now_ns();
  uintptr_t marked_top = space->base + work->used_before;
  ugc_moving_space_swap_cards(space, marked_top > space->top ? marked_top : space->top,
                              heap->nonmoving.top);
  ugc_heap_for_each_mutator(heap, use_card_table, space->cards);
  uint64_t end = ugc_now_ns();
  if (work->planned) {
    size_t used = strlen(heap->cycle_note);
    snprintf(heap->cycle_note + used, sizeof heap->cycle_note - used, " cards=%.2fms",
             (end - cards_start) / 1e6);
  }
  /* Stop-the-world marking: this pause marked, swept and planned before compacting. */
  uint64_t mark_ns = work->mark_end ? mark_end - clock->pause_start - clock->verify_ns : 0;
  uint64_t compact_ns = end - mark_end - verify_after_ns;

  /* Statistics and the next trigger. */
  ugc_stats *stats = &heap->stats;
  size_t used_after = space->top - space->base;
  size_t live = totals->moving_bytes + totals->nonmoving_bytes + totals->large_bytes;
  size_t freed =
      (work->used_before - totals->moving_bytes) + work->nonmoving_freed + work->large_freed;
  __atomic_store_n(&stats->cycles, stats->cycles + 1, __ATOMIC_RELAXED); /* see ugc_collections */
  stats->live_bytes_last = live;
  if (live > stats->live_bytes_peak)
    stats->live_bytes_peak = live;
  stats->freed_bytes += freed;
  stats->heap_used_bytes = used_after;
  stats->nonmoving_used_bytes = heap->nonmoving.used_bytes;
  stats->large_used_bytes = heap->large.used_bytes;
  stats->compaction.forwarding_ns += work->plan_ns;
  if (work->mark_end)
    ugc_stats_record_pause(&stats->pause_mark, mark_ns);
  ugc_stats_record_pause(&stats->pause_compact, compact_ns);
  ugc_stats_record_pause(&stats->pause, mark_ns + compact_ns);
  uint64_t verify_ns = clock->verify_earlier_ns + clock->verify_ns + verify_after_ns;
  stats->verify_ns += verify_ns;
  stats->gc_cpu_ns += (ugc_thread_cpu_ns() - clock->cpu_start) +
                      (ugc_workers_cpu_ns(&heap->workers) - clock->helpers_start);

  size_t old_trigger = heap->trigger_bytes;
  heap->trigger_bytes = ugc_sizing_next_trigger(
      heap, totals->moving_bytes, heap->nonmoving.used_bytes + heap->large.used_bytes);
  heap->other_since_gc = 0;
  if (heap->trigger_bytes != old_trigger)
    ugc_event_heap_resized(heap, old_trigger, heap->trigger_bytes);

  if (heap->config.trace)
    ugc_trace_cycle(heap, &(ugc_cycle_trace){.cycle = stats->cycles,
                                             .pause_ns = mark_ns + compact_ns,
                                             .mark_ns = mark_ns,
                                             .compact_ns = compact_ns,
                                             .verify_ns = verify_ns,
                                             .sweep_ns = work->sweep_ns,
                                             .plan_ns = work->plan_ns,
                                             .live_bytes = live,
                                             .freed_bytes = freed,
                                             .used_before = work->used_before,
                                             .used_after = used_after,
                                             .concurrent = !work->mark_end,
                                             .initial_ns = work->initial_ns,
                                             .remark_ns = work->remark_ns,
                                             .note = heap->cycle_note,
                                             .next_trigger = heap->trigger_bytes,
                                             .headroom = ugc_sizing_headroom(heap),
                                             .reach = ugc_sizing_reach(heap)});
  heap->cycle_note[0] = 0;
  ugc_event_pause_end(heap, mark_ns + compact_ns);
}

void ugc_collect_locked(ugc_heap *heap) {
  ugc_moving_space *space = &heap->moving;
  ugc_cycle_clock clock = {0, ugc_thread_cpu_ns(), ugc_workers_cpu_ns(&heap->workers), 0, 0};
  clock.pause_start = ugc_now_ns();

  heap->backend->compact_wait(heap);
  /* World stopped: no fault into the last cycle's update ranges is in flight any more, and
   * the sweep below has not freed an object of them yet. */
  ugc_update_pages_pause_begin(&heap->update_pages);
  ugc_event_cycle_start(heap, heap->stats.cycles + 1);
  ugc_tlabs_retire_all(heap);
  ugc_cycle_work work = {.used_before = space->top - space->base};
  clock.verify_ns = heap->config.verify ? run_verifier(heap, "before") : 0;

  ugc_moving_space_clear_bitmap(space);
  ugc_mark_totals totals;
  ugc_mark_heap(heap, &totals);
  uint64_t sweep_start = ugc_now_ns();
  ugc_collect_clear_dead_weaks(heap, 0, 0);
  ugc_collect_sweep(heap, &work);
  work.sweep_ns = ugc_now_ns() - sweep_start; /* the weak slots too */
  ugc_pins_snapshot(heap, space->top);
  ugc_collect_plan(heap, space->top, 0, &work);
  work.mark_end = ugc_now_ns();
  ugc_collect_mark_done(heap, &totals, work.mark_end - clock.pause_start - clock.verify_ns);
  ugc_collect_compact_locked(heap, &totals, &work, &clock);
}

void ugc_collect_now(ugc_heap *heap, ugc_mutator *self, bool skip_if_collected) {
  if (heap->cmark) {
    ugc_cmark_collect(heap, self, !skip_if_collected);
    return;
  }
  /* Let the previous compaction finish while the other threads still run: waiting for it
   * inside the pause would stop them for nothing. (The pause checks again: another
   * collection may have started one meanwhile.) */
  heap->backend->compact_wait(heap);
  if (!ugc_world_stop(heap, self, skip_if_collected))
    return;
  pthread_mutex_lock(&heap->lock);
  ugc_collect_locked(heap);
  pthread_mutex_unlock(&heap->lock);
  ugc_world_resume(heap, self, true);
  if (heap->backend->compact_resumed)
    heap->backend->compact_resumed(heap); /* what the pause left to start (backend.h) */
  ugc_event_pause_done(heap);
}

size_t ugc_collect_assist_compaction(ugc_heap *heap) {
  size_t pages = heap->backend->compact_assist ? heap->backend->compact_assist(heap) : 0;
  if (pages) {
    ugc_stats_lock(heap);
    heap->stats.compaction.pages_by_waiting_mutators += pages;
    ugc_stats_unlock(heap);
  }
  return pages;
}

void ugc_collect(ugc_mutator *mutator, ugc_collect_kind kind) {
  ugc_check_attached(mutator, "ugc_collect");
  if (mutator->state == UGC_MUTATOR_BLOCKING)
    ugc_misuse("ugc_collect", "called inside a blocking region");
  if (mutator->in_walk)
    ugc_misuse("ugc_collect", "called inside a ugc_heap_walk callback");
  ugc_heap *heap = mutator->heap;
  if (kind != UGC_COLLECT_FULL && kind != UGC_COLLECT_FINISH)
    ugc_misuse("ugc_collect", "unknown collection kind");
  /* Either kind waits for the compaction in flight first (a new cycle starts only after
   * it): the caller builds pages of it meanwhile instead of leaving its CPU idle, as a
   * thread that found the heap full does (alloc.c, collect_for_room). */
  ugc_collect_assist_compaction(heap);
  if (kind == UGC_COLLECT_FINISH) {
    heap->backend->compact_wait(heap);
    return;
  }
  ugc_collect_now(heap, mutator, true);
}
