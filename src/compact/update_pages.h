/* References held by large and non-moving objects, updated outside the compaction pause.
 *
 * Those objects never move, but their reference slots point into the moving space and must
 * be forwarded. Doing it in the pause costs time proportional to their size (a 64 MiB
 * reference array: tens of milliseconds). Instead, for concurrent backends, the pause only
 * protects them the way the moving space is protected: each deferred range (one large
 * object, or the used part of the non-moving space) is moved away to a shadow mapping and
 * its real address range is made to fault. A page of it is then "built" like a to-space
 * page: its content is copied from the shadow and the reference slots that lie on it are
 * forwarded (the object layout says where they are), then mapped. GC threads build these
 * pages first, ahead of the mutators; a mutator that touches one before builds it itself in
 * its fault. Building is idempotent (the shadow does not change, the plan is read-only), so
 * two threads meeting on a page both build it and the second mapping is refused (EEXIST),
 * which is harmless: no page-state protocol is needed. A backend without a mapping ioctl
 * (sigsegv) builds pages in the shadow and moves them out of it: then a page is claimed by
 * one builder, and a fault on a page claimed by another waits (builds_in_shadow).
 *
 * What stays in the pause (bounded, see docs/design.md): roots and weak slots; large objects
 * smaller than UGC_UPDATE_MIN_LARGE_BYTES, of CUSTOM layout (a page of them would need the
 * whole object visited) or beyond UGC_UPDATE_MAX_LARGE per cycle; a non-moving space using
 * less than UGC_UPDATE_MIN_NONMOVING_BYTES, and the non-moving space whenever a system call
 * into a faulting page could fail (SIGBUS delivery, user-mode-only userfaultfd): pinned
 * objects are the documented buffers for system calls during a compaction, so they never
 * fault there (the caller says which: defer_nonmoving). Anything whose protection fails is
 * updated in the pause instead (never a corrupted heap).
 *
 * The backend supplies the kernel mechanism: the protector (move away and make the range
 * fault, then undo that) and the page mapper of compact/concurrent.h: backend/copy_update.c
 * (userfaultfd MISSING + UFFDIO_COPY: copy, move, minor), backend/sigsegv_update.c
 * (PROT_NONE + SIGSEGV, pages moved back with mremap). */
#ifndef UGC_COMPACT_UPDATE_PAGES_H
#define UGC_COMPACT_UPDATE_PAGES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compact/compact.h"
#include "compact/concurrent.h"
#include "heap/large.h"
#include "heap/nonmoving.h"
#include "heap/object.h"

#define UGC_UPDATE_MIN_LARGE_BYTES ((size_t)64 << 10)
#define UGC_UPDATE_MIN_NONMOVING_BYTES ((size_t)256 << 10)
#define UGC_UPDATE_MAX_LARGE 4096u
/* Address space a partly registered range needs above its registered part. */
#define UGC_UPDATE_SPLIT_ROOM ((size_t)2 << 20)

typedef struct ugc_update_protector {
  void *backend;
  /* Moves [start, start + move_bytes) to `shadow` (a reservation of that size) and makes
   * [start, start + register_bytes) fault until pages are mapped there; *handle is the
   * backend's own. On failure the range must be back in place, and the shadow may be
   * unmapped (its reservation is given up either way): 0 or -errno. */
  int (*protect)(void *backend, uintptr_t start, size_t move_bytes, size_t register_bytes,
                 uintptr_t shadow, int *handle);
  /* Every page of the range is mapped: faults there end. Not from a fault callback. */
  void (*unprotect)(void *backend, uintptr_t start, size_t register_bytes, int handle);
  /* In a pause (no fault of an ended compaction is still being dispatched), before anything
   * is freed: drops what unprotect had to keep (the backend's fault routing). May be NULL. */
  void (*forget_ended)(void *backend);
  /* Pages are built in the shadow itself and `map` gets src = their shadow address; mapping
   * takes them out of the shadow (a move, not a copy), so a page must be built once: builders
   * claim pages exclusively and a fault on a page claimed by another waits for it. */
  bool builds_in_shadow;
} ugc_update_protector;

typedef struct ugc_update_range {
  uintptr_t start;   /* page aligned */
  size_t bytes;      /* pages built (page multiple) */
  size_t move_bytes; /* moved to the shadow (>= bytes) */
  uintptr_t hdr;     /* a large object's header; 0 for the non-moving space */
  uint64_t header;   /* the header word at hdr, as of the pause (the shadow may lose it) */
  uintptr_t shadow;  /* where the old content is read while the range is protected */
  size_t first_page; /* index of its first page among all pages of the cycle */
  int handle;        /* the protector's */
  bool is_protected; /* false: not yet, or updated in the pause */
} ugc_update_range;

typedef struct ugc_update_pages {
  const ugc_compact_plan *plan;
  const ugc_type_table *types;
  const ugc_nonmoving_space *nonmoving;
  ugc_update_range *ranges; /* sorted by start, disjoint */
  size_t count, capacity;
  uint8_t *large_deferred; /* per large object index, this cycle */
  size_t large_deferred_capacity;
  bool nonmoving_deferred;
  bool pending; /* selected, neither started nor updated in the pause yet */
  /* The non-moving space's allocation bits as the pause left them (cells allocated while
   * pages are built are zeroed by the allocator after their page is mapped, and must not be
   * visited in the shadow). unit_offset: per 64 KiB unit, its span's first word. */
  uint64_t *live_bits;
  size_t live_capacity;
  uint32_t *unit_offset;
  size_t unit_capacity;
  size_t snapshot_units;
  uintptr_t nonmoving_shadow; /* a reservation kept across cycles, 0 until needed */
  size_t nonmoving_shadow_bytes;

  size_t page_count;
  _Atomic uint8_t *mapped; /* per page: 1 once somebody mapped it; 2 claimed (in shadow) */
  size_t mapped_capacity;
  _Atomic size_t next_page; /* GC threads' cursor */
  _Atomic bool active;      /* protected ranges fault to us */
  _Atomic bool handing_off; /* start is protecting ranges; the backend not publishing yet */
  _Atomic uint32_t resolvers;
  ugc_page_mapper mapper;
  ugc_update_protector protector;
  _Atomic uint64_t pages_by_gc, pages_by_mutator, map_retries;
  uint64_t pages_in_pause; /* this cycle: built or updated in place in the pause */
} ugc_update_pages;

void ugc_update_pages_init(ugc_update_pages *u);
void ugc_update_pages_destroy(ugc_update_pages *u);

/* Says whether the large object at hdr is pinned (a buffer for system calls). */
typedef bool (*ugc_update_pinned_fn)(const void *ctx, uintptr_t hdr);

/* In the pause, after sweeping and planning: chooses what to defer (see the top). Returns
 * false when nothing is deferred; everything not deferred is the caller's to update now.
 * `pinned` (may be NULL): large objects it names (buffers for system calls) are kept in the
 * pause: their hand-off would have a moment where a system call's write is dropped, or
 * where the call fails. */
bool ugc_update_pages_select(ugc_update_pages *u, const ugc_compact_plan *plan,
                             const ugc_type_table *types, const ugc_nonmoving_space *nonmoving,
                             const ugc_large_space *large, bool defer_nonmoving,
                             ugc_update_pinned_fn pinned, const void *pinned_ctx);

static inline bool ugc_update_pages_defers_large(const ugc_update_pages *u, size_t index) {
  return index < u->large_deferred_capacity && u->large_deferred[index];
}

/* In the pause: protects the deferred ranges; a range that cannot be protected is updated
 * at once. Once this returns, faults in the ranges go to ugc_update_pages_resolve. */
void ugc_update_pages_start(ugc_update_pages *u, const ugc_update_protector *protector,
                            const ugc_page_mapper *mapper);

/* In the pause, once the backend publishes its compaction (faults are answered from now on):
 * ends the hand-off that start began. */
void ugc_update_pages_handoff_done(ugc_update_pages *u);

/* A handler thread's fault message that came while the compaction was not published yet: a
 * system call in a range start registered first (a thread the pause does not stop). Waits
 * for the hand-off to end, so that the fault is answered, not woken into a fault loop. */
void ugc_update_pages_wait_handoff(ugc_update_pages *u);

/* In the pause, instead of start (a backend that compacts in the pause, or one that does
 * not know about deferred updates: the collector calls it after the hand-off whenever the
 * backend did not call start): updates every deferred range in place. */
void ugc_update_pages_in_pause(ugc_update_pages *u);

/* A fault at addr: builds and maps its page in page_buffer (UGC_PAGE_SIZE bytes).
 * Async-signal-safe. 0 when the page is mapped now, -1 when addr is not ours or nothing is
 * protected. */
int ugc_update_pages_resolve(ugc_update_pages *u, uintptr_t addr, void *page_buffer);

/* A GC thread's share: builds pages until none is left. `batch`: UGC_CONCURRENT_BATCH_PAGES
 * pages. Several threads may run it at once. */
void ugc_update_pages_gc_work(ugc_update_pages *u, void *batch);

/* At the start of every pause's sweep: see ugc_update_protector.forget_ended. */
void ugc_update_pages_pause_begin(ugc_update_pages *u);

/* After every GC thread returned from gc_work (so every page is mapped): ends the faults,
 * waits for fault callbacks still running, releases the shadows. Not from a fault callback. */
void ugc_update_pages_finish(ugc_update_pages *u);

#endif
