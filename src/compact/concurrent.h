/* Concurrent compaction, independent of the kernel mechanism: who builds which to-space page
 * when, and how threads that meet on one page agree.
 *
 * After the compaction pause the to-space [space_base, space_base + registered_bytes) is
 * empty: every access faults. Pages are built by two kinds of threads:
 *
 *   GC threads       walk the pages in ascending order from a shared cursor, build runs of
 *                    contiguous pages into a batch buffer and map each run with one call
 *                    (with a moving mapper, a 2 MiB-aligned chunk of to-space is taken
 *                    whole, built in place or into a recycled 2 MiB region, and moved with
 *                    one call: concurrent.c, "whole huge pages").
 *   faulting thread  (a mutator in its SIGBUS handler, or the fault-handler thread on its
 *                    behalf) builds exactly the page it needs into a page buffer of its own
 *                    and maps it; it never cascades into other pages (build_page only updates
 *                    the references that lie inside the page being built).
 *
 * Both go through the page state machine (compact/page_state.h): whoever wins the claim
 * builds and maps the page; a loser waits until the page is MAPPED, and after 20 us (the
 * owner was descheduled) builds and maps an identical copy itself. Pages past the data
 * (page >= plan->page_count, fresh allocation space) get a writable zero page; two threads
 * racing there both map zeros and one sees EEXIST, which is harmless.
 *
 * From-space is read-only during compaction and released in large chunks behind a
 * watermark: when every page below w is MAPPED, no build can read from-space below the
 * first object of page w (objects only move down, in order).
 *
 * The backend supplies the mapping primitives (ugc_page_mapper) and, for the handler-thread
 * delivery mode, wakes the waiting thread itself.
 *
 * In-place building (mapper.build_base set, the sigsegv backend): the to-space has a second
 * view the mutators cannot reach (an alias of the same memory), pages are built straight
 * into it and `map` only makes them accessible (mprotect). Two changes follow:
 *   - the claim is exclusive: nobody helps a late owner, since a second build would write
 *     over a page that may already be published and written by a mutator;
 *   - a publication may be extended downwards (merge_runs, or a transient failure of map):
 *     the owner claims and builds the unclaimed pages below its run down to the nearest
 *     page that is MAPPED (waiting for one claimed by somebody else), so that the run joins
 *     a mapping that is already accessible instead of splitting a protected one. Threads
 *     only ever wait for lower pages, so these waits cannot form a cycle. */
#ifndef UGC_COMPACT_CONCURRENT_H
#define UGC_COMPACT_CONCURRENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "compact/compact.h"
#include "compact/page_state.h"

/* How the backend maps built pages. All must be async-signal-safe. */
typedef enum ugc_map_result {
  UGC_MAP_OK = 0,
  UGC_MAP_EXISTS, /* the destination page was already mapped (EEXIST) */
  UGC_MAP_RETRY,  /* a transient failure (EAGAIN, ENOMEM): try again after a back-off */
  UGC_MAP_FAILED, /* any other failure: the error is reported by the backend */
} ugc_map_result;

typedef struct ugc_page_mapper {
  void *backend;
  /* Maps `bytes` of built content at `dst` (page aligned). On UGC_MAP_EXISTS and
   * UGC_MAP_RETRY, *done_bytes tells how much was mapped before the page that failed. */
  ugc_map_result (*map)(void *backend, uintptr_t dst, const void *src, size_t bytes,
                        size_t *done_bytes);
  /* Maps a writable zero page at `dst` (UGC_MAP_EXISTS: somebody did, or no need). */
  ugc_map_result (*map_zero)(void *backend, uintptr_t dst);
  /* Releases from-space memory [from, from + bytes) that no build needs any more. */
  void (*release_from)(void *backend, uintptr_t from, size_t bytes);

  /* Optional, NULL for backends that copy every page. With `move` set, a dense-prefix page
   * is built in place, in its own from-space page, and that page is moved to its heap
   * address (copied instead while a later page still has to read it: the header of an
   * object that starts in it); a slid page is built into a recycled from-space page when
   * one is free (recycled_page; GC threads only, a faulting thread copies its slid page from
   * its buffer), moved, and otherwise built in a buffer and copied (map).
   * No thread helps a late owner of an in-place page (its build is not repeatable), nor of
   * the first slid page (it may read an in-place page's header). A page the plan slid whole
   * (plan->page_whole_from) is not built at all: its old page is moved, by a GC thread or a
   * faulting one, and nobody helps its owner either. */
  /* Moves the pages [src, src + bytes) of from-space to dst (src is a hole afterwards); a
   * page the kernel will not move is copied instead. Results as for map. */
  ugc_map_result (*move)(void *backend, uintptr_t dst, void *src, size_t bytes, size_t *done_bytes);
  /* A from-space page that no build reads any more (released through release_from), to
   * build a page into, or NULL when none is free. */
  void *(*recycled_page)(void *backend);
  /* Optional: 512 free pages that are one 2 MiB-aligned from-space region (likely still one
   * transparent huge page), to build a whole 2 MiB chunk of slid pages into and move with
   * one call (concurrent.c, "whole huge pages"), or NULL when none is free. */
  void *(*recycled_huge)(void *backend);
  /* release_from is called for chunks of at least this many bytes (0: the default,
   * UGC_CONCURRENT_RELEASE_CHUNK). A recycling backend wants free pages early. */
  size_t release_chunk_bytes;
  /* In-place building (NULL: build into a buffer that `map` copies from). Page p is built
   * at build_base + p * UGC_PAGE_SIZE, and `map` is called with src = that address. */
  char *build_base;
  /* In-place building: true when runs should be extended down to a mapped page before
   * they are published (the backend is short of mappings). May be NULL. */
  bool (*merge_runs)(void *backend);
  /* In-place building: true when page `page` (a dense-prefix page) is built over the very
   * memory its from-space copy reads (another view of the same file page): its build then
   * only updates it (ugc_compact_update_page_in_place), copying nothing. May be NULL. */
  bool (*is_own_source)(void *backend, size_t page);
} ugc_page_mapper;

/* Counters of one compaction (relaxed atomics; folded into ugc_stats at the end). */
typedef struct ugc_concurrent_counters {
  _Atomic uint64_t pages_by_gc, pages_by_mutator, zero_pages, pages_helped;
  _Atomic uint64_t runs_extended; /* in-place publications extended down to a mapped page */
  _Atomic uint64_t map_calls, zero_calls, release_calls, map_retries;
  _Atomic uint64_t release_deferred; /* release rounds skipped while a helper was building */
  /* With a moving mapper: dense pages moved in place, slid pages built in a recycled page
   * and moved, slid pages moved whole (never built), calls of mapper.move. */
  _Atomic uint64_t pages_in_place, pages_recycled, pages_slid_whole, move_calls;
  _Atomic uint64_t pages_held; /* held pages built in place in the pause (build_held_in_place) */
  _Atomic uint64_t moves_misreported; /* MOVEs that moved a page and said EEXIST (map_span) */
  _Atomic uint64_t bytes_copied;
  _Atomic uint64_t pages_updated_only; /* built over their own source (is_own_source) */
  _Atomic uint64_t build_ns, map_ns, release_ns, wait_ns;
} ugc_concurrent_counters;

typedef struct ugc_concurrent {
  /* Set by ugc_concurrent_begin. */
  const ugc_compact_plan *plan;
  intptr_t from_delta;
  uintptr_t space_base;
  size_t registered_bytes; /* faults are expected anywhere in here */
  ugc_page_mapper mapper;
  ugc_page_states states; /* one per data page: [0, plan->page_count) */
  ugc_histogram *stall;   /* where mutator waits go (atomic updates) */
  uint64_t started_ns;
  _Atomic uint64_t done_ns; /* when the last page was mapped, as far as we know */

  /* GC threads' cursor and the from-space release watermark. */
  _Atomic size_t next_page;
  /* Faulting threads waiting for a page somebody else owns: GC threads then map what they
   * built at once instead of completing their batch (the waiter may want one of them). */
  _Atomic uint32_t waiters;
  _Atomic uint32_t helpers_active; /* faulting threads building a page they do not own */
  pthread_mutex_t release_lock;
  size_t watermark_page;   /* every page below is MAPPED */
  uintptr_t released_upto; /* from-space (old addresses) below this is released */

  ugc_concurrent_counters counters;
  /* Work a GC thread does first, with its batch buffer (NULL: none): the pages of objects
   * that do not move but whose references are updated after the pause
   * (compact/update_pages.h). Set by the backend; kept across compactions. */
  void (*first_work)(void *data, void *batch);
  void *first_work_data;
} ugc_concurrent;

/* A faulting thread that waits this long for a page's owner builds the page itself. */
#define UGC_CONCURRENT_HELP_AFTER_NS ((uint64_t)20 * 1000)

/* Number of pages a GC thread builds before mapping them with one call (but for whole
 * 2 MiB chunks with a moving mapper: concurrent.c). */
#define UGC_CONCURRENT_BATCH_PAGES 16u
/* From-space is released in chunks of at least this many bytes. */
#define UGC_CONCURRENT_RELEASE_CHUNK ((size_t)8 << 20)

/* Zeroes *c and initialises its lock; once per heap. */
void ugc_concurrent_init(ugc_concurrent *c);

/* Prepares a compaction (in the pause): page states for the plan's data pages, counters
 * reset. Returns 0, or -1 when the page states could not be allocated. */
int ugc_concurrent_begin(ugc_concurrent *c, const ugc_compact_plan *plan, intptr_t from_delta,
                         size_t registered_bytes, const ugc_page_mapper *mapper,
                         ugc_histogram *stall);

/* In the pause, after ugc_concurrent_begin, for a backend whose hand-off left the held spans'
 * pages in the heap and copied them to from-space (backend/handoff.h): updates each of them
 * in place (ugc_compact_update_page_in_place, reading in from-space: only fillers over dead
 * words and reference slots are written, never the bytes of a live object, so what a system
 * call writes into a pinned object meanwhile stays), and marks it MAPPED, so that no GC thread,
 * faulting thread or helper ever builds or maps it. Counted as pages built by GC threads. Returns
 * the number of pages. */
size_t ugc_concurrent_build_held_in_place(ugc_concurrent *c);

/* Resolves the fault at `addr` for a faulting thread: builds and maps its page (in
 * `page_buffer`, UGC_PAGE_SIZE bytes the caller owns: a signal handler keeps it off the
 * thread's stack, which may be small), or waits until its owner has. Records the stall.
 * Async-signal-safe. Returns 0 when the page is now mapped, -1 if addr is outside the
 * registered range. */
int ugc_concurrent_resolve_fault(ugc_concurrent *c, uintptr_t addr, void *page_buffer);

/* For the owner of pages [first, first + count) (claimed by it, built into `built`): maps
 * them with as few calls as possible and marks them MAPPED. Pages a helper mapped meanwhile
 * are skipped; a page mapped by anyone else is a fatal error (the backend must make sure
 * that nothing is mapped in the range when the compaction begins). Async-signal-safe. */
void ugc_concurrent_map_built(ugc_concurrent *c, size_t first, const void *built, size_t count);

/* A GC thread's share of the work: builds pages from the shared cursor until none is left.
 * `batch` holds UGC_CONCURRENT_BATCH_PAGES pages (unused, may be NULL, when building in
 * place). Several threads may run it at once. Returns the pages this call took from the
 * cursor (built by it, or updated in place). */
size_t ugc_concurrent_gc_work(ugc_concurrent *c, void *batch);

/* After every GC thread returned from gc_work: waits until pages claimed by faulting
 * threads are mapped too. From-space not yet released is the backend's to drop. Returns the
 * time from ugc_concurrent_begin until the last page was mapped, in ns. */
uint64_t ugc_concurrent_finish(ugc_concurrent *c);

/* Once the compaction is complete and no thread can look at its page states any more (no
 * fault callback in flight): clears them now, outside the pause, so that the next
 * ugc_concurrent_begin, in the compaction pause, need not. */
void ugc_concurrent_clear_states(ugc_concurrent *c);

/* In a fork child (no compaction in flight): re-initialises the lock, which a thread of the
 * parent may have held. */
void ugc_concurrent_fork_child(ugc_concurrent *c);

/* Frees the page states and the lock (heap destruction). */
void ugc_concurrent_destroy(ugc_concurrent *c);

#endif
