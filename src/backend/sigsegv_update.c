/* The sigsegv backend's protector of compact/update_pages.c: large objects (anonymous
 * memory) whose references must be updated after the pause are protected the way the heap's
 * pages are, with PROT_NONE and the SIGSEGV dispatcher (backend/segv_dispatch.h).
 *
 *   pause    each range moves to its shadow with MREMAP_DONTUNMAP (page tables only), and the
 *            emptied range becomes PROT_NONE and a SIGSEGV range of its own
 *   after    a page is built in the shadow itself (no mutator can see it there) under an
 *            exclusive claim, then moved back into place with one more MREMAP_DONTUNMAP,
 *            which replaces the PROT_NONE page by the built one (readable and writable, as the
 *            shadow is) in one step: no access ever sees it half built. GC threads move
 *            ascending runs, which merge again with the run before; a mutator that touches a
 *            protected page gets SIGSEGV, builds and moves that page, and retries.
 *
 * The shadow stays mapped (emptied) where pages left it, so its address range never becomes
 * a hole another mmap could take before the shadow is released.
 *
 * System calls that touch a page not built yet fail with EFAULT, as for the heap's pages
 * (ugc_heap_syscalls_may_fault); the non-moving space, where pinned objects live, is never
 * deferred with this backend, and pinned large objects are kept in the pause
 * (runtime/collect.c). A range that cannot be protected is updated in the pause. */
#include "backend/sigsegv_update.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/segv_dispatch.h"
#include "os/inject.h"
#include "os/log.h"
#include "os/remap.h"

static void check_owner(const ugc_sigsegv_update *update) {
  if (getpid() == update->owner_pid)
    return;
  static const char message[] =
      "uffdgc: fatal: sigsegv backend: this process was forked while references of large "
      "objects were being updated, without the pthread_atfork handlers (a raw clone system "
      "call or _Fork); use fork()\n";
  ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
  (void)ignored;
  abort();
}

/* A protected page touched: built and moved in place here. Async-signal-safe. */
static int on_update_fault(void *ctx, void *addr) {
  ugc_sigsegv_update *update = ctx;
  check_owner(update);
  return ugc_update_pages_resolve(update->pages, (uintptr_t)addr, NULL) == 0 ? UGC_SEGV_HANDLED
                                                                             : UGC_SEGV_IDLE;
}

/* Moves built shadow pages [src, src + bytes) over the PROT_NONE pages at dst. A plain
 * system call: async-signal-safe. ENOMEM (no memory to split a mapping, or vm.max_map_count
 * reached) is retried by the driver while GC threads' runs merge mappings again. */
static ugc_map_result move_built(void *ctx, uintptr_t dst, const void *src, size_t bytes,
                                 size_t *done) {
  ugc_sigsegv_update *update = ctx;
  check_owner(update);
  *done = 0;
  void *moved = mremap((void *)src, bytes, bytes, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
                       (void *)dst);
  if (moved != MAP_FAILED)
    return UGC_MAP_OK;
  int err = errno;
  if (err == ENOMEM || err == EAGAIN)
    return UGC_MAP_RETRY;
  ugc_log_error_signal_safe("sigsegv backend", "moving built pages of a large object failed", err);
  return UGC_MAP_FAILED;
}

static int protect_range(void *ctx, uintptr_t start, size_t move_bytes, size_t register_bytes,
                         uintptr_t shadow, int *handle) {
  ugc_sigsegv_update *update = ctx;
  void *range = (void *)start;
  *handle = -1;
  int rc = ugc_inject("sigsegv.update_mremap")
               ? -ENOMEM
               : ugc_remap_dontunmap(range, (void *)shadow, move_bytes, NULL);
  if (rc != 0)
    return rc;
  if (ugc_inject("sigsegv.update_mprotect"))
    rc = -ENOMEM;
  else if (mprotect(range, register_bytes, PROT_NONE) != 0)
    rc = -errno;
  if (rc == 0) {
    *handle = ugc_segv_add_range(range, register_bytes, on_update_fault, update);
    if (*handle < 0) {
      rc = *handle;
      *handle = -1;
    }
  }
  if (rc != 0) {
    /* Back in place (the move replaces whatever protection the range has now); the shadow's
     * address range is unmapped now, as the protector's contract allows. */
    if (ugc_remap_move((void *)shadow, range, move_bytes, NULL) != 0)
      ugc_fatal("sigsegv backend: cannot move a large object back after a failed protection");
    return rc;
  }
  return 0;
}

/* Every page is back in place: nothing is PROT_NONE any more. The SIGSEGV range stays until
 * the next pause (see the header). */
static void unprotect_range(void *ctx, uintptr_t start, size_t register_bytes, int handle) {
  (void)start;
  (void)register_bytes;
  ugc_sigsegv_update *update = ctx;
  if (handle < 0)
    return;
  if (update->stale_count == update->stale_capacity) {
    size_t capacity = update->stale_capacity ? 2 * update->stale_capacity : 64;
    int *ranges = realloc(update->stale_ranges, capacity * sizeof *ranges);
    if (!ranges) {
      ugc_segv_remove_range(handle); /* no room to wait: a late fault is passed on */
      return;
    }
    update->stale_ranges = ranges;
    update->stale_capacity = capacity;
  }
  update->stale_ranges[update->stale_count++] = handle;
}

static void forget_ended(void *ctx) {
  ugc_sigsegv_update *update = ctx;
  for (size_t i = 0; i < update->stale_count; i++)
    ugc_segv_remove_range(update->stale_ranges[i]);
  update->stale_count = 0;
}

void ugc_sigsegv_update_start(ugc_sigsegv_update *update, ugc_update_pages *pages) {
  update->pages = pages;
  update->owner_pid = getpid();
  ugc_page_mapper mapper = {.backend = update, .map = move_built};
  ugc_update_pages_start(pages,
                         &(ugc_update_protector){.backend = update,
                                                 .protect = protect_range,
                                                 .unprotect = unprotect_range,
                                                 .forget_ended = forget_ended,
                                                 .builds_in_shadow = true},
                         &mapper);
}

void ugc_sigsegv_update_gc_work(void *pages, void *batch) {
  ugc_update_pages_gc_work(pages, batch);
}

void ugc_sigsegv_update_destroy(ugc_sigsegv_update *update) {
  forget_ended(update);
  free(update->stale_ranges);
  update->stale_ranges = NULL;
  update->stale_capacity = 0;
}
