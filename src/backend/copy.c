/* The `copy` backend: concurrent compaction with MREMAP_DONTUNMAP + userfaultfd MISSING +
 * UFFDIO_COPY (private anonymous memory).
 *
 * The compaction pause (world stopped, roots already point to the new addresses):
 *
 *   heap [base, base+R)  --mremap(MAYMOVE|FIXED|DONTUNMAP)-->  from-space [from, from+R)
 *        the heap keeps its VMA but no page tables: every access is now a missing fault
 *   register [base, base+R) for MISSING faults with our userfaultfd
 *   build the pinned objects' pages in place (they never left: see below)
 *   resume the world
 *
 * R is the whole 1 GiB-multiple reservation: both ends 1 GiB-aligned, the kernel moves
 * whole PUD entries (about 5 us per GiB instead of 4.8 ms). Only the pages that will hold
 * compacted data, [base, base + D), are registered: the space above is where allocation goes
 * next, and an ordinary zero-fill fault there costs about 1.5 us where a userfault costs 5.
 * Registering part of the VMA splits it. DONTUNMAP left the heap VMA without an anon_vma; if
 * the two pieces then got anon_vmas of their own they could not merge back after
 * unregistering, and the next cycle's mremap over two VMAs would fail. So one page above D is
 * touched first (and dropped again): the whole VMA gets its anon_vma before the split and
 * both pieces share it. The range is always unregistered before the next mremap: a
 * registered source makes mremap move one PTE at a time.
 *
 * Pinned objects' pages (the plan's held spans) never leave the heap (backend/handoff.h): a
 * system call of a thread the pause does not stop may be writing into them. The mremap
 * moves the stretches between them instead (k + 1 calls for k spans), their pages are
 * copied into from-space for the builds of neighbouring pages, and they are built in place
 * in the pause (ugc_concurrent_build_held_in_place: fillers and reference slots only) and
 * marked MAPPED: present pages never fault, and no GC thread, faulting thread or helper
 * touches them. A partial DONTUNMAP keeps the heap VMA's anon_vma, so the touch above is
 * then merely harmless.
 *
 * Then GC threads and faulting mutators build pages (compact/concurrent.h) and map them with
 * UFFDIO_COPY from a buffer. The GC threads are woken once the world runs again
 * (compact_resumed; woken in the pause, they took the CPU of the thread ending it).
 * Faults reach us in one of two ways:
 *   sigbus  (default) UFFD_FEATURE_SIGBUS: the faulting thread gets SIGBUS and builds the
 *           page itself in its handler, then retries the access (about 5-6 us per fault);
 *   thread  a handler thread reads fault messages and builds the page for the sleeping
 *           thread; needed where SIGBUS mode is missing (or masked), and when the embedder
 *           passes heap memory to system calls (the kernel then waits instead of EFAULT).
 * When every data page is mapped the range is unregistered and the rest of from-space freed:
 * by the last GC thread to finish its share, or by compact_wait if that comes first.
 * If the hand-off fails (mremap, registration, memory for page states), the cycle compacts
 * in the pause with the stw backend instead: slower, never wrong.
 *
 * The ranges of big non-moving objects whose references are updated after the pause are
 * protected the same way, in backend/copy_update.c.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "backend/availability.h"
#include "backend/backend.h"
#include "backend/copy.h"
#include "backend/handoff.h"
#include "backend/retain.h"
#include "compact/compact_threads.h"
#include "compact/concurrent.h"
#include "compact/update_pages.h"
#include "os/inject.h"
#include "os/log.h"
#include "os/madvise.h"
#include "os/remap.h"
#include "os/reserve.h"
#include "os/time.h"
#include "runtime/heap.h"
#include "runtime/thread_signals.h"
#include "uffd/fault_thread.h"
#include "uffd/resolve.h"
#include "uffd/sigbus.h"
#include "uffd/uffd.h"

static const char zero_page[UGC_PAGE_SIZE] __attribute__((aligned(4096)));
#define PAUSE_BATCH_BYTES (UGC_CONCURRENT_BATCH_PAGES * UGC_PAGE_SIZE)

/* ---- mapping primitives (async-signal-safe) ------------------------------------------- */

/* A process that is not the descriptor's owner and finds a compaction in flight was forked
 * without the atfork handlers (a raw clone system call, _Fork), which would have finished
 * the compaction first. Its heap pages not built yet are gone (the kernel does not carry a
 * registration into a child), and every ioctl on the inherited descriptor would act on the
 * parent's memory: it must stop before touching either. Async-signal-safe. */
static void check_owner(const ugc_copy_backend *backend) {
  if (getpid() == backend->owner_pid)
    return;
  static const char message[] =
      "uffdgc: fatal: copy backend: this process was forked during a concurrent compaction "
      "without the pthread_atfork handlers (a raw clone system call or _Fork): its heap is "
      "incomplete and the inherited userfaultfd acts on the parent's memory; use fork()\n";
  ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
  (void)ignored;
  abort();
}

/* Why a resolving ioctl failed, for the fatal message (errors that are not retried). */
static const char *explain_map_error(int err) {
  switch (err) {
  case ENOENT:
    return " (the range is not registered: the compaction ended under its owner)";
  case ESRCH:
    return " (the descriptor's address space is gone)";
  case EFAULT:
    return " (the built page's buffer is not readable)";
  case EBUSY:
    return " (busy: UFFDIO_COPY never answers this)";
  case EINVAL:
    return " (invalid range or mapping)";
  default:
    return "";
  }
}

/* The outcome of every answer of UFFDIO_COPY (docs/design.md has the table): EAGAIN (an
 * address-space change in progress) and ENOMEM (a memory cgroup at its limit, where an
 * ordinary fault would have reclaimed) are transient and retried by the caller; EEXIST
 * goes to the page protocol (a helper's copy, or fatal there); anything else leaves a hole
 * no later access could fill, and is reported here and fatal. */
static ugc_map_result classify_copy(ugc_uffd_result r, const char *what) {
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
    char message[160];
    size_t length = 0;
    for (const char *p = what; *p && length < 60; p++)
      message[length++] = *p;
    for (const char *p = explain_map_error(r.err); *p && length < sizeof message - 1; p++)
      message[length++] = *p;
    message[length] = 0;
    ugc_log_error_signal_safe("copy backend", message, r.err);
    return UGC_MAP_FAILED;
  }
}

static ugc_map_result copy_map(void *ctx, uintptr_t dst, const void *src, size_t bytes,
                               size_t *done) {
  ugc_copy_backend *backend = ctx;
  check_owner(backend);
  ugc_uffd_result r = ugc_uffd_copy(&backend->uffd, (void *)dst, src, bytes, 0);
  *done = r.done;
  return classify_copy(r, "UFFDIO_COPY of a to-space page failed");
}

static ugc_map_result copy_map_zero(void *ctx, uintptr_t dst) {
  ugc_copy_backend *backend = ctx;
  check_owner(backend);
  /* UFFDIO_COPY of zeros, not UFFDIO_ZEROPAGE: the shared zero page is read-only and the
   * first write (allocation goes there next) would cost a second fault. */
  ugc_uffd_result r = ugc_uffd_copy(&backend->uffd, (void *)dst, zero_page, UGC_PAGE_SIZE, 0);
  if (r.status == UGC_UFFD_NOENT)
    return UGC_MAP_EXISTS; /* compaction ended meanwhile: the range is unregistered and the
                              retried access is an ordinary fault */
  /* EEXIST: another thread mapped zeros first. */
  return classify_copy(r, "UFFDIO_COPY of a zero page failed");
}

/* The start of what this compaction still means to keep: allocation during the compaction
 * (into fresh pages) moves it up. */
static uintptr_t kept_from(ugc_copy_backend *backend) {
  uintptr_t frontier = atomic_load_explicit(&backend->alloc_frontier, memory_order_relaxed);
  frontier = (frontier + UGC_RETAIN_CHUNK - 1) & ~(UGC_RETAIN_CHUNK - 1);
  return frontier > backend->keep_low ? frontier : backend->keep_low;
}

/* Drained from-space: what the next cycle will allocate into stays (kept), the rest goes
 * to the pool allocation takes from during this compaction, which releases what it does
 * not keep. */
static void copy_release_from(void *ctx, uintptr_t from, size_t bytes) {
  ugc_copy_backend *backend = ctx;
  if (backend->keep_low < backend->keep_high) {
    uintptr_t kept = kept_from(backend) + (backend->from_base - backend->space_base);
    bytes = from >= kept ? 0 : kept - from < bytes ? kept - from : bytes;
  }
  /* The from-space twins of untouched spans were never handed off (still the bare
   * reservation): the pool takes what lies between them, as separate pieces. */
  const ugc_compact_plan *plan = backend->plan;
  uintptr_t delta = backend->from_base - backend->space_base, end = from + bytes;
  for (size_t r = 0; r < plan->untouched_count && from < end; r++) {
    uintptr_t span_start = plan->untouched[r].start + delta,
              span_end = plan->untouched[r].end + delta;
    if (span_end <= from || span_start >= end)
      continue;
    if (span_start > from)
      ugc_drained_add(&backend->drained, from, span_start - from);
    from = span_end < end ? span_end : end;
  }
  if (from < end)
    ugc_drained_add(&backend->drained, from, end - from);
}

/* ---- fault delivery --------------------------------------------------------------------- */

/* Fault callbacks count themselves in `resolvers`, so that a compaction never ends (and the
 * next one never resets the page states) under a thread still resolving a fault of it. In
 * SIGBUS mode that thread is a mutator, which a pause waits for anyway; the handler thread
 * of thread mode is not. */
static int copy_on_sigbus(void *ctx, void *addr, int is_write, void *page_buffer) {
  (void)is_write;
  ugc_copy_backend *backend = ctx;
  /* Not compacting: a fault that raced with the end (the range is unregistered now, the
   * retry is an ordinary fault) or a SIGBUS with another cause: the dispatcher tells. */
  int result = UGC_SIGBUS_IDLE;
  atomic_fetch_add(&backend->resolvers, 1);
  if (atomic_load(&backend->compacting)) {
    check_owner(backend);
    result = ugc_concurrent_resolve_fault(&backend->concurrent, (uintptr_t)addr, page_buffer) == 0
                 ? UGC_SIGBUS_HANDLED
                 : UGC_SIGBUS_NOT_MINE;
  }
  atomic_fetch_sub(&backend->resolvers, 1);
  return result;
}

static void copy_on_fault_message(void *ctx, const ugc_uffd_fault *fault) {
  ugc_copy_backend *backend = ctx;
  uintptr_t page = (uintptr_t)fault->addr & ~(uintptr_t)(UGC_PAGE_SIZE - 1);
  char page_buffer[UGC_PAGE_SIZE] __attribute__((aligned(64))); /* our own thread's stack */
  ugc_update_pages_wait_handoff(&backend->heap->update_pages);
  atomic_fetch_add(&backend->resolvers, 1);
  if (atomic_load(&backend->compacting)) {
    check_owner(backend);
    if (ugc_update_pages_resolve(&backend->heap->update_pages, page, page_buffer) != 0)
      ugc_concurrent_resolve_fault(&backend->concurrent, page, page_buffer);
  }
  atomic_fetch_sub(&backend->resolvers, 1);
  /* The owner's UFFDIO_COPY woke the waiters it knew of; wake once more for a thread that
   * began waiting after it (a no-op otherwise). */
  ugc_uffd_wake(&backend->uffd, (void *)page, UGC_PAGE_SIZE);
}

static int start_delivery(ugc_copy_backend *backend, ugc_error *error) {
  if (backend->sigbus_delivery) {
    if (backend->sigbus_range < 0) {
      int id = ugc_sigbus_add_range((void *)backend->space_base, backend->space_bytes,
                                    copy_on_sigbus, backend);
      if (id < 0) {
        ugc_set_error(error, UGC_ERR_KERNEL, "copy backend: installing the SIGBUS handler: %s",
                      strerror(-id));
        return -1;
      }
      backend->sigbus_range = id;
    }
    return 0;
  }
  int rc = ugc_fault_thread_start(&backend->fault_thread, &backend->uffd, copy_on_fault_message,
                                  backend);
  if (rc != 0) {
    ugc_set_error(error, UGC_ERR_UNAVAILABLE, "copy backend: starting the fault-handler thread: %s",
                  strerror(-rc));
    return -1;
  }
  backend->fault_thread_running = true;
  return 0;
}

/* Opens the descriptor in the delivery mode chosen at attach. */
static int open_uffd(ugc_copy_backend *backend, ugc_error *error) {
  uint64_t features = backend->sigbus_delivery ? UFFD_FEATURE_SIGBUS : 0;
  uint64_t wanted = backend->variant ? backend->variant->uffd_features : 0;
  /* MOVE, where the kernel has it, also serves retention (backend/retain.h). */
  features |= wanted | UFFD_FEATURE_MOVE;
  unsigned flags =
      UGC_UFFD_ALLOW_USER_MODE_ONLY | (backend->sigbus_delivery ? 0 : UGC_UFFD_NONBLOCK);
  int rc = ugc_uffd_create(&backend->uffd, features, flags);
  if (rc != 0) {
    ugc_set_error(error, UGC_ERR_UNAVAILABLE, "copy backend: opening userfaultfd: %s",
                  strerror(-rc));
    return -1;
  }
  if (backend->sigbus_delivery && !(backend->uffd.features & UFFD_FEATURE_SIGBUS)) {
    ugc_uffd_close(&backend->uffd);
    ugc_set_error(error, UGC_ERR_UNAVAILABLE, "copy backend: the SIGBUS feature was refused");
    return -1;
  }
  if ((backend->uffd.features & wanted) != wanted) {
    ugc_uffd_close(&backend->uffd);
    ugc_set_error(error, UGC_ERR_UNAVAILABLE, "copy backend: userfaultfd refused features 0x%llx",
                  (unsigned long long)(wanted & ~backend->uffd.features));
    return -1;
  }
  backend->owner_pid = getpid();
  return 0;
}

/* After fork() the inherited descriptor still belongs to the parent's address space and the
 * handler thread does not exist: the child opens its own. */
static int reopen_after_fork(ugc_copy_backend *backend) {
  if (backend->owner_pid == getpid())
    return 0;
  if (backend->uffd.fd >= 0)
    close(backend->uffd.fd);
  backend->uffd.fd = -1;
  if (backend->fault_thread_running)
    ugc_fault_thread_forget(&backend->fault_thread);
  backend->fault_thread_running = false;
  /* The parent's handler thread may have been inside a callback at fork time: it does not
   * exist here, and neither does its count. */
  atomic_store(&backend->resolvers, 0);
  ugc_error error;
  if (ugc_inject("copy.reopen")) {
    ugc_warn("copy backend: opening userfaultfd: %s (in a child process after fork); "
             "compacting in the pause",
             strerror(EMFILE));
    return -1;
  }
  if (open_uffd(backend, &error) != 0 || start_delivery(backend, &error) != 0) {
    ugc_warn("%s (in a child process after fork)", error.message);
    return -1;
  }
  return 0;
}

/* ---- the backend interface ---------------------------------------------------------------- */

static void copy_on_threads_idle(void *data, uint64_t generation);

int ugc_copy_attach(ugc_heap *heap, ugc_error *error, const char *name,
                    const ugc_copy_variant *variant, void *variant_ctx) {
  char reason[160];
  if (ugc_backend_availability(name, reason, sizeof reason) != 1) {
    ugc_set_error(error, UGC_ERR_UNAVAILABLE, "%s backend unavailable: %s", name, reason);
    return -1;
  }
  ugc_copy_backend *backend = calloc(1, sizeof *backend);
  if (!backend) {
    ugc_set_error(error, UGC_ERR_NOMEM, "copy backend: out of memory");
    return -1;
  }
  (void)ugc_inject_armed(); /* parse UFFDGC_INJECT here, not first in a signal handler */
  backend->heap = heap;
  backend->variant = variant;
  backend->variant_ctx = variant_ctx;
  backend->sigbus_range = -1;
  backend->uffd.fd = -1;
  backend->space_base = heap->moving.base;
  backend->space_bytes = heap->moving.reserved_bytes;
  backend->from_base = heap->moving.from_base;
  backend->pause_batch =
      mmap(NULL, PAUSE_BATCH_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (backend->pause_batch == MAP_FAILED) {
    free(backend);
    ugc_set_error(error, UGC_ERR_NOMEM, "copy backend: out of memory");
    return -1;
  }
  ugc_completion_init(&backend->completion);
  ugc_concurrent_init(&backend->concurrent);
  ugc_retained_init(&backend->retained);
  ugc_drained_init(&backend->drained);

  const char *delivery = heap->config.delivery ? heap->config.delivery : "sigbus";
  backend->sigbus_delivery = strcmp(delivery, "thread") != 0;
  if (backend->sigbus_delivery && !(ugc_uffd_caps_get()->features & UFFD_FEATURE_SIGBUS)) {
    if (heap->config.trace)
      fprintf(heap->config.trace_file ? heap->config.trace_file : stderr,
              "uffdgc: copy backend: SIGBUS delivery unavailable, using a handler thread\n");
    backend->sigbus_delivery = false;
  }
  if (open_uffd(backend, error) != 0 || start_delivery(backend, error) != 0) {
    if (backend->uffd.fd >= 0)
      ugc_uffd_close(&backend->uffd);
    ugc_concurrent_destroy(&backend->concurrent);
    ugc_retained_destroy(&backend->retained);
    ugc_drained_destroy(&backend->drained);
    munmap(backend->pause_batch, PAUSE_BATCH_BYTES);
    free(backend);
    return -1;
  }
  /* config.compact_threads: by default a CPU is left to the application (runtime/config.c). */
  ugc_compact_threads_init(&backend->threads, heap->config.compact_threads);
  ugc_compact_threads_on_idle(&backend->threads, copy_on_threads_idle, backend);
  backend->concurrent.first_work = ugc_anon_update_gc_work;
  backend->concurrent.first_work_data = &heap->update_pages;
  heap->backend_data = backend;
  return 0;
}

static int copy_attach(ugc_heap *heap, ugc_error *error) {
  return ugc_copy_attach(heap, error, "copy", NULL, NULL);
}

void *ugc_copy_variant_ctx(const ugc_heap *heap) {
  const ugc_copy_backend *backend = heap->backend_data;
  return backend ? backend->variant_ctx : NULL;
}

ugc_uffd *ugc_copy_uffd(ugc_heap *heap) {
  ugc_copy_backend *backend = heap->backend_data;
  return &backend->uffd;
}

static void check_owner_of(const void *backend) {
  check_owner(backend);
}

void ugc_copy_check_owner(const ugc_heap *heap) {
  check_owner(heap->backend_data);
}

void ugc_copy_detach(ugc_heap *heap) {
  ugc_copy_backend *backend = heap->backend_data;
  if (!backend)
    return;
  ugc_copy_compact_wait(heap);
  ugc_anon_update_destroy(&backend->update);
  ugc_compact_threads_destroy(&backend->threads);
  if (backend->sigbus_range >= 0)
    ugc_sigbus_remove_range(backend->sigbus_range);
  if (backend->fault_thread_running && backend->owner_pid == getpid())
    ugc_fault_thread_stop(&backend->fault_thread);
  if (backend->uffd.fd >= 0)
    ugc_uffd_close(&backend->uffd);
  ugc_concurrent_destroy(&backend->concurrent);
  ugc_retained_destroy(&backend->retained);
  ugc_drained_destroy(&backend->drained);
  ugc_completion_destroy(&backend->completion);
  munmap(backend->pause_batch, PAUSE_BATCH_BYTES);
  free(backend);
  heap->backend_data = NULL;
}

/* Before the compaction pause: the memory the last compaction kept (backend/retain.h) is
 * dropped and from-space becomes a bare reservation again, while mutators run. Left for the
 * hand-off, its pages were freed by the mremap in the pause (MREMAP_FIXED unmaps what is at
 * the destination first): O(kept pages), 2-3 ms for a few hundred MiB. Allocation from now
 * to the pause faults in fresh pages instead of taking kept ones. The compaction that
 * retained them is complete (compact_wait has run), so nothing else uses from-space. */
void ugc_copy_compact_prepare(ugc_heap *heap) {
  ugc_copy_backend *backend = heap->backend_data;
  if (!backend || (!ugc_retained_pending(&backend->retained) && !backend->from_space_has_tables))
    return;
  ugc_copy_carry_kept_chunks(backend);
  ugc_retained_drop(&backend->retained, false); /* no chunk moves in after this */
  /* On failure (no memory to split a VMA) the pages stay: the hand-off's mremap frees them
   * in the pause, as it did before this step existed. Even with every kept page moved out,
   * the empty page tables stayed: the destination's PUD entry was then taken, and the
   * mremap moved each PMD (with its TLB flush, an IPI to each CPU running one of the
   * process's threads) or each PTE: 1-9 ms of a 1 GiB compaction pause, 0.02-0.1 ms without. */
  if (ugc_uncommit((void *)backend->from_base, backend->space_bytes) == 0)
    backend->from_space_has_tables = false;
}

int ugc_copy_compact_start(ugc_heap *heap, ugc_compact_plan *plan) {
  ugc_copy_backend *backend = heap->backend_data;
  uint64_t drop_start = ugc_now_ns();
  /* Whatever the last compaction kept goes with from-space now (the hand-off replaces it;
   * with concurrent marking compact_prepare freed it already, outside the pause), and the
   * heap above the new top will be fresh memory again. */
  ugc_retained_drop(&backend->retained, false);
  /* Kept memory moved in above the top and not handed out: from-space above the old top
   * after the hand-off, free for allocation during this compaction (retain.h, the tail). */
  uintptr_t tail_low = (plan->old_top + UGC_RETAIN_CHUNK - 1) & ~(UGC_RETAIN_CHUNK - 1);
  uintptr_t tail_high = heap->moving.recycled_high & ~(UGC_RETAIN_CHUNK - 1);
  heap->moving.recycled_low = heap->moving.recycled_high = 0;
  backend->keep_low = backend->keep_high = 0;
  atomic_store_explicit(&backend->alloc_frontier, 0, memory_order_relaxed);
  ugc_anon_update_forget_ended(&backend->update);
  if (reopen_after_fork(backend) != 0)
    return ugc_backend_stw.compact_start(heap, plan);
  if (backend->sigbus_delivery)
    ugc_heap_signals_check(heap);
  void *space = (void *)backend->space_base;
  uint64_t handoff_start = ugc_now_ns();
  uint64_t drop_ns = handoff_start - drop_start;
  int rc =
      ugc_inject("copy.mremap") ? -ENOMEM : ugc_handoff_around_held(&heap->moving, plan, "copy");
  if (rc != 0) {
    ugc_warn("copy backend: mremap(DONTUNMAP) failed (%s); compacting in the pause",
             ugc_remap_explain(rc));
    return ugc_backend_stw.compact_start(heap, plan);
  }
  uint64_t mremap_end = ugc_now_ns();
  uint64_t mremap_ns = mremap_end - handoff_start;
  if (ugc_inject("copy.stray_read"))
    (void)*(volatile char *)space; /* maps the zero page: this page's copy will see EEXIST */
  size_t data_bytes = plan->page_count * UGC_PAGE_SIZE;
  if (data_bytes + UGC_HUGE_PAGE_SIZE <= backend->space_bytes) {
    /* The touch must not fault in (and zero) a whole huge page: THP off around it, when the
     * space has it. Flipping the flag of the whole VMA does not split it. */
    volatile char *last =
        (volatile char *)(backend->space_base + backend->space_bytes - UGC_PAGE_SIZE);
    bool huge = backend->heap->moving.huge_pages;
    if (huge)
      ugc_madv_nohugepage(space, backend->space_bytes);
    *last = 0; /* the VMA gets its anon_vma before the split (see top) */
    ugc_madv_dontneed((void *)last, UGC_PAGE_SIZE);
    if (huge)
      ugc_madv_hugepage(space, backend->space_bytes);
  } else {
    data_bytes = backend->space_bytes; /* no room for the touch: register it all, no split */
  }
  uint64_t register_start = ugc_now_ns();
  rc = 0;
  if (data_bytes)
    rc = ugc_inject("copy.register")
             ? -EBUSY
             : ugc_uffd_register(&backend->uffd, space, data_bytes, UGC_UFFD_REG_MISSING, 0, NULL);
  if (rc != 0) {
    ugc_warn("copy backend: registering the heap failed (%s); compacting in the pause",
             strerror(-rc));
    ugc_handoff_undo(&heap->moving, plan, "copy");
    return ugc_backend_stw.compact_start(heap, plan);
  }
  backend->registered_bytes = data_bytes;
  ugc_copy_choose_kept_range(backend, plan);
  /* An access between the mremap and the registration (a thread that is not parked: a
   * signal handler, a system call in a blocking region) mapped an ordinary page that the
   * registration does not cover: dropped now, in the pause, every data page faults to us
   * and an EEXIST later can only come from a helper. Not the held pages: they stay, and
   * are built in place below. */
  uint64_t dontneed_start = ugc_now_ns();
  heap->stats.compaction.madvise_calls += ugc_handoff_drop_unheld(&heap->moving, plan, data_bytes);
  uint64_t handoff_end = ugc_now_ns();
  uint64_t handoff_ns = handoff_end - handoff_start;
  heap->stats.compaction.handoff_ns += handoff_ns;
  if (handoff_ns > heap->stats.compaction.handoff_max_ns)
    heap->stats.compaction.handoff_max_ns = handoff_ns;
  ugc_page_mapper mapper = {
      .backend = backend,
      .map = copy_map,
      .map_zero = copy_map_zero,
      .release_from = copy_release_from,
  };
  intptr_t from_delta = (intptr_t)(backend->from_base - backend->space_base);
  if (backend->variant)
    backend->variant->begin(backend->variant_ctx, &mapper, plan, from_delta);
  if (ugc_inject("copy.page_states") ||
      ugc_concurrent_begin(&backend->concurrent, plan, from_delta, data_bytes, &mapper,
                           &heap->stats.stall) != 0) {
    ugc_warn("copy backend: no memory for the page states; compacting in the pause");
    if (data_bytes)
      ugc_uffd_unregister(&backend->uffd, space, data_bytes);
    ugc_handoff_undo(&heap->moving, plan, "copy");
    return ugc_backend_stw.compact_start(heap, plan);
  }
  backend->plan = plan;
  backend->from_end = (plan->old_top + UGC_PAGE_SIZE - 1) & ~(uintptr_t)(UGC_PAGE_SIZE - 1);
  ugc_copy_open_drained_pool(backend, plan, tail_low, tail_high);
  uint64_t fixed_start = ugc_now_ns();
  ugc_concurrent_build_held_in_place(&backend->concurrent); /* pinned objects' pages */
  uint64_t update_start = ugc_now_ns(); /* more kernel work of the pause: the hand-off's */
  backend->update = (ugc_anon_update){
      .uffd = &backend->uffd,
      .sigbus_delivery = backend->sigbus_delivery,
      .compacting = &backend->compacting,
      .resolvers = &backend->resolvers,
      .check_owner = check_owner_of,
      .owner = backend,
      .pages = &heap->update_pages,
      .stale_ranges = backend->update.stale_ranges,
      .stale_count = backend->update.stale_count,
      .stale_capacity = backend->update.stale_capacity,
  };
  ugc_anon_update_start(&backend->update, &mapper);
  uint64_t update_ns = ugc_now_ns() - update_start;
  heap->stats.compaction.handoff_ns += update_ns;
  if (handoff_ns + update_ns > heap->stats.compaction.handoff_max_ns)
    heap->stats.compaction.handoff_max_ns = handoff_ns + update_ns;
  uint64_t publish_start = ugc_now_ns();
  ugc_compaction_started(heap);
  ugc_completion_arm(&backend->completion, ugc_compact_threads_next_generation(&backend->threads));
  atomic_store_explicit(&backend->compacting, true, memory_order_release);
  ugc_update_pages_handoff_done(&heap->update_pages);
  /* Faulting threads build their pages from now on; the GC threads start after the pause
   * (compact_threads.h: deferred kick). */
  ugc_compact_threads_defer(&backend->threads, &backend->concurrent);
  /* The hand-off's parts, for the trace line (docs/api.md): every step of it is timed, so
   * that a step whose cost grows with the heap shows. */
  size_t used = strlen(heap->cycle_note);
  snprintf(heap->cycle_note + used, sizeof heap->cycle_note - used,
           " handoff(kept-drop=%.2fms mremap=%.2fms touch=%.2fms register=%.2fms "
           "dontneed=%.2fms states=%.2fms fixed=%.2fms update-ranges=%.2fms publish=%.2fms)",
           drop_ns / 1e6, mremap_ns / 1e6, (register_start - mremap_end) / 1e6,
           (dontneed_start - register_start) / 1e6, (handoff_end - dontneed_start) / 1e6,
           (fixed_start - handoff_end) / 1e6, (update_start - fixed_start) / 1e6, update_ns / 1e6,
           (ugc_now_ns() - publish_start) / 1e6);
  return 0;
}

/* Every page is mapped; the registration must go before the next hand-off's mremap (a
 * registered source moves one PTE at a time, and a page dropped later would fault to a
 * handler with no compaction to answer it). UFFDIO_UNREGISTER can fail for want of memory
 * to split or merge the VMA: retried with a back-off for about 0.3 s, then fatal. */
static void unregister_heap(ugc_copy_backend *backend) {
  int rc = 0;
  for (unsigned attempt = 0; attempt < 12; attempt++) {
    rc = ugc_inject("copy.unregister")
             ? -ENOMEM
             : ugc_uffd_unregister(&backend->uffd, (void *)backend->space_base,
                                   backend->registered_bytes);
    if (rc == 0)
      return;
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 250000L << (attempt < 8 ? attempt : 8)};
    nanosleep(&pause, NULL);
  }
  ugc_fatal("copy backend: unregistering the heap after a compaction keeps failing (%s); the "
            "heap cannot be compacted again",
            strerror(-rc));
}

static void add_stat(uint64_t *field, uint64_t value) {
  __atomic_fetch_add(field, value, __ATOMIC_RELAXED);
}

/* After the compaction pause: the GC threads start building (compact_threads.h, deferred
 * kick). */
void ugc_copy_compact_resumed(ugc_heap *heap) {
  ugc_copy_backend *backend = heap->backend_data;
  if (backend)
    ugc_compact_threads_start_deferred(&backend->threads);
}

/* Completes the compaction in progress (ugc_completion_fn: its lock held, unfinished). */
static void complete_compaction(void *data) {
  ugc_copy_backend *backend = data;
  ugc_heap *heap = backend->heap;
  ugc_concurrent *c = &backend->concurrent;
  /* Waited for before the collector kicked the GC threads (in the pause with verify mode
   * 2, or by a thread that came first): nothing else will build the pages. */
  ugc_compact_threads_run_deferred_here(&backend->threads);
  ugc_compact_threads_wait(&backend->threads);
  /* What GC threads did not release yet goes with the whole from-space mapping: back to a
   * bare reservation, page tables included, so the next hand-off's mremap finds nothing to
   * tear down at its destination. */
  uint64_t concurrent_ns = ugc_concurrent_finish(c);
  ugc_drained_close(&backend->drained); /* its chunks go with from-space below */
  ugc_update_pages_finish(&heap->update_pages);
  uint64_t release_start = ugc_now_ns();
  intptr_t from_delta = (intptr_t)(backend->from_base - backend->space_base);
  uintptr_t keep_low = kept_from(backend);
  if (keep_low < backend->keep_high) {
    /* Both sides of the kept range: from-space below it holds nothing the next cycle uses,
     * above it is more than the sizing target. */
    uintptr_t kept_from = keep_low + (uintptr_t)from_delta;
    uintptr_t kept_to = backend->keep_high + (uintptr_t)from_delta;
    uintptr_t from_limit = backend->from_base + backend->space_bytes;
    if (ugc_uncommit((void *)backend->from_base, kept_from - backend->from_base) != 0)
      ugc_madv_dontneed((void *)backend->from_base, kept_from - backend->from_base);
    if (ugc_uncommit((void *)kept_to, from_limit - kept_to) != 0)
      ugc_madv_dontneed((void *)kept_to, from_limit - kept_to);
    ugc_retained_keep(&backend->retained, keep_low, backend->keep_high, from_delta);
    backend->from_space_has_tables = true;
  } else if (ugc_uncommit((void *)backend->from_base, backend->space_bytes) != 0) {
    ugc_madv_dontneed((void *)backend->from_base, backend->from_end - backend->space_base);
  }
  heap->stats.compaction.madvise_ns += ugc_now_ns() - release_start;
  heap->stats.compaction.madvise_calls++;
  if (backend->registered_bytes) {
    unregister_heap(backend);
    backend->registered_bytes = 0;
  }
  atomic_store(&backend->compacting, false);
  while (atomic_load(&backend->resolvers)) /* every page is mapped: they finish at once */
    sched_yield();
  ugc_concurrent_clear_states(c); /* nobody looks at them now; the next pause need not */

  const ugc_compact_plan *plan = backend->plan;
  ugc_compaction_stats *s = &heap->stats.compaction;
  ugc_concurrent_counters *k = &c->counters;
  uint64_t by_gc = atomic_load(&k->pages_by_gc), by_mutator = atomic_load(&k->pages_by_mutator);
  ugc_stats_lock(heap); /* ugc_stats_get sees all of this cycle's counters or none */
  add_stat(&s->pages_total, plan->page_count);
  /* Plain copy counts the dense prefix as in place (its objects did not move); a moving
   * variant counts the pages it moved there, and the pages it recycled, as not fresh. The
   * held pages never left (built in place in the pause) are in place with either. Each
   * page is counted once: the shares add up to the pages built. */
  uint64_t in_place = atomic_load(&k->pages_in_place), recycled = atomic_load(&k->pages_recycled);
  uint64_t whole = atomic_load(&k->pages_slid_whole), held = atomic_load(&k->pages_held);
  uint64_t untouched = plan->untouched_pages; /* in place, never built */
  if (!c->mapper.move)
    in_place = (plan->dense_end - plan->space_base) / UGC_PAGE_SIZE +
               ugc_compact_held_pages_from(plan, plan->dense_end);
  else
    in_place += held + untouched;
  add_stat(&s->pages_in_place, in_place);
  add_stat(&s->pages_untouched, untouched);
  add_stat(&s->pages_recycled, recycled);
  add_stat(&s->pages_slid_whole, whole);
  add_stat(&s->pages_fresh, by_gc + by_mutator + untouched + atomic_load(&k->zero_pages) -
                                in_place - recycled - whole);
  add_stat(&s->move_ioctls, atomic_load(&k->move_calls));
  add_stat(&s->moves_misreported, atomic_load(&k->moves_misreported));
  add_stat(&s->pages_by_gc, by_gc);
  add_stat(&s->pages_by_mutator, by_mutator);
  add_stat(&s->pages_helped, atomic_load(&k->pages_helped));
  add_stat(&s->copy_ioctls, atomic_load(&k->map_calls) + atomic_load(&k->zero_calls));
  add_stat(&s->madvise_calls, atomic_load(&k->release_calls));
  /* The held pages were copied once, into from-space, for the builds of their neighbours. */
  add_stat(&s->bytes_copied, atomic_load(&k->bytes_copied) + held * UGC_PAGE_SIZE);
  add_stat(&s->concurrent_ns, concurrent_ns);
  add_stat(&s->memcpy_ns, atomic_load(&k->build_ns));
  add_stat(&s->map_ns, atomic_load(&k->map_ns));
  add_stat(&s->madvise_ns, atomic_load(&k->release_ns));
  add_stat(&s->wait_ns, atomic_load(&k->wait_ns));
  add_stat(&s->update_pages_by_gc, atomic_load(&heap->update_pages.pages_by_gc));
  add_stat(&s->update_pages_by_mutator, atomic_load(&heap->update_pages.pages_by_mutator));
  add_stat(&heap->stats.gc_cpu_ns, ugc_compact_threads_take_cpu_ns(&backend->threads));
  if (backend->variant)
    backend->variant->finish(backend->variant_ctx, s);
  ugc_stats_unlock(heap);
  ugc_compaction_finished(heap, &(ugc_compaction_report){concurrent_ns, by_gc, by_mutator,
                                                         atomic_load(&k->pages_helped)});
  uint64_t retries = atomic_load(&k->map_retries) + atomic_load(&heap->update_pages.map_retries);
  if (retries)
    ugc_warn("copy backend: %llu page mapping(s) retried after EAGAIN or ENOMEM",
             (unsigned long long)retries);
  ugc_completion_done(&backend->completion);
}

void ugc_copy_compact_wait(ugc_heap *heap) {
  ugc_copy_backend *backend = heap->backend_data;
  if (!backend || !ugc_completion_pending(&backend->completion))
    return;
  check_owner(backend); /* before any lock or ioctl: the parent's cycle is not ours */
  ugc_completion_wait(&backend->completion, complete_compaction, backend);
}

/* The last GC thread of a job completes the compaction at once (unless a waiting thread is
 * doing it already): from-space goes back to the kernel, and compaction_done and the trace
 * line come when the work ends, not at the next call that needs the compaction finished.
 * Only for the job it ran: a stale callback must not wait for a newer job it is part of. */
static void copy_on_threads_idle(void *data, uint64_t generation) {
  ugc_copy_backend *backend = data;
  ugc_completion_on_idle(&backend->completion, generation, complete_compaction, backend);
}

/* Heap full during the compaction: the mutator builds pages too (backend.h). */
size_t ugc_copy_compact_assist(ugc_heap *heap) {
  ugc_copy_backend *backend = heap->backend_data;
  return backend ? ugc_compact_threads_assist(&backend->threads) : 0;
}

/* fork(): compact_wait has run (no compaction in flight, none can start: the heap's locks
 * are held). Another thread may still be inside compact_wait, about to see that there is
 * nothing to wait for: holding the completion lock across the fork keeps it out of the
 * child. */
void ugc_copy_fork_prepare(ugc_heap *heap) {
  ugc_copy_backend *backend = heap->backend_data;
  /* Kept pages would be shared with the child after the fork, and UFFDIO_MOVE refuses
   * shared pages: given back instead. */
  ugc_retained_drop(&backend->retained, true);
  ugc_completion_fork_prepare(&backend->completion);
  ugc_compact_threads_fork_prepare(&backend->threads);
}

void ugc_copy_fork_parent(ugc_heap *heap) {
  ugc_copy_backend *backend = heap->backend_data;
  ugc_compact_threads_fork_parent(&backend->threads);
  ugc_completion_fork_parent(&backend->completion);
}

/* The descriptor and the handler thread are replaced at the child's first compaction
 * (reopen_after_fork); the locks are re-initialised now. */
void ugc_copy_fork_child(ugc_heap *heap) {
  ugc_copy_backend *backend = heap->backend_data;
  ugc_compact_threads_fork_child(&backend->threads);
  ugc_concurrent_fork_child(&backend->concurrent);
  ugc_completion_fork_child(&backend->completion);
}

const ugc_backend_ops ugc_backend_copy = {
    .name = "copy",
    .concurrent = true,
    .untouched_spans = true,
    .attach = copy_attach,
    .detach = ugc_copy_detach,
    .compact_start = ugc_copy_compact_start,
    .compact_prepare = ugc_copy_compact_prepare,
    .compact_wait = ugc_copy_compact_wait,
    .compact_resumed = ugc_copy_compact_resumed,
    .compact_assist = ugc_copy_compact_assist,
    .prepare_alloc = ugc_copy_prepare_alloc,
    .fork_prepare = ugc_copy_fork_prepare,
    .fork_parent = ugc_copy_fork_parent,
    .fork_child = ugc_copy_fork_child,
};
