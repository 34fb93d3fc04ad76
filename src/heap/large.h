/* The large-object space: every object of at least large_threshold bytes gets its own
 * page-rounded mapping, never moves, and is unmapped when found dead. Objects are kept in an
 * array sorted by address so a reference can be recognised with a binary search. */
#ifndef UGC_HEAP_LARGE_H
#define UGC_HEAP_LARGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ugc_large_object {
  uintptr_t hdr; /* start of the mapping = header address */
  size_t map_bytes;
  _Atomic uint8_t marked;
  bool allocated_pinned; /* by ugc_alloc_pinned: a buffer for system calls, like a pinned one */
} ugc_large_object;

typedef struct ugc_large_space {
  ugc_large_object *objects; /* sorted by hdr */
  size_t count, capacity;
  uintptr_t low, high; /* bounds of all mappings, for a cheap range check */
  size_t used_bytes;   /* bytes mapped */
} ugc_large_space;

void ugc_large_destroy(ugc_large_space *space);

/* Maps a zeroed object of `total` bytes; returns its header address or 0. Caller holds the
 * heap lock. */
uintptr_t ugc_large_alloc(ugc_large_space *space, size_t total);

/* The object whose header is at `hdr`, or NULL. */
static inline ugc_large_object *ugc_large_find(const ugc_large_space *space, uintptr_t hdr) {
  if (hdr < space->low || hdr >= space->high)
    return NULL;
  size_t lo = 0, hi = space->count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    uintptr_t at = space->objects[mid].hdr;
    if (at == hdr)
      return &space->objects[mid];
    if (at < hdr)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* Unmaps every unmarked object and clears the marks. Returns the bytes of objects freed
 * (header included, as ugc_alloc_size counts them). */
size_t ugc_large_sweep(ugc_large_space *space);

#endif
