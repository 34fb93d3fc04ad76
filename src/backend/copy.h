/* The copy backend's machinery (pause hand-off, fault delivery, GC threads, fork), shared
 * with the move backend, which differs only in how pages get mapped: it adds optional
 * hooks to the page mapper (compact/concurrent.h) through a variant. Also the backend's
 * state and what backend/copy.c and backend/copy_update.c (the update ranges' protector)
 * share of it. */
#ifndef UGC_BACKEND_COPY_H
#define UGC_BACKEND_COPY_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "backend/backend.h"
#include "backend/retain.h"
#include "compact/compact_threads.h"
#include "compact/completion.h"
#include "backend/copy_update.h"
#include "compact/concurrent.h"
#include "uffd/fault_thread.h"
#include "uffd/uffd.h"

typedef struct ugc_copy_variant {
  uint64_t uffd_features; /* asked for besides the delivery mode's (UFFD_FEATURE_MOVE) */
  /* In the compaction pause, after the hand-off and before any page is built: completes
   * `mapper` (its move, recycled_page and release_* fields). `mapper->map` is the copy
   * backend's UFFDIO_COPY, for the variant's own fallbacks. */
  void (*begin)(void *ctx, ugc_page_mapper *mapper, const ugc_compact_plan *plan,
                intptr_t from_delta);
  /* When the compaction is complete, with the statistics lock held: adds its counters. */
  void (*finish)(void *ctx, ugc_compaction_stats *stats);
} ugc_copy_variant;

/* The backend's state (heap->backend_data), for backend/copy.c and backend/copy_update.c. */
typedef struct ugc_copy_backend {
  ugc_heap *heap;
  ugc_uffd uffd;
  bool sigbus_delivery;
  int sigbus_range; /* -1 when not registered */
  ugc_fault_thread fault_thread;
  bool fault_thread_running;
  pid_t owner_pid; /* process the descriptor and threads belong to */

  uintptr_t space_base;
  size_t space_bytes;
  uintptr_t from_base;
  uintptr_t from_end;      /* old top of this cycle, page aligned */
  size_t registered_bytes; /* [space_base, + this) is registered this cycle (may be 0) */
  const ugc_compact_plan *plan;

  ugc_concurrent concurrent;
  ugc_compact_threads threads;
  _Atomic bool compacting;    /* faults in the heap are ours to resolve */
  _Atomic uint32_t resolvers; /* threads inside a fault callback (copy.c: copy_on_sigbus) */
  /* Armed from the hand-off until complete_compaction has returned (its statistics and
   * report included; `compacting` ends earlier): what compact_wait waits for. */
  ugc_completion completion;
  void *pause_batch; /* batch buffer when no GC thread runs: this heap's own (several heaps
                        may build in their pauses at once) */
  const ugc_copy_variant *variant; /* the move backend's hooks, NULL for plain copy */
  void *variant_ctx;
  /* Retention (backend/retain.h), when the descriptor has UFFDIO_MOVE: this compaction
   * keeps the from-space twins of heap range [keep_low, keep_high) (empty: keeps none). */
  ugc_retained retained;
  uintptr_t keep_low, keep_high;
  /* What GC threads drain while the compaction runs, for allocation meanwhile (retain.h). */
  ugc_drained drained;
  /* From-space still has page tables (the kept range's, even once its pages all moved
   * out): until it is a bare reservation again, the hand-off's mremap cannot move whole
   * PUD or PMD entries there (see ugc_copy_compact_prepare). */
  bool from_space_has_tables;
  /* The end of the last allocation during this compaction (prepare_alloc): from-space twins
   * of heap memory allocation already took are of no use to the next cycle. */
  _Atomic uintptr_t alloc_frontier;
  ugc_anon_update update; /* backend/copy_update.c: its protector of update ranges */
} ugc_copy_backend;

/* Attaches the copy machinery as backend `name` ("copy", or a variant's name, whose
 * availability is checked), with `variant` (NULL for plain copy) and its context. */
int ugc_copy_attach(ugc_heap *heap, ugc_error *error, const char *name,
                    const ugc_copy_variant *variant, void *variant_ctx);

/* The attached variant's context (NULL for plain copy). */
void *ugc_copy_variant_ctx(const ugc_heap *heap);

/* The heap's userfaultfd (same object for the heap's life; its descriptor is replaced in
 * a fork child before the child's first compaction). */
ugc_uffd *ugc_copy_uffd(ugc_heap *heap);

/* Aborts with a message in a process forked during a compaction without the atfork
 * handlers (see copy.c). Async-signal-safe. */
void ugc_copy_check_owner(const ugc_heap *heap);

#define UGC_HUGE_PAGE_SIZE ((size_t)2 << 20) /* room kept above the data for the touch */

/* Memory kept for allocation (backend/copy_retain.c, backend/retain.h). In the compaction
 * pause: chooses the from-space range kept for the next cycle, and opens the pool that
 * allocation during this compaction takes from (with the tail: heap [tail_low, tail_high)
 * before the hand-off). Before the pause, mutators running: moves the kept chunks the last
 * cycle did not reach above the top (the next pool's tail). The allocation hook. */
void ugc_copy_choose_kept_range(ugc_copy_backend *backend, const ugc_compact_plan *plan);
void ugc_copy_open_drained_pool(ugc_copy_backend *backend, const ugc_compact_plan *plan,
                                uintptr_t tail_low, uintptr_t tail_high);
void ugc_copy_carry_kept_chunks(ugc_copy_backend *backend);
void ugc_copy_prepare_alloc(ugc_heap *heap, uintptr_t start, uintptr_t end);

/* The backend operations, for a variant's ops table. */
void ugc_copy_detach(ugc_heap *heap);
void ugc_copy_compact_prepare(ugc_heap *heap);
int ugc_copy_compact_start(ugc_heap *heap, ugc_compact_plan *plan);
void ugc_copy_compact_wait(ugc_heap *heap);
void ugc_copy_compact_resumed(ugc_heap *heap);
size_t ugc_copy_compact_assist(ugc_heap *heap);
void ugc_copy_fork_prepare(ugc_heap *heap);
void ugc_copy_fork_parent(ugc_heap *heap);
void ugc_copy_fork_child(ugc_heap *heap);

#endif
