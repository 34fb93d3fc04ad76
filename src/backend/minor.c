/* The `minor` backend: concurrent compaction on a shmem heap with userfaultfd minor faults
 * and UFFDIO_CONTINUE. Pages are built in place, straight into the file that will back
 * them, and then mapped into the heap: no copy into a buffer, no page allocated by the
 * mapping ioctl; and the dense prefix stays in the file pages that already hold it.
 *
 * The heap is memfd pieces (heap/file_space.h, the space provider the sigsegv backend uses
 * too; sigsegv keeps nothing):
 *
 *   pause    flip the space, keeping the dense prefix's K bytes (as far as the last cycle's
 *            files hold them: not the anonymous memory allocated since, not a file a fork
 *            child may map, and at most 8 pieces, else K = 0 and one fresh file): the old
 *            views move to from-space; [base, base + K) maps the same file ranges again,
 *            [base + K, base + D) a new memfd of the rest of the plan's D bytes, both
 *            MAP_PRIVATE, readable and writable; [base + D, end) fresh anonymous memory;
 *            [base, base + D) is registered for MISSING and MINOR faults and its page tables
 *            dropped, so every access faults
 *   after    GC threads build runs of pages through the MAP_SHARED alias view of those
 *            files (ascending, 16-page batches) and map each run into the heap view with
 *            UFFDIO_CONTINUE (one call per piece it spans). A kept page is already in the
 *            page cache: its build updates its references in place (the "copy" of a dense
 *            page onto itself changes nothing, unless a mutator wrote the page since the
 *            last cycle: then from-space holds the private copy, which goes back into the
 *            file page) and CONTINUE maps it: no new page. A mutator that touches a page
 *            first gets a MINOR fault (kept page, or a builder has started writing it) or a
 *            MISSING one (no page in the file yet), builds that page in place under an
 *            exclusive claim, maps it with CONTINUE and retries the access. EEXIST from
 *            CONTINUE (somebody mapped the page first) is fine.
 *
 * From-space survival: a kept page's old contents are its new page. The only other reader of
 * them is the build of a later page, which reads the header of an object that starts in it
 * (read_later in compact/concurrent.c); a dense page's build never changes a live object's
 * header, so it reads the same bytes before and after, as with the move backend's in-place
 * pages. The rest of the old files stays behind from-space until built; consumed from-space
 * is released in chunks (MADV_DONTNEED, and fallocate(PUNCH_HOLE) on the old files' ranges
 * that are not kept, unless a fork child may map them), the rest when the compaction ends:
 * files nothing keeps are closed, a kept file's range past the kept part is punched.
 * Mappings per cycle with P pieces before and P' after (P' <= 8): heap view P' + 1 (the
 * file part never splits: CONTINUE fills page tables and leaves the mappings alone),
 * from-space P + 1, alias P'; between cycles: heap view P' + 1, from-space reservation 1.
 *
 * Faults come as for the copy backend: SIGBUS in the faulting thread (default) or a
 * handler thread (UFFDGC_DELIVERY=thread). The heap view is private, as for sigsegv, so a
 * fork child gets a copy-on-write snapshot; the price is that the first write to a page
 * after its compaction copies it out of the file (the page stays in the file, counted as
 * shared memory). A child maps the files: neither process writes them in place nor punches
 * them afterwards. System calls that touch a page not built yet fail with EFAULT under
 * SIGBUS delivery (ugc_heap_syscalls_may_fault). If the flip or the registration fails, the
 * cycle compacts in the pause with the stw backend instead: slower, never wrong; so does a
 * cycle with pinned objects' pages (see minor_compact_start). */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "backend/availability.h"
#include "backend/backend.h"
#include "backend/copy_update.h"
#include "compact/compact_threads.h"
#include "compact/completion.h"
#include "compact/concurrent.h"
#include "heap/file_space.h"
#include "os/inject.h"
#include "os/log.h"
#include "os/madvise.h"
#include "os/pagemap.h"
#include "os/time.h"
#include "runtime/heap.h"
#include "runtime/thread_signals.h"
#include "uffd/fault_thread.h"
#include "uffd/resolve.h"
#include "uffd/sigbus.h"
#include "uffd/uffd.h"

typedef struct minor_backend {
  ugc_heap *heap;
  ugc_file_space space;
  ugc_uffd uffd;
  bool sigbus_delivery;
  int sigbus_range; /* -1 when not registered */
  ugc_fault_thread fault_thread;
  bool fault_thread_running;
  pid_t owner_pid; /* process the descriptor and threads belong to */
  size_t registered_bytes;
  size_t kept_bytes; /* the dense prefix kept in its files this compaction */
  /* Bit p: kept page p's from-space copy is a private one (see find_private_copies);
   * capacity in pages, grown in the pause. */
  uint64_t *private_copies;
  size_t private_copies_capacity;
  const ugc_compact_plan *plan;

  ugc_concurrent concurrent;
  ugc_anon_update update; /* references of large and non-moving objects, after the pause */
  ugc_compact_threads threads;
  _Atomic bool compacting;    /* faults in the heap are ours to resolve */
  _Atomic uint32_t resolvers; /* threads inside a fault callback */
  ugc_completion completion;  /* who finishes the compaction (compact/completion.h) */
  _Atomic uint64_t retries;   /* CONTINUE calls answered EAGAIN or ENOMEM this compaction */
} minor_backend;

/* ---- mapping primitives (async-signal-safe) --------------------------------------------- */

/* A process forked without the atfork handlers (raw clone) during a compaction would build
 * pages through the parent's shared alias and map them with the parent's descriptor. */
static void check_owner(const minor_backend *backend) {
  if (getpid() == backend->owner_pid)
    return;
  static const char message[] =
      "uffdgc: fatal: minor backend: this process was forked during a concurrent compaction "
      "without the pthread_atfork handlers (a raw clone system call or _Fork): its heap is "
      "incomplete and the inherited userfaultfd acts on the parent's memory; use fork()\n";
  ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
  (void)ignored;
  abort();
}

/* Maps pages built in place with UFFDIO_CONTINUE. A page already mapped (EEXIST) is
 * skipped. EFAULT means the file has no page there: a build that wrote nothing to it (the
 * new file reads as zeros without one). Touching it through the alias with an atomic add
 * of zero puts a page in the file without changing a byte, and the mapping is retried. */
static void check_owner_of(const void *backend) {
  check_owner(backend);
}

static ugc_map_result minor_publish(void *ctx, uintptr_t dst, const void *src, size_t bytes,
                                    size_t *done) {
  minor_backend *backend = ctx;
  check_owner(backend);
  *done = 0;
  uintptr_t touched = UINTPTR_MAX;
  for (;;) {
    /* One call per piece: a file piece is a mapping of its own, and CONTINUE acts within
     * one mapping. */
    uintptr_t at = dst + *done;
    size_t span = bytes - *done, piece_left = ugc_file_space_piece_end(&backend->space, at) - at;
    if (piece_left && span > piece_left)
      span = piece_left;
    ugc_uffd_result r = ugc_uffd_continue(&backend->uffd, (void *)at, span, UGC_UFFD_SKIP_EXISTING);
    *done += r.done + r.skipped;
    if (*done >= bytes)
      return UGC_MAP_OK;
    if ((r.status == UGC_UFFD_OK || r.status == UGC_UFFD_ALREADY_RESOLVED) &&
        r.done + r.skipped >= span)
      continue; /* the next piece */
    if (r.status == UGC_UFFD_OK || r.status == UGC_UFFD_ALREADY_RESOLVED)
      return UGC_MAP_OK;
    if (r.status == UGC_UFFD_PENDING_EVENT || r.err == ENOMEM || r.err == EAGAIN) {
      atomic_fetch_add_explicit(&backend->retries, 1, memory_order_relaxed);
      return UGC_MAP_RETRY;
    }
    if (r.err == EFAULT && touched != *done) {
      touched = *done;
      __atomic_fetch_add((volatile char *)src + *done, 0, __ATOMIC_RELAXED);
      continue;
    }
    ugc_log_error_signal_safe("minor backend", "UFFDIO_CONTINUE of a built page failed", r.err);
    return UGC_MAP_FAILED;
  }
}

/* Pages past the data are not registered: never asked for. */
static ugc_map_result minor_map_zero(void *ctx, uintptr_t dst) {
  (void)ctx;
  (void)dst;
  return UGC_MAP_EXISTS;
}

/* A kept page whose from-space copy is the file page itself (no private copy) is built by
 * updating it where it lies: the alias and from-space show the same page. */
static bool minor_is_own_source(void *ctx, size_t page) {
  minor_backend *backend = ctx;
  return page < backend->kept_bytes / UGC_PAGE_SIZE &&
         !(backend->private_copies[page / 64] & (UINT64_C(1) << (page % 64)));
}

/* In the pause, after the flip: which kept pages' from-space copies are private (a mutator
 * wrote them since their last compaction, so copy-on-write gave the old view its own page
 * and the file page is stale): those are built by copying, as before. One PAGEMAP_SCAN
 * over the kept part of from-space. False when it cannot be answered (no memory for the
 * bits, a kernel without PAGEMAP_SCAN; minor.copy_kept for A/B runs): then every kept page
 * is copied onto itself, as before. */
static bool find_private_copies(minor_backend *backend, size_t keep) {
  size_t pages = keep / UGC_PAGE_SIZE, words = (pages + 63) / 64;
  if (pages > backend->private_copies_capacity) {
    uint64_t *bits = realloc(backend->private_copies, words * sizeof *bits);
    if (!bits) {
      free(backend->private_copies);
      backend->private_copies = NULL;
      backend->private_copies_capacity = 0;
      return false;
    }
    backend->private_copies = bits;
    backend->private_copies_capacity = words * 64;
  }
  memset(backend->private_copies, 0, words * sizeof *backend->private_copies);
  return !ugc_inject("minor.copy_kept") &&
         ugc_pagemap_private_copies(backend->space.from_base, keep, backend->private_copies) == 0;
}

static void minor_release_from(void *ctx, uintptr_t from, size_t bytes) {
  minor_backend *backend = ctx;
  ugc_file_space_release_from(&backend->space, from, bytes);
}

/* ---- fault delivery --------------------------------------------------------------------- */

/* Resolves a fault at `addr` (a faulting mutator, or the handler thread for it): 0, 1 when
 * the page was mapped already and only mapped again, or -1 if the address is not in this
 * compaction's data.
 *
 * A page mapped this compaction can lose its page-table entry again while the range is
 * still registered: reclaim swaps a shmem page out and unmaps it. Its next access is a
 * MINOR fault on a page that is MAPPED already, which no build will map again: it is
 * mapped here (EEXIST: the entry is back, or the owner's CONTINUE was first).
 *
 * minor.drop_mapped (tests, SIGBUS delivery, one mutator thread: nobody else can touch the
 * page meanwhile) drops the page this fault just built or waited for, as reclaim would. */
static int resolve(minor_backend *backend, uintptr_t addr) {
  ugc_concurrent *c = &backend->concurrent;
  uintptr_t page = addr & ~(uintptr_t)(UGC_PAGE_SIZE - 1);
  size_t index = (page - c->space_base) / UGC_PAGE_SIZE;
  if (page >= c->space_base && page - c->space_base < c->registered_bytes &&
      index < c->states.count && ugc_page_get(&c->states, index) == UGC_PAGE_MAPPED) {
    ugc_uffd_result r =
        ugc_uffd_continue(&backend->uffd, (void *)page, UGC_PAGE_SIZE, UGC_UFFD_SKIP_EXISTING);
    /* NOENT: the compaction ended and unregistered the range since the fault was taken
     * (the retried access is an ordinary fault). */
    if (r.status != UGC_UFFD_OK && r.status != UGC_UFFD_ALREADY_RESOLVED &&
        r.status != UGC_UFFD_NOENT && r.status != UGC_UFFD_PENDING_EVENT && r.err != ENOMEM &&
        r.err != EAGAIN) {
      ugc_log_error_signal_safe("minor backend", "UFFDIO_CONTINUE of a page mapped before failed",
                                r.err);
      abort();
    }
    return 1; /* retried transient failures come back as another fault */
  }
  return ugc_concurrent_resolve_fault(c, addr, NULL);
}

/* Fault callbacks count themselves in `resolvers`: the compaction never ends (and from-space
 * never goes) under a thread still resolving one of its faults. */
static int minor_on_sigbus(void *ctx, void *addr, int is_write, void *page_buffer) {
  (void)is_write;
  (void)page_buffer; /* pages are built in place */
  minor_backend *backend = ctx;
  int result = UGC_SIGBUS_IDLE; /* not compacting: a fault that raced with the end */
  atomic_fetch_add(&backend->resolvers, 1);
  if (atomic_load(&backend->compacting)) {
    check_owner(backend);
    int resolved = resolve(backend, (uintptr_t)addr);
    result = resolved >= 0 ? UGC_SIGBUS_HANDLED : UGC_SIGBUS_NOT_MINE;
    if (resolved == 0 && ugc_inject("minor.drop_mapped"))
      ugc_madv_dontneed((void *)((uintptr_t)addr & ~(uintptr_t)(UGC_PAGE_SIZE - 1)), UGC_PAGE_SIZE);
  }
  atomic_fetch_sub(&backend->resolvers, 1);
  return result;
}

static void minor_on_fault_message(void *ctx, const ugc_uffd_fault *fault) {
  minor_backend *backend = ctx;
  uintptr_t page = (uintptr_t)fault->addr & ~(uintptr_t)(UGC_PAGE_SIZE - 1);
  char page_buffer[UGC_PAGE_SIZE] __attribute__((aligned(64))); /* our own thread's stack */
  ugc_update_pages_wait_handoff(&backend->heap->update_pages);
  atomic_fetch_add(&backend->resolvers, 1);
  if (atomic_load(&backend->compacting)) {
    check_owner(backend);
    /* A large object or the non-moving space (backend/copy_update.c), else the heap. */
    if (ugc_update_pages_resolve(&backend->heap->update_pages, page, page_buffer) != 0)
      resolve(backend, page);
  }
  atomic_fetch_sub(&backend->resolvers, 1);
  /* The owner's CONTINUE woke the waiters it knew of; wake once more for a thread that
   * began waiting after it (a no-op otherwise). */
  ugc_uffd_wake(&backend->uffd, (void *)page, UGC_PAGE_SIZE);
}

static int start_delivery(minor_backend *backend, ugc_error *error) {
  if (backend->sigbus_delivery) {
    if (backend->sigbus_range < 0) {
      int id = ugc_sigbus_add_range((void *)backend->space.base, backend->space.reserved_bytes,
                                    minor_on_sigbus, backend);
      if (id < 0) {
        ugc_set_error(error, UGC_ERR_KERNEL, "minor backend: installing the SIGBUS handler: %s",
                      strerror(-id));
        return -1;
      }
      backend->sigbus_range = id;
    }
    return 0;
  }
  int rc = ugc_fault_thread_start(&backend->fault_thread, &backend->uffd, minor_on_fault_message,
                                  backend);
  if (rc != 0) {
    ugc_set_error(error, UGC_ERR_UNAVAILABLE,
                  "minor backend: starting the fault-handler thread: %s", strerror(-rc));
    return -1;
  }
  backend->fault_thread_running = true;
  return 0;
}

static int open_uffd(minor_backend *backend, ugc_error *error) {
  uint64_t wanted = UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM;
  uint64_t features = wanted | (backend->sigbus_delivery ? UFFD_FEATURE_SIGBUS : 0);
  unsigned flags =
      UGC_UFFD_ALLOW_USER_MODE_ONLY | (backend->sigbus_delivery ? 0 : UGC_UFFD_NONBLOCK);
  int rc = ugc_uffd_create(&backend->uffd, features, flags);
  if (rc != 0) {
    ugc_set_error(error, UGC_ERR_UNAVAILABLE, "minor backend: opening userfaultfd: %s",
                  strerror(-rc));
    return -1;
  }
  if ((backend->uffd.features & features) != features) {
    ugc_set_error(error, UGC_ERR_UNAVAILABLE, "minor backend: userfaultfd refused features 0x%llx",
                  (unsigned long long)(features & ~backend->uffd.features));
    ugc_uffd_close(&backend->uffd);
    return -1;
  }
  backend->owner_pid = getpid();
  return 0;
}

/* After fork() the inherited descriptor belongs to the parent's address space and the
 * handler thread does not exist: the child opens its own. */
static int reopen_after_fork(minor_backend *backend) {
  if (backend->owner_pid == getpid())
    return 0;
  if (backend->uffd.fd >= 0)
    close(backend->uffd.fd);
  backend->uffd.fd = -1;
  if (backend->fault_thread_running)
    ugc_fault_thread_forget(&backend->fault_thread);
  backend->fault_thread_running = false;
  atomic_store(&backend->resolvers, 0);
  ugc_error error;
  if (open_uffd(backend, &error) != 0 || start_delivery(backend, &error) != 0) {
    ugc_warn("%s (in a child process after fork)", error.message);
    return -1;
  }
  return 0;
}

/* ---- the backend interface ------------------------------------------------------------- */

static void minor_on_threads_idle(void *data, uint64_t generation);

static int minor_attach(ugc_heap *heap, ugc_error *error) {
  char reason[160];
  if (ugc_backend_availability("minor", reason, sizeof reason) != 1) {
    ugc_set_error(error, UGC_ERR_UNAVAILABLE, "minor backend unavailable: %s", reason);
    return -1;
  }
  minor_backend *backend = calloc(1, sizeof *backend);
  if (!backend) {
    ugc_set_error(error, UGC_ERR_NOMEM, "minor backend: out of memory");
    return -1;
  }
  (void)ugc_inject_armed(); /* parse UFFDGC_INJECT here, not first in a signal handler */
  backend->heap = heap;
  backend->sigbus_range = -1;
  backend->uffd.fd = -1;
  ugc_file_space_init(&backend->space, heap->moving.base, heap->moving.reserved_bytes,
                      heap->moving.from_base, false);
  backend->space.huge_pages = heap->moving.huge_pages;
  const char *delivery = heap->config.delivery ? heap->config.delivery : "sigbus";
  backend->sigbus_delivery = strcmp(delivery, "thread") != 0;
  if (backend->sigbus_delivery && !(ugc_uffd_caps_get()->features & UFFD_FEATURE_SIGBUS)) {
    if (heap->config.trace)
      fprintf(heap->config.trace_file ? heap->config.trace_file : stderr,
              "uffdgc: minor backend: SIGBUS delivery unavailable, using a handler thread\n");
    backend->sigbus_delivery = false;
  }
  ugc_completion_init(&backend->completion);
  ugc_concurrent_init(&backend->concurrent);
  if (open_uffd(backend, error) != 0 || start_delivery(backend, error) != 0) {
    if (backend->uffd.fd >= 0)
      ugc_uffd_close(&backend->uffd);
    ugc_concurrent_destroy(&backend->concurrent);
    ugc_completion_destroy(&backend->completion);
    free(backend);
    return -1;
  }
  ugc_compact_threads_init(&backend->threads, heap->config.compact_threads);
  ugc_compact_threads_on_idle(&backend->threads, minor_on_threads_idle, backend);
  backend->concurrent.first_work = ugc_anon_update_gc_work;
  backend->concurrent.first_work_data = &heap->update_pages;
  heap->backend_data = backend;
  return 0;
}

static void minor_compact_wait(ugc_heap *heap);

static void minor_detach(ugc_heap *heap) {
  minor_backend *backend = heap->backend_data;
  if (!backend)
    return;
  minor_compact_wait(heap);
  ugc_anon_update_destroy(&backend->update);
  ugc_compact_threads_destroy(&backend->threads);
  if (backend->sigbus_range >= 0)
    ugc_sigbus_remove_range(backend->sigbus_range);
  if (backend->fault_thread_running && backend->owner_pid == getpid())
    ugc_fault_thread_stop(&backend->fault_thread);
  if (backend->uffd.fd >= 0)
    ugc_uffd_close(&backend->uffd);
  ugc_concurrent_destroy(&backend->concurrent);
  ugc_file_space_destroy(&backend->space);
  ugc_completion_destroy(&backend->completion);
  free(backend->private_copies);
  free(backend);
  heap->backend_data = NULL;
}

/* Compaction in the pause when the hand-off could not be made. */
static int compact_in_pause(minor_backend *backend, ugc_compact_plan *plan) {
  int rc = ugc_backend_stw.compact_start(backend->heap, plan);
  ugc_file_space_clear_after_pause(&backend->space, plan->page_count * UGC_PAGE_SIZE,
                                   plan->old_top);
  return rc;
}

/* Every page is mapped: the registration goes before the next flip moves the view.
 * UFFDIO_UNREGISTER can fail for want of memory: retried with a back-off, then fatal. */
static void unregister_heap(minor_backend *backend) {
  int rc = 0;
  for (unsigned attempt = 0; attempt < 12; attempt++) {
    rc =
        ugc_uffd_unregister(&backend->uffd, (void *)backend->space.base, backend->registered_bytes);
    if (rc == 0) {
      backend->registered_bytes = 0;
      return;
    }
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 250000L << (attempt < 8 ? attempt : 8)};
    nanosleep(&pause, NULL);
  }
  ugc_fatal("minor backend: unregistering the heap after a compaction keeps failing (%s)",
            strerror(-rc));
}

static int minor_compact_start(ugc_heap *heap, ugc_compact_plan *plan) {
  minor_backend *backend = heap->backend_data;
  size_t data_bytes = plan->page_count * UGC_PAGE_SIZE;
  if (reopen_after_fork(backend) != 0)
    return compact_in_pause(backend, plan);
  /* Pinned objects' pages (the plan's held spans) must keep their physical pages: a thread
   * the pause does not stop may be writing into one with a system call, and the flip gives
   * the heap view pages of another file (a page the old view's copy-on-write copy or the
   * old file held is read once, at its build; a write after that is lost). The file views
   * cannot keep single old pages in place yet, so such a cycle compacts in the pause, as
   * stw does: held pages never leave the heap range there (docs/api.md, "Pinning"). */
  if (plan->held_count)
    return compact_in_pause(backend, plan);
  if (backend->sigbus_delivery)
    ugc_heap_signals_check(heap);
  uint64_t handoff_start = ugc_now_ns();
  size_t keep = ugc_inject("minor.no_keep")
                    ? 0
                    : ugc_file_space_keepable(&backend->space, plan->dense_end - plan->space_base,
                                              data_bytes);
  int rc = ugc_inject("minor.flip")
               ? -ENOMEM
               : ugc_file_space_flip_keeping(&backend->space, data_bytes, keep);
  if (rc != 0) {
    ugc_warn("minor backend: mapping the heap for the compaction failed (%s); compacting in the "
             "pause",
             strerror(-rc));
    return compact_in_pause(backend, plan);
  }
  if (!data_bytes) { /* nothing survived: the old views just go */
    ugc_file_space_finish(&backend->space);
    return 0;
  }
  rc = ugc_inject("minor.register")
           ? -EBUSY
           : ugc_uffd_register(&backend->uffd, (void *)backend->space.base, data_bytes,
                               UGC_UFFD_REG_MISSING | UGC_UFFD_REG_MINOR, 0, NULL);
  if (rc != 0) {
    ugc_warn("minor backend: registering the heap failed (%s); compacting in the pause",
             strerror(-rc));
    ugc_file_space_unflip(&backend->space);
    return compact_in_pause(backend, plan);
  }
  backend->registered_bytes = data_bytes;
  /* An access between the flip and the registration (a thread that is not parked: a signal
   * handler, a system call in a blocking region) mapped a page of the file that nothing
   * was built into: dropped now, so that every data page faults to us. */
  ugc_madv_dontneed((void *)backend->space.base, data_bytes);
  heap->stats.compaction.madvise_calls++;
  uint64_t handoff_ns = ugc_now_ns() - handoff_start;
  heap->stats.compaction.handoff_ns += handoff_ns;
  if (handoff_ns > heap->stats.compaction.handoff_max_ns)
    heap->stats.compaction.handoff_max_ns = handoff_ns;
  backend->kept_bytes = keep;
  bool kept_updated_in_place = keep && find_private_copies(backend, keep);
  ugc_page_mapper mapper = {
      .backend = backend,
      .map = minor_publish,
      .map_zero = minor_map_zero,
      .release_from = minor_release_from,
      .build_base = backend->space.alias,
      .is_own_source = kept_updated_in_place ? minor_is_own_source : NULL,
  };
  intptr_t from_delta = (intptr_t)(backend->space.from_base - backend->space.base);
  if (ugc_inject("minor.page_states") ||
      ugc_concurrent_begin(&backend->concurrent, plan, from_delta, data_bytes, &mapper,
                           &heap->stats.stall) != 0) {
    ugc_warn("minor backend: no memory for the page states; compacting in the pause");
    unregister_heap(backend);
    ugc_file_space_unflip(&backend->space);
    return compact_in_pause(backend, plan);
  }
  backend->plan = plan;
  atomic_store(&backend->retries, 0);
  /* Large objects and the non-moving space are anonymous memory: protected with the same
   * descriptor and delivery, mapped with UFFDIO_COPY (backend/copy_update.c). */
  uint64_t update_start = ugc_now_ns();
  backend->update.uffd = &backend->uffd;
  backend->update.sigbus_delivery = backend->sigbus_delivery;
  backend->update.compacting = &backend->compacting;
  backend->update.resolvers = &backend->resolvers;
  backend->update.check_owner = check_owner_of;
  backend->update.owner = backend;
  backend->update.pages = &heap->update_pages;
  ugc_anon_update_start(&backend->update, NULL);
  uint64_t update_ns = ugc_now_ns() - update_start;
  heap->stats.compaction.handoff_ns += update_ns;
  if (handoff_ns + update_ns > heap->stats.compaction.handoff_max_ns)
    heap->stats.compaction.handoff_max_ns = handoff_ns + update_ns;
  ugc_compaction_started(heap);
  ugc_completion_arm(&backend->completion, ugc_compact_threads_next_generation(&backend->threads));
  atomic_store_explicit(&backend->compacting, true, memory_order_release);
  ugc_update_pages_handoff_done(&heap->update_pages);
  /* Faulting threads build their pages from now on; the GC threads start after the pause
   * (compact_threads.h: deferred kick). */
  ugc_compact_threads_defer(&backend->threads, &backend->concurrent);
  return 0;
}

/* After the compaction pause: the GC threads start building. */
static void minor_compact_resumed(ugc_heap *heap) {
  minor_backend *backend = heap->backend_data;
  if (backend)
    ugc_compact_threads_start_deferred(&backend->threads);
}

static void add_stat(uint64_t *field, uint64_t value) {
  __atomic_fetch_add(field, value, __ATOMIC_RELAXED);
}

/* Completes the compaction in progress (ugc_completion_fn: its lock held, unfinished). */
static void complete_compaction(void *data) {
  minor_backend *backend = data;
  ugc_heap *heap = backend->heap;
  ugc_concurrent *c = &backend->concurrent;
  /* Waited for before the collector kicked the GC threads (in the pause with verify mode
   * 2, or by a thread that came first): nothing else will build the pages. */
  ugc_compact_threads_run_deferred_here(&backend->threads);
  ugc_compact_threads_wait(&backend->threads);
  uint64_t concurrent_ns = ugc_concurrent_finish(c);
  ugc_update_pages_finish(&heap->update_pages);
  unregister_heap(backend);
  atomic_store(&backend->compacting, false);
  while (atomic_load(&backend->resolvers)) /* every page is mapped: they finish at once */
    sched_yield();
  ugc_concurrent_clear_states(c); /* nobody looks at them now; the next pause need not */
  uint64_t release_start = ugc_now_ns();
  ugc_file_space_finish(&backend->space);
  heap->stats.compaction.madvise_ns += ugc_now_ns() - release_start;
  heap->stats.compaction.madvise_calls++;

  const ugc_compact_plan *plan = backend->plan;
  ugc_compaction_stats *s = &heap->stats.compaction;
  ugc_concurrent_counters *k = &c->counters;
  uint64_t by_gc = atomic_load(&k->pages_by_gc), by_mutator = atomic_load(&k->pages_by_mutator);
  ugc_stats_lock(heap);
  /* Kept pages are in the page that holds them: in place, no new page. Those that were
   * their own source were only updated; the others (private copies) were copied back into
   * the file page. Every page was built and published once. */
  uint64_t kept_pages = backend->kept_bytes / UGC_PAGE_SIZE;
  uint64_t updated_only_bytes = atomic_load(&k->pages_updated_only) * UGC_PAGE_SIZE;
  add_stat(&s->pages_total, plan->page_count);
  add_stat(&s->pages_in_place, kept_pages);
  add_stat(&s->pages_fresh, by_gc + by_mutator - kept_pages);
  add_stat(&s->pages_by_gc, by_gc);
  add_stat(&s->pages_by_mutator, by_mutator);
  add_stat(&s->update_pages_by_gc, atomic_load(&heap->update_pages.pages_by_gc));
  add_stat(&s->update_pages_by_mutator, atomic_load(&heap->update_pages.pages_by_mutator));
  add_stat(&s->continue_ioctls, atomic_load(&k->map_calls));
  add_stat(&s->madvise_calls, atomic_load(&k->release_calls));
  add_stat(&s->bytes_copied, atomic_load(&k->bytes_copied) - updated_only_bytes);
  add_stat(&s->kept_bytes_copied, backend->kept_bytes - updated_only_bytes);
  add_stat(&s->concurrent_ns, concurrent_ns);
  add_stat(&s->memcpy_ns, atomic_load(&k->build_ns));
  add_stat(&s->map_ns, atomic_load(&k->map_ns));
  add_stat(&s->madvise_ns, atomic_load(&k->release_ns));
  add_stat(&s->wait_ns, atomic_load(&k->wait_ns));
  add_stat(&heap->stats.gc_cpu_ns, ugc_compact_threads_take_cpu_ns(&backend->threads));
  ugc_stats_unlock(heap);
  ugc_compaction_finished(heap, &(ugc_compaction_report){concurrent_ns, by_gc, by_mutator, 0});
  if (atomic_load(&backend->retries))
    ugc_warn("minor backend: %llu UFFDIO_CONTINUE call(s) retried after EAGAIN or ENOMEM",
             (unsigned long long)atomic_load(&backend->retries));
  ugc_completion_done(&backend->completion);
}

static void minor_compact_wait(ugc_heap *heap) {
  minor_backend *backend = heap->backend_data;
  if (!backend || !ugc_completion_pending(&backend->completion))
    return;
  check_owner(backend);
  ugc_completion_wait(&backend->completion, complete_compaction, backend);
}

/* The last GC thread of a job completes the compaction at once (see copy.c). */
static void minor_on_threads_idle(void *data, uint64_t generation) {
  minor_backend *backend = data;
  ugc_completion_on_idle(&backend->completion, generation, complete_compaction, backend);
}

/* fork(): no compaction is in flight. Both processes keep mapping the current file
 * (privately: neither sees the other's writes), so neither may punch it any more; the
 * child replaces the descriptor and the handler thread at its first compaction. */
static void minor_fork_prepare(ugc_heap *heap) {
  minor_backend *backend = heap->backend_data;
  ugc_completion_fork_prepare(&backend->completion);
  ugc_compact_threads_fork_prepare(&backend->threads);
}

static void minor_fork_parent(ugc_heap *heap) {
  minor_backend *backend = heap->backend_data;
  ugc_file_space_forked(&backend->space);
  ugc_compact_threads_fork_parent(&backend->threads);
  ugc_completion_fork_parent(&backend->completion);
}

static void minor_fork_child(ugc_heap *heap) {
  minor_backend *backend = heap->backend_data;
  ugc_file_space_forked(&backend->space);
  ugc_compact_threads_fork_child(&backend->threads);
  ugc_concurrent_fork_child(&backend->concurrent);
  ugc_completion_fork_child(&backend->completion);
}

/* Heap full during the compaction: the mutator builds pages too (backend.h). */
static size_t minor_compact_assist(ugc_heap *heap) {
  minor_backend *backend = heap->backend_data;
  return backend ? ugc_compact_threads_assist(&backend->threads) : 0;
}

const ugc_backend_ops ugc_backend_minor = {
    .name = "minor",
    .huge_pages = true,
    .concurrent = true,
    .attach = minor_attach,
    .detach = minor_detach,
    .compact_start = minor_compact_start,
    .compact_wait = minor_compact_wait,
    .compact_resumed = minor_compact_resumed,
    .compact_assist = minor_compact_assist,
    .fork_prepare = minor_fork_prepare,
    .fork_parent = minor_fork_parent,
    .fork_child = minor_fork_child,
};
