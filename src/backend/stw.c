/* The `stw` backend: the whole compaction happens inside the pause.
 *
 * The old pages are first handed to the from-space reservation with mremap (page tables
 * move; nothing is copied), then every to-space page is built straight into the now empty
 * heap range with ugc_compact_build_page, in parallel (pages are independent), and the
 * from-space pages are dropped. Sliding in place would be cheaper in memory but not
 * uniform: an object straddling into page P may have its old header in a page already
 * rewritten. With a separate from-space, page building is the same for every backend.
 *
 * Pinned objects' pages (the plan's held spans) never leave the heap range (backend/handoff.h):
 * the hand-off moves the stretches between them, the held pages are copied into from-space
 * and built in place: only fillers over their dead words and reference slots change. The
 * plan's untouched spans (fully live LEAF data) stay as well, and are not built at all.
 *
 * If mremap fails, the used range is copied to from-space instead (slower, same result),
 * and that is reported once. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "backend/backend.h"
#include "backend/handoff.h"
#include "heap/vm.h"
#include "os/log.h"
#include "os/madvise.h"
#include "os/remap.h"
#include "os/time.h"
#include "runtime/heap.h"

typedef struct page_job {
  const ugc_compact_plan *plan;
  intptr_t from_delta;
  uintptr_t base;
  _Atomic size_t bytes_copied;
} page_job;

static void build_one(void *raw, size_t page, unsigned worker) {
  page_job *job = raw;
  uintptr_t address = job->base + page * UGC_PAGE_SIZE;
  if (ugc_compact_untouched_at(job->plan, address))
    return; /* never left the heap; its build would give the same bytes */
  size_t bytes =
      ugc_compact_held_at(job->plan, address)
          ? ugc_compact_update_page_in_place(job->plan, page, job->from_delta, (void *)address)
          : ugc_compact_build_page(job->plan, page, job->from_delta, (void *)address);
  atomic_fetch_add_explicit(&job->bytes_copied, bytes, memory_order_relaxed);
}

static void report_fallback(ugc_heap *heap, const char *what, int err) {
  if (heap->remap_fallback_reported)
    return;
  heap->remap_fallback_reported = true;
  ugc_warn("stw backend: %s failed (%s); compacting through a copy of the heap instead", what,
           ugc_remap_explain(err));
}

/* Makes the old contents of [base, base + used) readable in from-space and leaves the
 * heap range mapped and empty (reads as zeros), but for the held spans, which keep their
 * pages (and have a copy in from-space), and the untouched spans, which keep theirs. */
static void hand_off(ugc_heap *heap, const ugc_compact_plan *plan, size_t used) {
  ugc_moving_space *space = &heap->moving;
  void *base = (void *)space->base, *from = (void *)space->from_base;
  size_t all = space->reserved_bytes; /* 1 GiB multiples: whole page-table entries move */
  int err = -EOPNOTSUPP;
  if (ugc_remap_dontunmap_works(false)) {
    err = ugc_handoff_around_held(space, plan, "stw");
    if (err == 0)
      return;
  }
  if (ugc_handoff_stretches(plan) == 1 && (err == -EOPNOTSUPP || err == -EINVAL)) {
    /* no DONTUNMAP: move, then map fresh */
    err = ugc_remap_move(base, from, all, NULL);
    if (err == 0) {
      int map_err = ugc_vm_map_fixed(base, all, true);
      if (map_err == 0)
        return;
      /* Could not remap the heap range: put the pages back where they were. */
      if (ugc_remap_move(from, base, all, NULL) != 0)
        ugc_fatal("stw backend: lost the heap mapping (mmap: %s)", strerror(-map_err));
      ugc_vm_map_fixed(from, all, false);
      err = map_err;
    }
  }
  report_fallback(heap, "mremap", err);
  if (ugc_vm_map_fixed(from, used, true) != 0)
    ugc_fatal("stw backend: cannot map %zu MiB of from-space for the copy", used >> 20);
  memcpy(from, base, used);
  /* Empty the heap range but the held and untouched spans. */
  for (size_t r = 0; r < ugc_handoff_stretches(plan); r++) {
    size_t start, end;
    ugc_handoff_stretch(space, plan, r, used, &start, &end);
    if (end > used)
      end = used;
    if (end > start && ugc_madv_dontneed((char *)base + start, end - start) != 0)
      memset((char *)base + start, 0, end - start);
  }
}

static int stw_compact_start(ugc_heap *heap, ugc_compact_plan *plan) {
  ugc_moving_space *space = &heap->moving;
  ugc_compaction_stats *stats = &heap->stats.compaction;
  size_t used = ugc_round_up(plan->old_top - space->base, UGC_PAGE_SIZE);
  if (heap->backend != &ugc_backend_stw) /* a concurrent backend compacting in the pause */
    stats->compactions_in_pause++;
  if (!used)
    return 0;

  uint64_t t0 = ugc_now_ns();
  hand_off(heap, plan, used);
  uint64_t t1 = ugc_now_ns();

  page_job job = {plan, (intptr_t)(space->from_base - space->base), space->base, 0};
  ugc_workers_run(&heap->workers, plan->page_count, 8, build_one, &job);
  uint64_t t2 = ugc_now_ns();

  /* Drop the old pages: the from-space becomes a bare reservation again. */
  ugc_vm_map_fixed((void *)space->from_base, space->reserved_bytes, false);
  uint64_t t3 = ugc_now_ns();

  stats->pages_total += plan->page_count;
  stats->pages_in_place += (plan->dense_end - space->base) / UGC_PAGE_SIZE;
  stats->pages_untouched += plan->untouched_pages;
  stats->pages_by_gc += plan->page_count - plan->untouched_pages;
  stats->bytes_copied += atomic_load(&job.bytes_copied);
  stats->map_ns += t1 - t0;
  stats->memcpy_ns += t2 - t1;
  stats->madvise_ns += t3 - t2;
  return 0;
}

static void stw_compact_wait(ugc_heap *heap) {}

const ugc_backend_ops ugc_backend_stw = {
    .name = "stw",
    .huge_pages = true,
    .concurrent = false,
    .untouched_spans = true,
    .attach = NULL,
    .detach = NULL,
    .compact_start = stw_compact_start,
    .compact_wait = stw_compact_wait,
};
