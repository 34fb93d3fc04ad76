/* Identity hashes (runtime/identity.c): the collector's side of ugc_identity_hash. */
#ifndef UGC_RUNTIME_IDENTITY_H
#define UGC_RUNTIME_IDENTITY_H

#include "compact/compact.h"
#include "runtime/heap.h"

/* After marking, before sweeping (mark bits still valid): drops the hashes of dead objects.
 * World stopped, heap lock held. */
void ugc_identity_prune(ugc_heap *heap);
/* Before the compaction moves objects: rekeys every hash to its object's new address.
 * World stopped, heap lock held. */
void ugc_identity_forward(ugc_heap *heap, const ugc_compact_plan *plan);

#endif
