/* The `sigsegv` backend: concurrent compaction with page protection, the design that came
 * before userfaultfd. The heap is a memfd (heap/file_space.h, the space provider); in the
 * compaction pause the heap's data pages become PROT_NONE and the collector builds them
 * through a shared alias view of the same file, then makes each built run readable and
 * writable with mprotect:
 *
 *   pause    flip the space: old views -> from-space, [base, base + D) = new file PROT_NONE
 *            (the plan's D bytes of data), [base + D, end) = fresh RW anonymous memory
 *   after    GC threads build runs of pages in place through the alias (ascending, 16-page
 *            batches) and publish each run with one mprotect, so neighbouring runs merge
 *            into one mapping again; a mutator that touches a protected page gets SIGSEGV
 *            (SEGV_ACCERR, backend/segv_dispatch.h), builds that page in place and
 *            mprotects it, then retries the access.
 *
 * Claims are exclusive (compact/concurrent.h, in-place building): a waiter never builds a
 * second copy. Every page published alone in the middle of protected ones splits a mapping
 * in three, so the heap view's mapping count is tracked (one boundary per side that meets
 * a protected page, minus one per side that meets a published one) and kept below
 * vm.max_map_count: when the headroom (max_map_count minus the process's mappings at the
 * end of the last cycle, minus a margin) runs short, or when mprotect fails with ENOMEM,
 * runs are extended down to the nearest published page before they are published. Such a
 * run never adds a mapping, so the cycle finishes with larger runs instead of failing.
 *
 * System calls that touch a page not built yet fail with EFAULT: the kernel does not raise
 * SIGSEGV for an access from kernel mode (ugc_heap_syscalls_may_fault says so). A cycle
 * with pinned objects' pages (the plan's held spans) compacts in the pause instead (see
 * sigsegv_compact_start): the flip would give those pages new physical pages.
 * If the flip fails (memfd, mremap, mmap), the cycle compacts in the pause with the stw
 * backend instead: slower, never wrong. */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/availability.h"
#include "backend/backend.h"
#include "backend/segv_dispatch.h"
#include "backend/sigsegv_update.h"
#include "compact/compact_threads.h"
#include "compact/completion.h"
#include "compact/concurrent.h"
#include "heap/file_space.h"
#include "os/inject.h"
#include "os/log.h"
#include "os/procstat.h"
#include "os/time.h"
#include "runtime/heap.h"
#include "runtime/thread_signals.h"

/* Mappings kept free for the rest of the process (thread stacks, malloc arenas, ...). */
#define MAPPING_MARGIN 64
/* Runs are extended once fewer than this many new mappings are left. */
#define MERGE_THRESHOLD 16

typedef struct sigsegv_backend {
  ugc_heap *heap;
  ugc_file_space space;
  int segv_range; /* -1 when not registered */
  pid_t owner_pid;
  const ugc_compact_plan *plan;
  size_t data_bytes;

  ugc_concurrent concurrent;
  ugc_sigsegv_update update; /* references of large objects, after the pause */
  ugc_compact_threads threads;
  _Atomic bool compacting;
  _Atomic uint32_t resolvers; /* threads inside the fault callback */
  ugc_completion completion;  /* who finishes the compaction (compact/completion.h) */

  /* Mappings of the protected part of the heap view during a compaction. */
  _Atomic long vmas;
  _Atomic long vmas_peak;
  long headroom; /* new mappings this process may still create (estimate) */
  _Atomic bool merging;
} sigsegv_backend;

/* ---- mapping accounting ------------------------------------------------------------------ */

/* Reads vm.max_map_count and the process's mapping count; sets the headroom. Not in a
 * signal handler. */
static void refresh_headroom(sigsegv_backend *backend) {
  long max = 65530;
  FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
  if (f) {
    if (fscanf(f, "%ld", &max) != 1)
      max = 65530;
    fclose(f);
  }
  long used = ugc_proc_vma_count();
  if (used < 0)
    used = 0;
  backend->headroom = max - used - MAPPING_MARGIN;
}

static bool page_published(sigsegv_backend *backend, size_t page) {
  return ugc_page_get(&backend->concurrent.states, page) == UGC_PAGE_MAPPED;
}

/* How the mapping count changes when [first, first + count) becomes accessible: each side
 * that meets a protected page adds a boundary, each side that meets a published page
 * removes one (the mappings merge). Neighbours still being published count as protected,
 * so the estimate errs high. */
static long mapping_delta(sigsegv_backend *backend, size_t first, size_t count) {
  long delta = 0;
  size_t pages = backend->concurrent.states.count;
  if (first > 0)
    delta += page_published(backend, first - 1) ? -1 : 1;
  if (first + count < pages)
    delta += page_published(backend, first + count) ? -1 : 1;
  return delta;
}

static bool sigsegv_merge_runs(void *ctx) {
  sigsegv_backend *backend = ctx;
  if (atomic_load_explicit(&backend->merging, memory_order_relaxed))
    return true;
  if (atomic_load_explicit(&backend->vmas, memory_order_relaxed) + MERGE_THRESHOLD <
      backend->headroom)
    return false;
  atomic_store(&backend->merging, true);
  return true;
}

/* ---- mapping primitives (async-signal-safe) --------------------------------------------- */

/* A process forked without the atfork handlers (raw clone) during a compaction would build
 * pages through the parent's shared alias: it must stop first. */
static void check_owner(const sigsegv_backend *backend) {
  if (getpid() == backend->owner_pid)
    return;
  static const char message[] =
      "uffdgc: fatal: sigsegv backend: this process was forked during a concurrent compaction "
      "without the pthread_atfork handlers (a raw clone system call or _Fork): its pages would "
      "be built through the parent's memory; use fork()\n";
  ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
  (void)ignored;
  abort();
}

/* Publishes pages built in place: one mprotect. ENOMEM (out of mappings, or of memory to
 * split one) is retried by the driver after extending the run, which then merges. */
static ugc_map_result sigsegv_publish(void *ctx, uintptr_t dst, const void *src, size_t bytes,
                                      size_t *done) {
  (void)src;
  sigsegv_backend *backend = ctx;
  check_owner(backend);
  *done = 0;
  size_t first = (dst - backend->space.base) / UGC_PAGE_SIZE;
  long delta = mapping_delta(backend, first, bytes / UGC_PAGE_SIZE);
  int err = 0;
  if (ugc_inject("sigsegv.mprotect"))
    err = ENOMEM;
  else if (mprotect((void *)dst, bytes, PROT_READ | PROT_WRITE) != 0)
    err = errno;
  if (err == ENOMEM || err == EAGAIN) {
    atomic_store(&backend->merging, true);
    return UGC_MAP_RETRY;
  }
  if (err) {
    ugc_log_error_signal_safe("sigsegv backend", "mprotect of built pages failed", err);
    return UGC_MAP_FAILED;
  }
  long now = atomic_fetch_add(&backend->vmas, delta) + delta;
  long peak = atomic_load_explicit(&backend->vmas_peak, memory_order_relaxed);
  while (now > peak && !atomic_compare_exchange_weak(&backend->vmas_peak, &peak, now))
    ;
  return UGC_MAP_OK;
}

/* Pages past the data are not protected: never asked for. */
static ugc_map_result sigsegv_map_zero(void *ctx, uintptr_t dst) {
  (void)ctx;
  (void)dst;
  return UGC_MAP_EXISTS;
}

static void sigsegv_release_from(void *ctx, uintptr_t from, size_t bytes) {
  sigsegv_backend *backend = ctx;
  ugc_file_space_release_from(&backend->space, from, bytes);
}

static int sigsegv_on_fault(void *ctx, void *addr) {
  sigsegv_backend *backend = ctx;
  int result = UGC_SEGV_IDLE;
  atomic_fetch_add(&backend->resolvers, 1);
  if (atomic_load(&backend->compacting)) {
    check_owner(backend);
    result = ugc_concurrent_resolve_fault(&backend->concurrent, (uintptr_t)addr, NULL) == 0
                 ? UGC_SEGV_HANDLED
                 : UGC_SEGV_NOT_MINE;
  }
  atomic_fetch_sub(&backend->resolvers, 1);
  return result;
}

/* ---- the backend interface ------------------------------------------------------------- */

static void sigsegv_on_threads_idle(void *data, uint64_t generation);

static int sigsegv_attach(ugc_heap *heap, ugc_error *error) {
  char reason[160];
  if (ugc_backend_availability("sigsegv", reason, sizeof reason) != 1) {
    ugc_set_error(error, UGC_ERR_UNAVAILABLE, "sigsegv backend unavailable: %s", reason);
    return -1;
  }
  sigsegv_backend *backend = calloc(1, sizeof *backend);
  if (!backend) {
    ugc_set_error(error, UGC_ERR_NOMEM, "sigsegv backend: out of memory");
    return -1;
  }
  (void)ugc_inject_armed(); /* parse UFFDGC_INJECT here, not first in a signal handler */
  backend->heap = heap;
  backend->owner_pid = getpid();
  ugc_file_space_init(&backend->space, heap->moving.base, heap->moving.reserved_bytes,
                      heap->moving.from_base, true);
  backend->space.huge_pages = heap->moving.huge_pages;
  int id = ugc_segv_add_range((void *)heap->moving.base, heap->moving.reserved_bytes,
                              sigsegv_on_fault, backend);
  if (id < 0) {
    ugc_set_error(error, UGC_ERR_UNAVAILABLE, "sigsegv backend: installing the SIGSEGV handler: %s",
                  strerror(-id));
    free(backend);
    return -1;
  }
  backend->segv_range = id;
  ugc_completion_init(&backend->completion);
  ugc_concurrent_init(&backend->concurrent);
  refresh_headroom(backend);
  ugc_compact_threads_init(&backend->threads, heap->config.compact_threads);
  ugc_compact_threads_on_idle(&backend->threads, sigsegv_on_threads_idle, backend);
  backend->concurrent.first_work = ugc_sigsegv_update_gc_work;
  backend->concurrent.first_work_data = &heap->update_pages;
  heap->backend_data = backend;
  return 0;
}

static void sigsegv_compact_wait(ugc_heap *heap);

static void sigsegv_detach(ugc_heap *heap) {
  sigsegv_backend *backend = heap->backend_data;
  if (!backend)
    return;
  sigsegv_compact_wait(heap);
  ugc_compact_threads_destroy(&backend->threads);
  ugc_sigsegv_update_destroy(&backend->update);
  if (backend->segv_range >= 0)
    ugc_segv_remove_range(backend->segv_range);
  ugc_concurrent_destroy(&backend->concurrent);
  ugc_file_space_destroy(&backend->space);
  ugc_completion_destroy(&backend->completion);
  free(backend);
  heap->backend_data = NULL;
}

/* Compaction in the pause when the flip could not be made (file_space.h says why the file
 * part is cleared afterwards). */
static int compact_in_pause(sigsegv_backend *backend, ugc_compact_plan *plan) {
  int rc = ugc_backend_stw.compact_start(backend->heap, plan);
  ugc_file_space_clear_after_pause(&backend->space, plan->page_count * UGC_PAGE_SIZE,
                                   plan->old_top);
  return rc;
}

static int sigsegv_compact_start(ugc_heap *heap, ugc_compact_plan *plan) {
  sigsegv_backend *backend = heap->backend_data;
  size_t data_bytes = plan->page_count * UGC_PAGE_SIZE;
  backend->owner_pid = getpid(); /* a fork child compacts its own copy */
  ugc_heap_signals_check(heap);
  /* Pinned objects' pages (the plan's held spans) must keep their physical pages: a thread
   * the pause does not stop may be writing into one with a system call, and the flip gives
   * the heap view pages of another file (a page the old view's copy-on-write copy or the
   * old file held is read once, at its build; a write after that is lost). The file views
   * cannot keep single old pages in place yet, so such a cycle compacts in the pause, as
   * stw does: held pages never leave the heap range there (docs/api.md, "Pinning"). */
  if (plan->held_count)
    return compact_in_pause(backend, plan);
  uint64_t handoff_start = ugc_now_ns();
  int rc = ugc_inject("sigsegv.flip") ? -ENOMEM : ugc_file_space_flip(&backend->space, data_bytes);
  if (rc != 0) {
    ugc_warn("sigsegv backend: mapping the heap for the compaction failed (%s); compacting in "
             "the pause",
             strerror(-rc));
    return compact_in_pause(backend, plan);
  }
  uint64_t handoff_ns = ugc_now_ns() - handoff_start;
  heap->stats.compaction.handoff_ns += handoff_ns;
  if (handoff_ns > heap->stats.compaction.handoff_max_ns)
    heap->stats.compaction.handoff_max_ns = handoff_ns;
  if (!data_bytes) { /* nothing survived: the old views just go */
    ugc_file_space_finish(&backend->space);
    return 0;
  }
  ugc_page_mapper mapper = {
      .backend = backend,
      .map = sigsegv_publish,
      .map_zero = sigsegv_map_zero,
      .release_from = sigsegv_release_from,
      .build_base = backend->space.alias,
      .merge_runs = sigsegv_merge_runs,
  };
  intptr_t from_delta = (intptr_t)(backend->space.from_base - backend->space.base);
  if (ugc_inject("sigsegv.page_states") ||
      ugc_concurrent_begin(&backend->concurrent, plan, from_delta, data_bytes, &mapper,
                           &heap->stats.stall) != 0) {
    ugc_warn("sigsegv backend: no memory for the page states; compacting in the pause");
    ugc_file_space_unflip(&backend->space);
    return compact_in_pause(backend, plan);
  }
  backend->plan = plan;
  backend->data_bytes = data_bytes;
  atomic_store(&backend->vmas, 1);
  atomic_store(&backend->vmas_peak, 1);
  atomic_store(&backend->merging, backend->headroom < MERGE_THRESHOLD);
  uint64_t update_start = ugc_now_ns(); /* more kernel work of the pause */
  ugc_sigsegv_update_start(&backend->update, &heap->update_pages);
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
static void sigsegv_compact_resumed(ugc_heap *heap) {
  sigsegv_backend *backend = heap->backend_data;
  if (backend)
    ugc_compact_threads_start_deferred(&backend->threads);
}

static void add_stat(uint64_t *field, uint64_t value) {
  __atomic_fetch_add(field, value, __ATOMIC_RELAXED);
}

/* Completes the compaction in progress (ugc_completion_fn: its lock held, unfinished). */
static void complete_compaction(void *data) {
  sigsegv_backend *backend = data;
  ugc_heap *heap = backend->heap;
  ugc_concurrent *c = &backend->concurrent;
  /* Waited for before the collector kicked the GC threads (in the pause with verify mode
   * 2, or by a thread that came first): nothing else will build the pages. */
  ugc_compact_threads_run_deferred_here(&backend->threads);
  ugc_compact_threads_wait(&backend->threads);
  uint64_t concurrent_ns = ugc_concurrent_finish(c);
  ugc_update_pages_finish(&heap->update_pages);
  atomic_store(&backend->compacting, false);
  while (atomic_load(&backend->resolvers)) /* every page is published: they finish at once */
    sched_yield();
  ugc_concurrent_clear_states(c); /* nobody looks at them now; the next pause need not */
  uint64_t release_start = ugc_now_ns();
  ugc_file_space_finish(&backend->space);
  heap->stats.compaction.madvise_ns += ugc_now_ns() - release_start;
  heap->stats.compaction.madvise_calls++;
  refresh_headroom(backend);

  const ugc_compact_plan *plan = backend->plan;
  ugc_compaction_stats *s = &heap->stats.compaction;
  ugc_concurrent_counters *k = &c->counters;
  uint64_t by_gc = atomic_load(&k->pages_by_gc), by_mutator = atomic_load(&k->pages_by_mutator);
  uint64_t peak = (uint64_t)atomic_load(&backend->vmas_peak);
  ugc_stats_lock(heap);
  add_stat(&s->pages_total, plan->page_count);
  /* Every page, dense ones included, is built into this cycle's new file: all are fresh
   * (counting the dense prefix as in place too made in place + fresh exceed the total). */
  add_stat(&s->pages_fresh, by_gc + by_mutator);
  add_stat(&s->pages_by_gc, by_gc);
  add_stat(&s->pages_by_mutator, by_mutator);
  add_stat(&s->update_pages_by_gc, atomic_load(&heap->update_pages.pages_by_gc));
  add_stat(&s->update_pages_by_mutator, atomic_load(&heap->update_pages.pages_by_mutator));
  add_stat(&s->mprotect_calls, atomic_load(&k->map_calls));
  add_stat(&s->runs_extended, atomic_load(&k->runs_extended));
  if (peak > s->vmas_peak)
    s->vmas_peak = peak;
  if (atomic_load(&backend->merging))
    add_stat(&s->cycles_merged, 1);
  add_stat(&s->madvise_calls, atomic_load(&k->release_calls));
  add_stat(&s->bytes_copied, atomic_load(&k->bytes_copied));
  add_stat(&s->concurrent_ns, concurrent_ns);
  add_stat(&s->memcpy_ns, atomic_load(&k->build_ns));
  add_stat(&s->map_ns, atomic_load(&k->map_ns));
  add_stat(&s->madvise_ns, atomic_load(&k->release_ns));
  add_stat(&s->wait_ns, atomic_load(&k->wait_ns));
  add_stat(&heap->stats.gc_cpu_ns, ugc_compact_threads_take_cpu_ns(&backend->threads));
  ugc_stats_unlock(heap);
  ugc_compaction_finished(heap, &(ugc_compaction_report){concurrent_ns, by_gc, by_mutator, 0});
  if (atomic_load(&k->map_retries))
    ugc_warn("sigsegv backend: %llu mprotect call(s) retried after ENOMEM",
             (unsigned long long)atomic_load(&k->map_retries));
  if (heap->config.trace) /* this cycle's mappings, next to the compaction's trace line */
    fprintf(heap->config.trace_file ? heap->config.trace_file : stderr,
            "uffdgc: sigsegv mappings: peak %llu of the protected heap (headroom %ld), %llu "
            "mprotect calls, %llu runs extended%s\n",
            (unsigned long long)peak, backend->headroom,
            (unsigned long long)atomic_load(&k->map_calls),
            (unsigned long long)atomic_load(&k->runs_extended),
            atomic_load(&backend->merging) ? " (merging: near vm.max_map_count)" : "");
  ugc_completion_done(&backend->completion);
}

static void sigsegv_compact_wait(ugc_heap *heap) {
  sigsegv_backend *backend = heap->backend_data;
  if (!backend || !ugc_completion_pending(&backend->completion))
    return;
  check_owner(backend);
  ugc_completion_wait(&backend->completion, complete_compaction, backend);
}

/* The last GC thread of a job completes the compaction at once (see copy.c). */
static void sigsegv_on_threads_idle(void *data, uint64_t generation) {
  sigsegv_backend *backend = data;
  ugc_completion_on_idle(&backend->completion, generation, complete_compaction, backend);
}

/* fork(): no compaction is in flight. Both processes keep mapping the current file
 * (privately, so neither sees the other's writes): neither may punch it any more. */
static void sigsegv_fork_prepare(ugc_heap *heap) {
  sigsegv_backend *backend = heap->backend_data;
  ugc_completion_fork_prepare(&backend->completion);
  ugc_compact_threads_fork_prepare(&backend->threads);
}

static void sigsegv_fork_parent(ugc_heap *heap) {
  sigsegv_backend *backend = heap->backend_data;
  ugc_file_space_forked(&backend->space);
  ugc_compact_threads_fork_parent(&backend->threads);
  ugc_completion_fork_parent(&backend->completion);
}

static void sigsegv_fork_child(ugc_heap *heap) {
  sigsegv_backend *backend = heap->backend_data;
  ugc_file_space_forked(&backend->space);
  ugc_compact_threads_fork_child(&backend->threads);
  ugc_concurrent_fork_child(&backend->concurrent);
  ugc_completion_fork_child(&backend->completion);
}

/* Heap full during the compaction: the mutator builds pages too (backend.h). */
static size_t sigsegv_compact_assist(ugc_heap *heap) {
  sigsegv_backend *backend = heap->backend_data;
  return backend ? ugc_compact_threads_assist(&backend->threads) : 0;
}

const ugc_backend_ops ugc_backend_sigsegv = {
    .name = "sigsegv",
    .huge_pages = true,
    .concurrent = true,
    .attach = sigsegv_attach,
    .detach = sigsegv_detach,
    .compact_start = sigsegv_compact_start,
    .compact_wait = sigsegv_compact_wait,
    .compact_resumed = sigsegv_compact_resumed,
    .compact_assist = sigsegv_compact_assist,
    .fork_prepare = sigsegv_fork_prepare,
    .fork_parent = sigsegv_fork_parent,
    .fork_child = sigsegv_fork_child,
};
