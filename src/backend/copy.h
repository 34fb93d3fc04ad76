/* The copy backend's machinery (pause hand-off, fault delivery, GC threads, fork), shared
 * with the move backend, which differs only in how pages get mapped: it adds optional
 * hooks to the page mapper (compact/concurrent.h) through a variant. */
#ifndef UGC_BACKEND_COPY_H
#define UGC_BACKEND_COPY_H

#include "backend/backend.h"
#include "compact/concurrent.h"
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

/* The backend operations, for a variant's ops table. */
void ugc_copy_detach(ugc_heap *heap);
int ugc_copy_compact_start(ugc_heap *heap, ugc_compact_plan *plan);
void ugc_copy_compact_wait(ugc_heap *heap);
void ugc_copy_fork_prepare(ugc_heap *heap);
void ugc_copy_fork_parent(ugc_heap *heap);
void ugc_copy_fork_child(ugc_heap *heap);

#endif
