/* Concurrent marking: a collector thread per heap runs each cycle as
 *
 *   initial pause (roots, barrier on) -> marking while mutators run -> remark pause (the
 *   barrier's buffers, roots again, weak slots) -> while mutators run: objects allocated
 *   so far get their bits, sweeping, the plan, then the plan extended in rounds over what
 *   mutators allocate meanwhile -> compaction pause (the last allocations' bits, the plan
 *   extended over them, references, backend hand-off)
 *
 * Mutators ask for cycles (allocation past the trigger, ugc_collect) and keep running;
 * one that needs memory the cycle has not freed yet waits in a blocking region. */
#ifndef UGC_RUNTIME_CONCURRENT_MARK_H
#define UGC_RUNTIME_CONCURRENT_MARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uffdgc.h"

/* Sets up heap->cmark when config.concurrent_mark is on. 0, or -1 (out of memory). */
int ugc_cmark_init(ugc_heap *heap);
/* Waits for the cycle in progress and stops the collector thread. No mutator attached. */
void ugc_cmark_destroy(ugc_heap *heap);

/* Asks for a cycle unless one is requested or running; returns at once. Any lock may be
 * held (the heap lock included). */
void ugc_cmark_start(ugc_heap *heap);

/* Runs a cycle and waits for its end. `fresh`: the cycle must begin after this call (a
 * cycle already marking does not count); otherwise the one in progress will do. `self`
 * (may be NULL) waits in a blocking region so that the cycle's pauses can stop the world. */
void ugc_cmark_collect(ugc_heap *heap, ugc_mutator *self, bool fresh);

/* A TLAB [start, end) was retired while heap->allocate_black (heap lock held): its
 * objects are marked live by the collector thread. */
void ugc_cmark_tlab_retired(ugc_heap *heap, uintptr_t start, uintptr_t end);

/* A mutator about to replace its full TLAB while heap->allocate_black (no lock held, the
 * TLAB still open) marks its objects itself, while they are in its cache: the TLAB then
 * need not wait for the collector thread (ugc_tlab_retire skips it). */
void ugc_cmark_mark_own_tlab(ugc_mutator *mutator);

/* A medium object [hdr, hdr + total) was bumped while heap->allocate_black (heap lock
 * held): it gets its bits now, there being no TLAB to mark later. */
void ugc_cmark_medium_allocated(ugc_heap *heap, uintptr_t hdr, size_t total);

/* Test hook: `hook(data)` runs on the collector thread right after each remark pause,
 * while mutators run, before the sweep and the plan (NULL removes it). */
void ugc_cmark_set_between_pauses_hook(ugc_heap *heap, void (*hook)(void *), void *data);
/* Test hook: `hook(data)` runs on the collector thread once the plan has been computed
 * between the pauses, while mutators run (NULL removes it). */
void ugc_cmark_set_after_plan_hook(ugc_heap *heap, void (*hook)(void *), void *data);

/* Test hook: how many times the plan was extended between the pauses (rounds, all cycles
 * so far; 0 without concurrent marking). */
uint64_t ugc_cmark_plan_rounds(ugc_heap *heap);

/* A mutator detaching: its barrier buffer goes to the marker. sp_lock and heap lock held. */
void ugc_cmark_mutator_detach(ugc_mutator *mutator);

/* fork(): prepare waits for the cycle in progress and holds new ones back (before the
 * heap's locks are taken); the parent lets cycles run again; the child collects with
 * stop-the-world marking from then on. */
void ugc_cmark_fork_prepare(ugc_heap *heap);
void ugc_cmark_fork_parent(ugc_heap *heap);
void ugc_cmark_fork_child(ugc_heap *heap);

#endif
