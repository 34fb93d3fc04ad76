/* Finalization: registrations, the queue of objects found unreachable, and the hooks the
 * collection cycle calls (runtime/finalize.c; docs/api.md "Finalization"). */
#ifndef UGC_RUNTIME_FINALIZE_H
#define UGC_RUNTIME_FINALIZE_H

#include <stddef.h>
#include <stdint.h>

#include "uffdgc.h"

typedef struct ugc_finalizer_entry {
  void **slot;  /* embedder memory holding the reference (under the heap's root rule) */
  void *cookie; /* handed back with it */
} ugc_finalizer_entry;

typedef struct ugc_finalizer_list {
  ugc_finalizer_entry *entries;
  size_t head, count, capacity; /* live entries are [head, count) */
} ugc_finalizer_list;

/* Both lists change only under the heap lock. */
typedef struct ugc_finalize_state {
  ugc_finalizer_list registered; /* object not yet found unreachable */
  ugc_finalizer_list queued;     /* found unreachable, resurrected, waiting for a drain */
} ugc_finalize_state;

struct ugc_heap;
struct ugc_marker;

/* After marking has drained (world stopped, heap lock held; with concurrent marking, in the
 * final pause once the objects allocated during marking are marked): every registration
 * whose object is unmarked moves to the queue, and everything the queued objects reference
 * is marked (resurrection). */
void ugc_finalize_after_mark(struct ugc_heap *heap, struct ugc_marker *marker);
/* Queued slots are roots: reported by ugc_roots_visit (marking, updating, verifier, digest). */
void ugc_finalize_visit_queue(struct ugc_heap *heap, ugc_tracer *tracer);
/* Registered slots are updated when their objects move (not marked: they do not keep them
 * alive). */
void ugc_finalize_visit_registered(struct ugc_heap *heap, ugc_tracer *tracer);
/* Heap destruction. */
void ugc_finalize_free(struct ugc_heap *heap);

#endif
