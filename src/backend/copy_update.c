/* The userfaultfd protector of compact/update_pages.c for anonymous ranges: the copy and
 * move backends' (shared with the minor backend, whose large objects and non-moving space are
 * anonymous memory beside its memfd heap).
 *
 * Big non-moving objects whose references must be updated (compact/update_pages.h) are
 * protected like the copy backend's heap (backend/copy.c), after its hand-off: each range is
 * moved to a shadow with MREMAP_DONTUNMAP and registered MISSING with the backend's
 * descriptor (the non-moving space in the other order: see protect_range), faults in it
 * reach the backend's delivery mode, and its pages are mapped with UFFDIO_COPY (or the copy
 * backend's own mapper). The GC threads build those pages first. The non-moving space is
 * moved whole and registered up to its used top, its anon_vma made before the split. Fault delivery
 * for these ranges in thread mode goes through the backend's handler thread, which tries an update
 * range first.
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

/* Gives the range's VMA an anon_vma before the registration is split (see protect_range):
 * one zero page is mapped at its last page and dropped again once that part is unregistered.
 * The range is registered there, so an ordinary touch would fault to us: UFFDIO_COPY it. */
static int give_anon_vma(ugc_anon_update *update, uintptr_t last) {
  static const char zeros[UGC_PAGE_SIZE] __attribute__((aligned(64)));
  ugc_uffd_result r = ugc_uffd_copy(update->uffd, (void *)last, zeros, UGC_PAGE_SIZE, 0);
  return r.status == UGC_UFFD_OK || r.status == UGC_UFFD_ALREADY_RESOLVED ? 0
                                                                          : -(r.err ? r.err : EIO);
}

/* The non-moving space's hand-off, in the pause:
 *
 *   register [start, start + move_bytes) MISSING      pages still present: nothing faults
 *   mremap it (DONTUNMAP) to the shadow                 every access now waits for us
 *   if only [start, start + register_bytes) is built:
 *     map a zero page at the last page (anon_vma), unregister the part above, drop the page
 *
 * Registered before it is emptied, the range has no moment where an access is an ordinary
 * zero-fill fault: a system call of a thread the pause does not stop (a mutator in a
 * blocking region writing into a pinned buffer, ugc_alloc_pinned's non-moving cells or a
 * large object) waits for its page (thread delivery) or fails with EFAULT (SIGBUS delivery)
 * but never writes into a page that is then dropped. The registered source costs mremap
 * nothing measurable here (64 MiB: 2.3 ms either way at 4 KiB pages, 0.3-0.4 ms with huge
 * pages; kernel.md's "one PTE at a time" is about PUD-sized moves, which these ranges never
 * make).
 *
 * The split: the whole-VMA DONTUNMAP took the VMA's anon_vma; pieces that each got one of
 * their own later could not merge back after the unregistration, and the next cycle's
 * mremap over two VMAs would fail. So the anon_vma is created (give_anon_vma) while the
 * range is still one VMA, and both pieces share it. */
static int protect_registered_first(ugc_anon_update *update, uintptr_t start, size_t move_bytes,
                                    size_t register_bytes, uintptr_t shadow, int *handle) {
  void *range = (void *)start;
  *handle = -1;
  int rc = ugc_inject("copy.update_register")
               ? -EBUSY
               : ugc_uffd_register(update->uffd, range, move_bytes, UGC_UFFD_REG_MISSING, 0, NULL);
  if (rc != 0)
    return rc;
  rc = ugc_inject("copy.update_mremap")
           ? -ENOMEM
           : ugc_remap_dontunmap(range, (void *)shadow, move_bytes, NULL);
  if (rc != 0) {
    ugc_uffd_unregister(update->uffd, range, move_bytes);
    return rc;
  }
  if (ugc_inject("copy.update_slow_handoff")) /* the window a system call could hit */
    nanosleep(&(struct timespec){0, 2 * 1000 * 1000}, NULL);
  if (register_bytes < move_bytes) {
    uintptr_t last = start + move_bytes - UGC_PAGE_SIZE;
    rc = give_anon_vma(update, last);
    if (rc == 0)
      rc = ugc_uffd_unregister(update->uffd, (void *)(start + register_bytes),
                               move_bytes - register_bytes);
    if (rc == 0)
      ugc_madv_dontneed((void *)last, UGC_PAGE_SIZE);
  }
  if (rc == 0 && update->sigbus_delivery) {
    *handle = ugc_sigbus_add_range(range, register_bytes, on_update_sigbus, update);
    if (*handle < 0) {
      rc = *handle;
      *handle = -1;
    }
  }
  if (rc != 0) {
    /* Back in place, over the registration: moving onto the range replaces its VMA(s)
     * under the mmap lock, so a waiting fault retried after it finds its page (unregistering
     * first would open the window again). The shadow's address range is unmapped now (see
     * the protector). */
    if (ugc_remap_move((void *)shadow, range, move_bytes, NULL) != 0)
      ugc_fatal("cannot move a non-moving range back after a failed hand-off");
    return rc;
  }
  return 0;
}

/* A large object's hand-off: moved away, then registered. Nothing but a stray access may
 * touch it in between (pinned large objects are never handed off: runtime/collect.c), and
 * what that maps is dropped. This order keeps mremap's whole page-table moves: registered
 * first, a 12 MiB array took 0.3-0.8 ms here instead of about 0.1. */
static int protect_moved_first(ugc_anon_update *update, uintptr_t start, size_t move_bytes,
                               size_t register_bytes, uintptr_t shadow, int *handle) {
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

/* The protector of compact/update_pages.c for one range, in the pause. The non-moving space
 * holds ugc_alloc_pinned buffers that threads the pause does not stop may be passing to
 * system calls: registered first. Large objects: moved first. */
static int protect_range(void *ctx, uintptr_t start, size_t move_bytes, size_t register_bytes,
                         uintptr_t shadow, int *handle) {
  ugc_anon_update *update = ctx;
  if (start == update->pages->nonmoving->base)
    return protect_registered_first(update, start, move_bytes, register_bytes, shadow, handle);
  return protect_moved_first(update, start, move_bytes, register_bytes, shadow, handle);
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
