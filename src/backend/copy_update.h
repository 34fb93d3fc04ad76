/* The userfaultfd protector of compact/update_pages.c for anonymous ranges
 * (backend/copy_update.c), used by the copy and move backends and, for large objects and the
 * non-moving space (anonymous memory beside its memfd heap), by the minor backend. */
#ifndef UGC_BACKEND_COPY_UPDATE_H
#define UGC_BACKEND_COPY_UPDATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compact/update_pages.h"
#include "uffd/uffd.h"

typedef struct ugc_anon_update {
  /* Set by the backend before each start. */
  ugc_uffd *uffd;              /* the backend's descriptor: ranges register MISSING with it */
  bool sigbus_delivery;        /* faults come as SIGBUS (else to the backend's handler thread,
                                  which must try ugc_update_pages_resolve first) */
  _Atomic bool *compacting;    /* the backend's: SIGBUS faults are resolved only while set */
  _Atomic uint32_t *resolvers; /* the backend's count of threads inside a fault callback */
  void (*check_owner)(const void *owner); /* aborts in a raw-cloned child; async-signal-safe */
  const void *owner;
  ugc_update_pages *pages; /* the heap's */
  /* SIGBUS ranges of update pages whose compaction ended: removed at the next pause, never
   * earlier. A fault taken just before the end may reach the dispatcher only after every
   * page is mapped and the range unregistered; it must still find the range (its callback
   * then answers IDLE and the access is retried), not chain to the default action. */
  int *stale_ranges;
  size_t stale_count, stale_capacity;
} ugc_anon_update;

/* In the compaction pause, after the heap's hand-off: protects this cycle's update ranges.
 * `mapper` maps built pages (NULL: UFFDIO_COPY with the descriptor). */
void ugc_anon_update_start(ugc_anon_update *update, const ugc_page_mapper *mapper);

/* The GC threads' first work (ugc_concurrent.first_work): builds update pages; `pages` is the
 * heap's ugc_update_pages. */
void ugc_anon_update_gc_work(void *pages, void *batch);

/* Removes the SIGBUS ranges of update ranges whose compaction ended. In a pause (no fault of
 * an ended compaction is still being dispatched) or at detach. */
void ugc_anon_update_forget_ended(ugc_anon_update *update);

/* At detach: removes the stale SIGBUS ranges and frees their table. */
void ugc_anon_update_destroy(ugc_anon_update *update);

#endif
