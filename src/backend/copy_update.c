/* The copy backend's protector of compact/update_pages.c (shared with the move backend).
 *
 * Big non-moving objects whose references must be updated (compact/update_pages.h) are
 * protected like the heap (backend/copy.c), after its hand-off: each range is moved to a shadow
 * with MREMAP_DONTUNMAP and registered MISSING with the same descriptor, faults in it reach the
 * same two delivery modes, and its pages are mapped with UFFDIO_COPY. The GC threads build
 * those pages first. The non-moving space is moved whole and registered up to its used top,
 * with the same anon_vma touch as the heap. Fault delivery for these ranges in thread mode goes
 * through the heap's handler thread (backend/copy.c), which tries an update range first.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/copy.h"
#include "compact/update_pages.h"
#include "os/inject.h"
#include "os/log.h"
#include "os/madvise.h"
#include "os/remap.h"
#include "runtime/heap.h"
#include "uffd/sigbus.h"
#include "uffd/uffd.h"

/* SIGBUS mode, in a range of compact/update_pages.c. */
static int copy_on_update_sigbus(void *ctx, void *addr, int is_write, void *page_buffer) {
  (void)is_write;
  ugc_copy_backend *backend = ctx;
  int result = UGC_SIGBUS_IDLE;
  atomic_fetch_add(&backend->resolvers, 1);
  if (atomic_load(&backend->compacting)) {
    ugc_copy_check_owner(backend->heap);
    if (ugc_update_pages_resolve(&backend->heap->update_pages, (uintptr_t)addr, page_buffer) == 0)
      result = UGC_SIGBUS_HANDLED;
  }
  atomic_fetch_sub(&backend->resolvers, 1);
  return result;
}

/* The protector of compact/update_pages.c: the heap's hand-off (backend/copy.c) for one range. */
static int copy_protect_range(void *ctx, uintptr_t start, size_t move_bytes, size_t register_bytes,
                              uintptr_t shadow, int *handle) {
  ugc_copy_backend *backend = ctx;
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
  rc = ugc_inject("copy.update_register") ? -EBUSY
                                          : ugc_uffd_register(&backend->uffd, range, register_bytes,
                                                              UGC_UFFD_REG_MISSING, 0, NULL);
  if (rc == 0 && backend->sigbus_delivery) {
    *handle = ugc_sigbus_add_range(range, register_bytes, copy_on_update_sigbus, backend);
    if (*handle < 0) {
      rc = *handle;
      *handle = -1;
      ugc_uffd_unregister(&backend->uffd, range, register_bytes);
    }
  }
  if (rc != 0) {
    /* Back in place; the shadow's address range is unmapped now (see the protector). */
    if (ugc_remap_move((void *)shadow, range, move_bytes, NULL) != 0)
      ugc_fatal("copy backend: cannot move a non-moving range back after a failed hand-off");
    return rc;
  }
  ugc_madv_dontneed(range, register_bytes); /* a stray access before the registration */
  return 0;
}

/* In a pause (no fault of an ended compaction is still being dispatched) or at detach;
 * before the sweep frees a large object: its address may be reused, by another heap too. */
void ugc_copy_remove_stale_ranges(ugc_copy_backend *backend) {
  for (size_t i = 0; i < backend->stale_count; i++)
    ugc_sigbus_remove_range(backend->stale_ranges[i]);
  backend->stale_count = 0;
}

static void copy_forget_ended(void *ctx) {
  ugc_copy_remove_stale_ranges(ctx);
}

static void copy_unprotect_range(void *ctx, uintptr_t start, size_t register_bytes, int handle) {
  ugc_copy_backend *backend = ctx;
  if (handle >= 0) {
    if (backend->stale_count == backend->stale_capacity) {
      size_t capacity = backend->stale_capacity ? 2 * backend->stale_capacity : 64;
      int *ranges = realloc(backend->stale_ranges, capacity * sizeof *ranges);
      if (ranges) {
        backend->stale_ranges = ranges;
        backend->stale_capacity = capacity;
      }
    }
    if (backend->stale_count < backend->stale_capacity)
      backend->stale_ranges[backend->stale_count++] = handle;
    /* else the range stays: the table's slot is lost, never a fault chained wrongly */
  }
  int rc = 0;
  for (unsigned attempt = 0; attempt < 12; attempt++) {
    rc = ugc_uffd_unregister(&backend->uffd, (void *)start, register_bytes);
    if (rc == 0)
      return;
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 250000L << (attempt < 8 ? attempt : 8)};
    nanosleep(&pause, NULL);
  }
  ugc_fatal("copy backend: unregistering a non-moving range keeps failing (%s)", strerror(-rc));
}

void ugc_copy_update_gc_work(void *update_pages, void *batch) {
  ugc_update_pages_gc_work(update_pages, batch);
}

void ugc_copy_update_start(ugc_copy_backend *backend, const ugc_page_mapper *mapper) {
  ugc_update_pages_start(&backend->heap->update_pages,
                         &(ugc_update_protector){backend, copy_protect_range, copy_unprotect_range,
                                                 copy_forget_ended, false},
                         mapper);
}

void ugc_copy_update_destroy(ugc_copy_backend *backend) {
  ugc_copy_remove_stale_ranges(backend);
  free(backend->stale_ranges);
  backend->stale_ranges = NULL;
  backend->stale_count = backend->stale_capacity = 0;
}
