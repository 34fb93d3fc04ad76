/* The `move` backend: the copy backend's pause, fault delivery and per-page protocol, with
 * pages mapped by UFFDIO_MOVE (Linux 6.8) instead of being allocated and copied.
 *
 *   dense page   objects do not move: its references are updated in its own from-space
 *                page, which then moves back to its heap address (no allocation, no copy,
 *                no zeroing). Copied instead while a later page still has to read it
 *                (compact/concurrent.c decides).
 *   slid page    built into a recycled page: a from-space page of the slid region that no
 *                build reads any more (everything below the driver's release watermark),
 *                then moved into place; built in a buffer and copied only when no recycled
 *                page is free (at the start of a compaction).
 *   whole page   a slid page the plan placed at its old offset in the page (compact.h,
 *                whole-page slides): its old page is moved as it is, never read or written.
 *
 * Free pages form one range of from-space, [pool_next, pool_limit): the watermark only
 * grows, so what the driver releases is always its continuation, and a page is taken with
 * one compare-and-swap (async-signal-safe: mutators take pages in their SIGBUS handler).
 * Pages taken one after the other by one thread are contiguous, so a GC thread's run is
 * one MOVE. What is never recycled goes back with the whole from-space mapping at the end,
 * but for the range the copy backend keeps for the next cycle's allocation (retain.h), which
 * recycling stops below (recycle_limit).
 *
 * A GC thread building a whole 2 MiB chunk of slid pages (compact/concurrent.c, "whole
 * huge pages") takes a 2 MiB-aligned region: pool_next jumps to the next boundary and past
 * it, and the pages it jumped over become the gap, which single pages are taken from first:
 *
 *   before   |...taken...|next ........ : ............ : ...... limit|
 *                                       2 MiB boundary
 *   after    |...taken...|gap ......... |<- region: one MOVE of 2 MiB ->|next .. limit|
 *
 * The pages of the slid region are only ever read before they are free (builds read them;
 * nothing moves or drops them, but a page slid whole), so a region is as huge as it was in
 * the heap: the kernel moves its PMD into the (page-table-free) heap chunk.
 *
 * A page the kernel will not move is copied instead, never a failure: EBUSY (the page is
 * shared with a child forked before the cycle, or pinned), ENOENT (a hole in the source),
 * EINVAL (a mapping MOVE does not accept). Partial progress is kept (uffd/resolve.c) and
 * only the refused page falls back; the MOVEs after it go on. EEXIST and EAGAIN mean what
 * they mean for UFFDIO_COPY (a helper was first; retry). */
#include <errno.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdlib.h>

#include "backend/availability.h"
#include "backend/backend.h"
#include "backend/copy.h"
#include "os/inject.h"
#include "os/madvise.h"
#include "runtime/heap.h"
#include "uffd/resolve.h"

/* Recycled pages become free this early: a small chunk gives builds free pages soon after
 * the compaction starts (the default 8 MiB would leave the first 2 MiB of to-space fresh). */
#define MOVE_RELEASE_CHUNK ((size_t)256 << 10)

#define MOVE_LOCKS 64
#define MOVE_HUGE_BYTES ((size_t)2 << 20)

typedef struct move_backend {
  ugc_heap *heap;
  ugc_uffd *uffd;
  ugc_page_mapper copy; /* the copy backend's mapper: copies, zero pages, the fallback */
  uintptr_t slid_from;  /* from-space address of dense_end: recycling starts there */
  /* From-space twin of the range the copy backend keeps for the next cycle's allocation
   * (backend/retain.h): recycling stops there, so that a page is never both a build target
   * and kept. The pages below it outnumber the slid pages to build (keep_low is above the
   * new top); UINTPTR_MAX when nothing is kept. */
  uintptr_t recycle_limit;
  _Atomic uintptr_t pool_next, pool_limit;
  /* Pages skipped to align a region: first and end page (from slid_from), 32 bits each. */
  _Atomic uint64_t gap;
  /* Pages the kernel would not move and that were copied, by kind; copy calls for them. */
  _Atomic uint64_t fallback_in_place, fallback_recycled, fallback_whole, fallback_calls;
  /* MOVEs of a whole aligned 2 MiB chunk (see move_serialized): in place, recycled. */
  _Atomic uint64_t huge_moves, huge_recycled_moves;
  _Atomic bool move_locks[MOVE_LOCKS]; /* see move_serialized */
} move_backend;

/* One UFFDIO_MOVE at a time per heap. Concurrent MOVEs out of one from-space region that
 * was a transparent huge page (two GC threads, or a GC thread and a faulting mutator) were
 * seen to answer EEXIST for a destination page that nobody had mapped (Linux 6.18, a few
 * times per 100,000 pages in the compact benchmark); serialized, never in the same runs.
 * A spin lock with yields: it is taken in SIGBUS handlers (async-signal-safe), and the
 * holder only issues the ioctl.
 * A MOVE of one whole 2 MiB-aligned chunk (the driver's huge chunks: compact/concurrent.c)
 * is one region; the kernel moves its PMD whole when the source is a transparent huge page
 * and the destination has no page table yet (the hand-off left the heap with none). Counted
 * when it moved all of it: a page it refused is copied, and then the chunk is not whole. */
static ugc_uffd_result move_serialized(move_backend *backend, uintptr_t dst, void *src,
                                       size_t bytes) {
  uintptr_t region = (uintptr_t)src >> 21;
  uintptr_t region_end = (region + 1) << 21;
  if ((uintptr_t)src + bytes > region_end)
    bytes = region_end - (uintptr_t)src; /* the caller goes on from where this stops */
  _Atomic bool *lock = &backend->move_locks[region % MOVE_LOCKS];
  while (atomic_exchange_explicit(lock, true, memory_order_acquire))
    sched_yield();
  ugc_uffd_result r = ugc_uffd_move(backend->uffd, (void *)dst, src, bytes, 0);
  atomic_store_explicit(lock, false, memory_order_release);
  if (bytes == MOVE_HUGE_BYTES && dst % MOVE_HUGE_BYTES == 0 &&
      (uintptr_t)src % MOVE_HUGE_BYTES == 0 && r.status == UGC_UFFD_OK && r.done == bytes)
    atomic_fetch_add_explicit((uintptr_t)src < backend->slid_from ? &backend->huge_moves
                                                                  : &backend->huge_recycled_moves,
                              1, memory_order_relaxed);
  return r;
}

/* UFFDIO_MOVE of [src, src + bytes) to dst, copying each page the kernel refuses. */
static ugc_map_result move_map(void *ctx, uintptr_t dst, void *src, size_t bytes,
                               size_t *done_bytes) {
  move_backend *backend = ctx;
  ugc_copy_check_owner(backend->heap);
  size_t offset = 0;
  while (offset < bytes) {
    ugc_uffd_result r;
    if (ugc_inject("move.busy"))
      r = (ugc_uffd_result){.status = UGC_UFFD_BUSY, .err = EBUSY};
    else if (ugc_inject("move.eexist_moved")) {
      /* One page moved, then reported as not moved (the quirk of compact/eexist.h). */
      r = move_serialized(backend, dst + offset, (char *)src + offset, UGC_PAGE_SIZE);
      if (r.status == UGC_UFFD_OK)
        r = (ugc_uffd_result){.status = UGC_UFFD_ALREADY_RESOLVED, .err = EEXIST};
    } else
      r = move_serialized(backend, dst + offset, (char *)src + offset, bytes - offset);
    offset += r.done;
    if (r.status == UGC_UFFD_OK)
      continue;
    if (r.status == UGC_UFFD_ALREADY_RESOLVED) {
      *done_bytes = offset;
      return UGC_MAP_EXISTS;
    }
    if (r.status == UGC_UFFD_PENDING_EVENT || r.err == ENOMEM) {
      *done_bytes = offset;
      return UGC_MAP_RETRY;
    }
    /* The kernel will not move this page (EBUSY, ENOENT, EINVAL, ...): copy it, the source
     * stays. Where copying fails too (ESRCH), the copy backend reports it. */
    size_t copied = 0;
    atomic_fetch_add_explicit(&backend->fallback_calls, 1, memory_order_relaxed);
    ugc_map_result result = backend->copy.map(backend->copy.backend, dst + offset,
                                              (char *)src + offset, UGC_PAGE_SIZE, &copied);
    if (result != UGC_MAP_OK) {
      *done_bytes = offset + copied;
      return result;
    }
    /* Recycled pages lie below the pool's limit; a page slid whole is its own old page,
     * above it (not released while its to-space page is unmapped). */
    uintptr_t page = (uintptr_t)src + offset;
    bool in_place = page < backend->slid_from;
    bool recycled = page < atomic_load_explicit(&backend->pool_limit, memory_order_relaxed);
    atomic_fetch_add_explicit(in_place   ? &backend->fallback_in_place
                              : recycled ? &backend->fallback_recycled
                                         : &backend->fallback_whole,
                              1, memory_order_relaxed);
    offset += UGC_PAGE_SIZE;
  }
  *done_bytes = bytes;
  return UGC_MAP_OK;
}

/* The copy backend's own primitives, called with its state. */
static ugc_map_result move_copy_map(void *ctx, uintptr_t dst, const void *src, size_t bytes,
                                    size_t *done_bytes) {
  move_backend *backend = ctx;
  return backend->copy.map(backend->copy.backend, dst, src, bytes, done_bytes);
}

static ugc_map_result move_map_zero(void *ctx, uintptr_t dst) {
  move_backend *backend = ctx;
  return backend->copy.map_zero(backend->copy.backend, dst);
}

/* A page of the gap left by aligning a region (see the top), or NULL. */
static void *gap_page(move_backend *backend) {
  uint64_t gap = atomic_load_explicit(&backend->gap, memory_order_relaxed);
  for (;;) {
    uint32_t first = (uint32_t)(gap >> 32), end = (uint32_t)gap;
    if (first >= end)
      return NULL;
    uint64_t taken = ((uint64_t)(first + 1) << 32) | end;
    if (atomic_compare_exchange_weak_explicit(&backend->gap, &gap, taken, memory_order_relaxed,
                                              memory_order_relaxed))
      return (void *)(backend->slid_from + (uintptr_t)first * UGC_PAGE_SIZE);
  }
}

/* A free page of the slid region's from-space, or NULL. */
static void *move_recycled_page(void *ctx) {
  move_backend *backend = ctx;
  void *page = gap_page(backend);
  if (page)
    return page;
  uintptr_t next = atomic_load_explicit(&backend->pool_next, memory_order_relaxed);
  for (;;) {
    if (next >= atomic_load_explicit(&backend->pool_limit, memory_order_acquire))
      return NULL;
    if (atomic_compare_exchange_weak_explicit(&backend->pool_next, &next, next + UGC_PAGE_SIZE,
                                              memory_order_acquire, memory_order_relaxed))
      return (void *)next;
  }
}

/* 512 free pages that are one 2 MiB-aligned region, or NULL. The pages skipped to reach
 * its boundary become the gap (an older gap's pages left are not recycled: there are few). */
static void *move_recycled_huge(void *ctx) {
  move_backend *backend = ctx;
  uintptr_t next = atomic_load_explicit(&backend->pool_next, memory_order_relaxed);
  for (;;) {
    uintptr_t region = (next + MOVE_HUGE_BYTES - 1) & ~(MOVE_HUGE_BYTES - 1);
    if (region + MOVE_HUGE_BYTES > atomic_load_explicit(&backend->pool_limit, memory_order_acquire))
      return NULL;
    if (atomic_compare_exchange_weak_explicit(&backend->pool_next, &next, region + MOVE_HUGE_BYTES,
                                              memory_order_acquire, memory_order_relaxed))
      break;
  }
  uintptr_t region = (next + MOVE_HUGE_BYTES - 1) & ~(MOVE_HUGE_BYTES - 1);
  if (region > next)
    atomic_store_explicit(&backend->gap,
                          (uint64_t)((next - backend->slid_from) / UGC_PAGE_SIZE) << 32 |
                              (region - backend->slid_from) / UGC_PAGE_SIZE,
                          memory_order_relaxed);
  return (void *)region;
}

/* From-space no build needs any more: the slid region's pages become free pages; the dense
 * prefix's were moved away or copied (their copies go now). */
static void move_release_from(void *ctx, uintptr_t from, size_t bytes) {
  move_backend *backend = ctx;
  uintptr_t end = from + bytes;
  if (from < backend->slid_from) {
    uintptr_t dense_end = end < backend->slid_from ? end : backend->slid_from;
    ugc_madv_dontneed((void *)from, dense_end - from);
  }
  if (end > backend->recycle_limit)
    end = backend->recycle_limit; /* kept: released or taken when the compaction completes */
  if (end > atomic_load_explicit(&backend->pool_limit, memory_order_relaxed))
    atomic_store_explicit(&backend->pool_limit, end, memory_order_release);
}

static void move_begin(void *ctx, ugc_page_mapper *mapper, const ugc_compact_plan *plan,
                       intptr_t from_delta) {
  move_backend *backend = ctx;
  backend->copy = *mapper;
  backend->slid_from = plan->dense_end + (uintptr_t)from_delta;
  const ugc_copy_backend *copy = mapper->backend; /* chose its kept range before this */
  backend->recycle_limit =
      copy->keep_low < copy->keep_high ? copy->keep_low + (uintptr_t)from_delta : UINTPTR_MAX;
  atomic_store(&backend->pool_next, backend->slid_from);
  atomic_store(&backend->pool_limit, backend->slid_from);
  atomic_store(&backend->gap, 0);
  atomic_store(&backend->fallback_in_place, 0);
  atomic_store(&backend->fallback_recycled, 0);
  atomic_store(&backend->fallback_whole, 0);
  atomic_store(&backend->fallback_calls, 0);
  atomic_store(&backend->huge_moves, 0);
  atomic_store(&backend->huge_recycled_moves, 0);
  *mapper = (ugc_page_mapper){
      .backend = backend,
      .map = move_copy_map,
      .map_zero = move_map_zero,
      .release_from = move_release_from,
      .move = move_map,
      .recycled_page = move_recycled_page,
      .recycled_huge = move_recycled_huge,
      .release_chunk_bytes = MOVE_RELEASE_CHUNK,
  };
}

/* The driver counted every page it handed to move_map as in place or recycled; the ones
 * the kernel refused were copied into fresh memory. */
static void move_finish(void *ctx, ugc_compaction_stats *stats) {
  move_backend *backend = ctx;
  uint64_t in_place = atomic_load(&backend->fallback_in_place);
  uint64_t recycled = atomic_load(&backend->fallback_recycled);
  uint64_t whole = atomic_load(&backend->fallback_whole);
  stats->pages_in_place -= in_place;
  stats->pages_recycled -= recycled;
  stats->pages_slid_whole -= whole;
  stats->pages_fresh += in_place + recycled + whole;
  stats->copy_ioctls += atomic_load(&backend->fallback_calls);
  const uint64_t huge_pages = MOVE_HUGE_BYTES / UGC_PAGE_SIZE;
  stats->pages_moved_huge += atomic_load(&backend->huge_moves) * huge_pages;
  stats->pages_recycled_huge += atomic_load(&backend->huge_recycled_moves) * huge_pages;
}

static const ugc_copy_variant move_variant = {
    .uffd_features = UFFD_FEATURE_MOVE,
    .begin = move_begin,
    .finish = move_finish,
};

static int move_attach(ugc_heap *heap, ugc_error *error) {
  move_backend *backend = calloc(1, sizeof *backend);
  if (!backend) {
    ugc_set_error(error, UGC_ERR_NOMEM, "move backend: out of memory");
    return -1;
  }
  backend->heap = heap;
  if (ugc_copy_attach(heap, error, "move", &move_variant, backend) != 0) {
    free(backend);
    return -1;
  }
  backend->uffd = ugc_copy_uffd(heap);
  return 0;
}

static void move_detach(ugc_heap *heap) {
  move_backend *backend = ugc_copy_variant_ctx(heap);
  ugc_copy_detach(heap);
  free(backend);
}

const ugc_backend_ops ugc_backend_move = {
    .name = "move",
    .concurrent = true,
    .whole_page_slides = true,
    .untouched_spans = true,
    .attach = move_attach,
    .detach = move_detach,
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
