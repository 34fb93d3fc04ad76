/* Compaction backends: the only part of a cycle that differs between them is when and how
 * the to-space pages [space_base, new_top) get built (ugc_compact_build_page) and mapped.
 * Everything before -- marking, the plan, updating roots and the references held by
 * non-moving and large objects -- is shared and done by src/runtime/collect.c.
 *
 * What a backend may use of the heap (src/runtime/heap.h):
 *   heap->moving.base, .reserved_bytes   the moving space (1 GiB-aligned, RW, private anon
 *                                        when the heap is created; a backend may map it
 *                                        itself through a space provider, e.g.
 *                                        heap/file_space.h for a memfd-backed heap)
 *   heap->moving.from_base               a from-space reservation of the same size and
 *                                        alignment (PROT_NONE between cycles)
 *   heap->moving.recycled_low/high       memory prepare_alloc mapped above the top that
 *                                        allocation must zero (heap lock)
 *   ugc_heap_next_extent                 what the next cycle allocates into (to keep)
 *   heap->workers                        ugc_workers_run(&heap->workers, n, grain, fn, ctx)
 *   heap->stats.compaction               counters to add to (under the heap lock, which the
 *                                        collector holds during the pause)
 *   heap->backend_data                   the backend's own state (set in attach)
 *   ugc_heap_for_each_mutator            the attached mutators
 *   ugc_stats_lock/unlock                around counters added outside the pause
 *   ugc_compaction_started/finished      a concurrent backend reports when its compaction
 *                                        really runs concurrently (in the pause) and when it
 *                                        is complete (runtime/events.h)
 */
#ifndef UGC_BACKEND_BACKEND_H
#define UGC_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compact/compact.h"
#include "uffdgc.h"

typedef struct ugc_backend_ops {
  const char *name;
  bool concurrent;
  /* The plan should place pages it can slide whole page-aligned (compact.h): the backend
   * moves them without building them. */
  bool whole_page_slides;
  /* The plan may find untouched spans of the dense prefix (compact.h): the backend leaves
   * them in the heap range and never builds them. Needs the hand-off of backend/handoff.h.
   * A concurrent backend gets them only with config.untouched_concurrent. */
  bool untouched_spans;
  /* The moving space gets transparent huge pages unless config.huge_pages says otherwise
   * (applied before attach: heap/space.h, ugc_moving_space_use_huge_pages). */
  bool huge_pages;
  /* At heap creation: -1 with *error filled if the backend cannot run on this heap. */
  int (*attach)(ugc_heap *heap, ugc_error *error);
  void (*detach)(ugc_heap *heap);
  /* In the compaction pause: world stopped, plan computed, roots and the references of
   * non-moving and large objects already updated. Afterwards [space_base, new_top) must
   * hold the compacted objects (stw: on return; concurrent: when compact_wait returns).
   * Returns 0, or -1 if it could not compact (the heap must then be unchanged). */
  int (*compact_start)(ugc_heap *heap, ugc_compact_plan *plan);
  /* Optional. Shortly before the pause that calls compact_start, mutators running, no heap
   * lock held, no compaction in flight and none can start meanwhile (concurrent marking's
   * collector thread, the only one that starts them, calls it): gives back what the
   * hand-off would otherwise free in the pause (memory the last compaction kept for
   * allocation), so that the pause does not grow with it. The compaction it prepares for
   * may still not happen (no plan): only an optimisation is lost then. */
  void (*compact_prepare)(ugc_heap *heap);
  /* Blocks until the compaction started last is complete (returns at once if none). */
  void (*compact_wait)(ugc_heap *heap);
  /* Optional. After the pause that called compact_start, once the world runs again (no
   * heap lock held; also after a compact_start that fell back or did nothing): starts what
   * must not run in the pause, such as waking GC threads, which on a machine with few CPUs
   * take the CPU of the thread ending the pause. compact_wait must complete a compaction
   * whether or not this ran. */
  void (*compact_resumed)(ugc_heap *heap);
  /* Optional. A mutator waits for the compaction started last: it found the heap full
   * (memory comes back only at the next cycle's compaction pause) or called ugc_collect, and
   * no cycle starts before this compaction is complete. Instead of sleeping, the mutator
   * builds pages beside the GC threads until none is left to take (no lock held, the
   * mutator still RUNNING: the next pause waits for this compaction anyway). Returns the
   * pages it took (0: it took no part). */
  size_t (*compact_assist)(ugc_heap *heap);
  /* Optional. Allocation is about to hand out [start, end) of the moving space (heap lock
   * held, mutators running; start is the old top, so nothing at or above it has been handed
   * out since the last compaction). The backend may map memory it kept from the last
   * compaction there instead of letting allocation fault in fresh zeroed pages; it then
   * widens heap->moving's recycled range, which allocation zeroes as it hands it out. */
  void (*prepare_alloc)(ugc_heap *heap, uintptr_t start, uintptr_t end);
  /* fork(), called by the heap's atfork handlers after compact_wait, with the heap's locks
   * held (each may be NULL): prepare takes every lock of the backend a child could need, so
   * no other thread holds one at the fork; parent releases them; child re-initialises them
   * and forgets the parent's threads. */
  void (*fork_prepare)(ugc_heap *heap);
  void (*fork_parent)(ugc_heap *heap);
  void (*fork_child)(ugc_heap *heap);
} ugc_backend_ops;

/* The backend registered as `name`, or NULL. */
const ugc_backend_ops *ugc_backend_find(const char *name);

/* Whether backend `name` can run here; if not, why. Does not attach it. */
bool ugc_backend_check(const char *name, char *reason, size_t reason_len);

/* Resolves `requested` ("auto" or a name) and attaches the backend to the heap: sets
 * heap->backend. "auto" tries move, copy, sigsegv, stw in that order, falling back (and
 * saying so in the trace) when one cannot attach. 0, or -1 with *error filled. */
int ugc_backend_select(ugc_heap *heap, const char *requested, ugc_error *error);

/* Backends (one per file in src/backend/). */
extern const ugc_backend_ops ugc_backend_stw;

#endif
