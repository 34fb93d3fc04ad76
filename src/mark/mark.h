/* Stop-the-world parallel marking. */
#ifndef UGC_MARK_MARK_H
#define UGC_MARK_MARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/heap.h"

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

/* After marking: whether the untagged reference `ref` is to a marked object (values that
 * are not heap references count as live: there is nothing to clear). */
bool ugc_mark_is_live(const ugc_heap *heap, uintptr_t ref);

#endif
