/* Stop-the-world parallel marking. */
#ifndef UGC_MARK_MARK_H
#define UGC_MARK_MARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uffdgc.h"

typedef struct ugc_mark_totals {
  size_t moving_bytes;    /* live objects in the moving space, headers included */
  size_t nonmoving_bytes; /* live objects in the non-moving space */
  size_t large_bytes;     /* live large objects */
  size_t objects;
  size_t bad_refs;     /* values inside a heap range that are not objects */
  char first_bad[160]; /* description of the first one */
  /* Work sharing: whether the helpers were brought in, how often work was given to the
   * pool, and how often an idle marker went to sleep (each sleep costs a wake-up). */
  bool shared;
  size_t pool_gives, pool_sleeps;
} ugc_mark_totals;

/* Marks everything reachable from the roots. World stopped, heap lock held, TLABs
 * retired, live-words bitmap of [base, top) clear. */
void ugc_mark_heap(ugc_heap *heap, ugc_mark_totals *totals);

/* A marking that runs in steps, for concurrent marking: roots in the initial pause,
 * drains while mutators run, the values the write barrier recorded, a last drain in the
 * remark pause. Objects in the moving space at or above `snapshot_top` (the bump pointer
 * when marking began) are never traced when `new_objects_black`: they were allocated
 * during marking and the caller marks them live. */
typedef struct ugc_marker ugc_marker;
ugc_marker *ugc_marker_create(ugc_heap *heap, uintptr_t snapshot_top, bool new_objects_black);
/* `concurrent`: mutators run during the next drains. `threads`: how many GC threads take
 * part (at most the worker pool's size). */
void ugc_marker_set_mode(ugc_marker *marker, bool concurrent, unsigned threads);
/* Marks the referents of every root (world stopped). */
void ugc_marker_visit_roots(ugc_marker *marker);
/* Marks untagged values (any value: those that are not heap references are ignored). */
void ugc_marker_add_values(ugc_marker *marker, const uintptr_t *values, size_t count);
/* Traces until no marked object is left untraced. With the world stopped (mode not
 * concurrent) it ends with the ephemeron fixpoint: values of ephemerons whose keys are
 * marked are traced until nothing more gets marked. */
void ugc_marker_drain(ugc_marker *marker);
/* Mutator-assisted marking, during a concurrent drain (other times it does nothing): the
 * calling mutator traces about `budget` bytes of objects taken from the GC threads' work,
 * waiting at most `wait_ns` for some to be given to it, and gives back what is left.
 * Returns the scan work it did (0: none to be had). Not with the heap lock held. */
size_t ugc_marker_assist(ugc_marker *marker, size_t budget, uint64_t wait_ns);
/* Initial pause, after the roots: their referents go to the shared pool, open from now
 * on, so that mutators may assist before the first concurrent drain begins (the
 * collector thread may not get a CPU for a while). */
void ugc_marker_open_for_assists(ugc_marker *marker);
/* Takes up to `want` bytes of the scan work the GC threads did while mutators ran and that
 * no mutator has taken yet (a mutator in debt pays with it first). Returns what it took. */
size_t ugc_marker_take_credit(ugc_marker *marker, size_t want);
/* Objects marked so far. */
size_t ugc_marker_objects(const ugc_marker *marker);
/* Clears weak slots of dead referents and ephemerons with dead keys (world stopped; all
 * marking, including any embedder hook that marks more, must come before); the totals.
 * The marker can only be destroyed afterwards. */
void ugc_marker_finish(ugc_marker *marker, ugc_mark_totals *totals);
/* Frees the marker and its mark stacks. Needs no stopped world: a concurrent cycle calls it
 * after the remark pause, since giving a grown stack back (tens of MiB, munmap) took 3-5 ms
 * of a 4 GiB frag remark pause. */
void ugc_marker_destroy(ugc_marker *marker);

/* After marking: whether the untagged reference `ref` is to a marked object (values that
 * are not heap references count as live: there is nothing to clear). */
bool ugc_mark_is_live(const ugc_heap *heap, uintptr_t ref);

/* As ugc_mark_is_live, and true for a moving-space object allocated during the cycle
 * (allocate black): between the remark and the compaction pause those get their bits only
 * later, from the collector thread. World stopped. */
bool ugc_mark_is_live_or_new(const ugc_heap *heap, uintptr_t ref);

#endif
