/* The heap verifier and the object walk it shares with ugc_heap_walk. */
#ifndef UGC_RUNTIME_VERIFY_H
#define UGC_RUNTIME_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "uffdgc.h"

/* Checks the whole heap; world stopped, heap lock held, TLABs retired, no compaction in
 * flight. Returns the number of problems and describes the first in `first`. */
size_t ugc_verify_locked(ugc_heap *heap, char *first, size_t first_len);

/* Calls fn(hdr, data) for every object (fillers skipped) of the moving space in address
 * order, then the non-moving cells, then the large objects; stops when fn returns false.
 * Same preconditions as above. Returns false if the moving space's headers could not be
 * walked (a corrupt header: the walk stops there). */
typedef bool (*ugc_object_fn)(uintptr_t hdr, void *data);
bool ugc_walk_objects_locked(ugc_heap *heap, ugc_object_fn fn, void *data);

#endif
