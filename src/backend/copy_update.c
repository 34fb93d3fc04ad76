/* The userfaultfd protector of compact/update_pages.c for anonymous ranges: the copy and
 * move backends' (shared with the minor backend, whose large objects and non-moving space are
 * anonymous memory beside its memfd heap).
 *
 * Big non-moving objects whose references must be updated (compact/update_pages.h) are
 * protected like the copy backend's heap (backend/copy.c), after its hand-off: each range is
 * moved to a shadow with MREMAP_DONTUNMAP and registered MISSING with the backend's
 * descriptor, faults in it reach the backend's delivery mode, and its pages are mapped with
 * UFFDIO_COPY (or the copy backend's own mapper). The GC threads build those pages first. The
 * non-moving space is moved whole and registered up to its used top, with the same anon_vma
 * touch as the copy backend's heap. Fault delivery for these ranges in thread mode goes
 * through the backend's handler thread, which tries an update range first.
 */
#include "backend/copy_update.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "os/inject.h"
#include "os/log.h"
#include "os/madvise.h"
#include "os/remap.h"
#include "uffd/resolve.h"
#include "uffd/sigbus.h"

/* SIGBUS mode, in a range of compact/update_pages.c. */
static int on_update_sigbus(void *ctx, void *addr, int is_write, void *page_buffer) {
  (void)is_write;
  ugc_anon_update *update = ctx;
  int result = UGC_SIGBUS_IDLE;
  atomic_fetch_add(update->resolvers, 1);
  if (atomic_load(update->compacting)) {
    update->check_owner(update->owner);
    if (ugc_update_pages_resolve(update->pages, (uintptr_t)addr, page_buffer) == 0)
      result = UGC_SIGBUS_HANDLED;
  }
  atomic_fetch_sub(update->resolvers, 1);
  return result;
}

/* The protector of compact/update_pages.c: the copy backend's hand-off for one range. */
static int protect_range(void *ctx, uintptr_t start, size_t move_bytes, size_t register_bytes,
                         uintptr_t shadow, int *handle) {
  ugc_anon_update *update = ctx;
  void *range = (void *)start;
  int rc = ugc_inject("copy.update_mremap")
               ? -ENOMEM
               : ugc_remap_dontunmap(range, (void *)shadow, move_bytes, NULL);
  if (rc != 0)
    return rc;
  if (register_bytes < move_bytes) { /* the split of the registration: see backend/copy.c */
    volatile char *last = (volatile char *)(start + move_bytes - UGC_PAGE_SIZE);
    ugc_madv_nohugepage(range, move_bytes);
    *last = 0;
    ugc_madv_dontneed((void *)last, UGC_PAGE_SIZE);
  }
  *handle = -1;
  rc = ugc_inject("copy.update_register")
           ? -EBUSY
           : ugc_uffd_register(update->uffd, range, register_bytes, UGC_UFFD_REG_MISSING, 0, NULL);
  if (rc == 0 && update->sigbus_delivery) {
    *handle = ugc_sigbus_add_range(range, register_bytes, on_update_sigbus, update);
    if (*handle < 0) {
      rc = *handle;
      *handle = -1;
      ugc_uffd_unregister(update->uffd, range, register_bytes);
    }
  }
  if (rc != 0) {
    /* Back in place; the shadow's address range is unmapped now (see the protector). */
    if (ugc_remap_move((void *)shadow, range, move_bytes, NULL) != 0)
      ugc_fatal("cannot move a non-moving range back after a failed hand-off");
    return rc;
  }
  ugc_madv_dontneed(range, register_bytes); /* a stray access before the registration */
  return 0;
}

void ugc_anon_update_forget_ended(ugc_anon_update *update) {
  for (size_t i = 0; i < update->stale_count; i++)
    ugc_sigbus_remove_range(update->stale_ranges[i]);
  update->stale_count = 0;
}

static void forget_ended(void *ctx) {
  ugc_anon_update_forget_ended(ctx);
}

static void unprotect_range(void *ctx, uintptr_t start, size_t register_bytes, int handle) {
  ugc_anon_update *update = ctx;
  if (handle >= 0) {
    if (update->stale_count == update->stale_capacity) {
      size_t capacity = update->stale_capacity ? 2 * update->stale_capacity : 64;
      int *ranges = realloc(update->stale_ranges, capacity * sizeof *ranges);
      if (ranges) {
        update->stale_ranges = ranges;
        update->stale_capacity = capacity;
      }
    }
    if (update->stale_count < update->stale_capacity)
      update->stale_ranges[update->stale_count++] = handle;
    /* else the range stays: the table's slot is lost, never a fault chained wrongly */
  }
  int rc = 0;
  for (unsigned attempt = 0; attempt < 12; attempt++) {
    rc = ugc_uffd_unregister(update->uffd, (void *)start, register_bytes);
    if (rc == 0)
      return;
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 250000L << (attempt < 8 ? attempt : 8)};
    nanosleep(&pause, NULL);
  }
  ugc_fatal("unregistering a non-moving range keeps failing (%s)", strerror(-rc));
}

/* Maps built pages with UFFDIO_COPY (the mapper of backends whose heap is not anonymous). */
static ugc_map_result copy_built(void *ctx, uintptr_t dst, const void *src, size_t bytes,
                                 size_t *done) {
  ugc_anon_update *update = ctx;
  update->check_owner(update->owner);
  ugc_uffd_result r = ugc_uffd_copy(update->uffd, (void *)dst, src, bytes, 0);
  *done = r.done;
  switch (r.status) {
  case UGC_UFFD_OK:
    return UGC_MAP_OK;
  case UGC_UFFD_ALREADY_RESOLVED:
    return UGC_MAP_EXISTS;
  case UGC_UFFD_PENDING_EVENT:
    return UGC_MAP_RETRY;
  default:
    if (r.err == ENOMEM || r.err == EAGAIN)
      return UGC_MAP_RETRY;
    ugc_log_error_signal_safe("update pages", "UFFDIO_COPY of a built page failed", r.err);
    return UGC_MAP_FAILED;
  }
}

void ugc_anon_update_gc_work(void *pages, void *batch) {
  ugc_update_pages_gc_work(pages, batch);
}

void ugc_anon_update_start(ugc_anon_update *update, const ugc_page_mapper *mapper) {
  ugc_page_mapper own = {.backend = update, .map = copy_built};
  ugc_update_pages_start(update->pages,
                         &(ugc_update_protector){.backend = update,
                                                 .protect = protect_range,
                                                 .unprotect = unprotect_range,
                                                 .forget_ended = forget_ended},
                         mapper ? mapper : &own);
}

void ugc_anon_update_destroy(ugc_anon_update *update) {
  ugc_anon_update_forget_ended(update);
  free(update->stale_ranges);
  update->stale_ranges = NULL;
  update->stale_count = update->stale_capacity = 0;
}
