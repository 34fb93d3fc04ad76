/* Embedder hooks inside a collection (runtime/hooks.c). */
#ifndef UGC_RUNTIME_HOOKS_H
#define UGC_RUNTIME_HOOKS_H

#include "compact/compact.h"
#include "runtime/heap.h"

/* Calls the relocation hooks with the cycle's plan (NULL: nothing moves). World stopped,
 * heap lock held, before the compaction starts. */
void ugc_hooks_relocation(ugc_heap *heap, const ugc_compact_plan *plan);

#endif
