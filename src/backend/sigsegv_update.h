/* The sigsegv backend's protector of compact/update_pages.c (backend/sigsegv_update.c). */
#ifndef UGC_BACKEND_SIGSEGV_UPDATE_H
#define UGC_BACKEND_SIGSEGV_UPDATE_H

#include <stddef.h>
#include <sys/types.h>

#include "compact/update_pages.h"

typedef struct ugc_sigsegv_update {
  ugc_update_pages *pages; /* the heap's */
  pid_t owner_pid;         /* the process whose shadows the ranges are built from */
  /* SIGSEGV ranges of ended compactions, removed at the next pause (a fault taken before the
   * end may still be on its way to the dispatcher). */
  int *stale_ranges;
  size_t stale_count, stale_capacity;
} ugc_sigsegv_update;

/* In the compaction pause, after the heap's flip: protects the deferred ranges of `pages`
 * (the rest is updated in place at once). */
void ugc_sigsegv_update_start(ugc_sigsegv_update *update, ugc_update_pages *pages);

/* A GC thread's first work (ugc_concurrent.first_work): data is the ugc_update_pages. */
void ugc_sigsegv_update_gc_work(void *pages, void *batch);

/* At detach: the SIGSEGV ranges still registered go. */
void ugc_sigsegv_update_destroy(ugc_sigsegv_update *update);

#endif
