/* Mutator assists of a concurrent marking (see mark.h and docs/design.md, "Mutator
 * assists"): a mutator takes chunks of the shared pool into a marker slot of its own,
 * traces them with a budget and gives back what is left. */
#include <sched.h>
#include <stdatomic.h>

#include "mark/marker.h"
#include "os/time.h"

/* Claims a free assist slot; -1 if all are taken. */
static int claim_assist_slot(mark_context *ctx) {
  unsigned taken = atomic_load_explicit(&ctx->assist_slots_taken, memory_order_relaxed);
  for (;;) {
    unsigned free_slots = ~taken & ((1u << ASSIST_SLOTS) - 1);
    if (!free_slots)
      return -1;
    unsigned slot = (unsigned)__builtin_ctz(free_slots);
    if (atomic_compare_exchange_weak_explicit(&ctx->assist_slots_taken, &taken,
                                              taken | (1u << slot), memory_order_acquire,
                                              memory_order_relaxed))
      return (int)slot;
  }
}

/* One chunk of the pool into the assist's stack, waiting up to `deadline` for a GC thread
 * to give one (it gives when it sees assist_hungry). Whether there was one. */
static bool assist_take(mark_context *ctx, mark_worker *w, uint64_t deadline) {
  uintptr_t entries[UGC_MARK_CHUNK_ENTRIES];
  for (unsigned i = 0;; i++) {
    size_t n = ugc_mark_pool_try_take(&ctx->pool, entries);
    if (n) {
      for (size_t j = 0; j < n; j++)
        ugc_mark_push(w, entries[j]);
      return true;
    }
    atomic_store_explicit(&ctx->assist_hungry, true, memory_order_relaxed);
    if (atomic_load_explicit(&ctx->pool.done, memory_order_relaxed))
      return false;
    if ((i & 15) == 15) {
      sched_yield(); /* the GC thread may share this CPU */
      if (ugc_now_ns() >= deadline)
        return false;
    }
  }
}

size_t ugc_marker_assist(ugc_marker *ctx, size_t budget, uint64_t wait_ns) {
  int slot = claim_assist_slot(ctx);
  if (slot < 0)
    return 0;
  mark_worker *w = &ctx->workers[ctx->pool_workers + (unsigned)slot];
  size_t start = w->scanned;
  if (ugc_mark_pool_enter(&ctx->pool)) {
    uint64_t deadline = ugc_now_ns() + wait_ns;
    while (assist_take(ctx, w, deadline) && ugc_mark_drain(ctx, w, start + budget))
      ;
    /* The budget is spent: what is left goes back to the pool (the prefetched candidates
     * are marked first, they are work like the rest). */
    while (!ugc_prefetch_queue_empty(&w->queue))
      ugc_mark_moving(w, ugc_prefetch_queue_take(&w->queue));
    if (ugc_mark_local_work(w)) /* an assist that found no work may have no stack */
      w->bottom += ugc_mark_pool_give(&ctx->pool, w->stack + w->bottom, ugc_mark_local_work(w));
    if (ugc_mark_local_work(w)) /* no memory for chunks: finish it here */
      ugc_mark_drain(ctx, w, SIZE_MAX);
    w->bottom = w->count = 0;
    ugc_mark_pool_leave(&ctx->pool);
  }
  atomic_fetch_and_explicit(&ctx->assist_slots_taken, ~(1u << slot), memory_order_release);
  return w->scanned - start;
}

void ugc_marker_open_for_assists(ugc_marker *ctx) {
  mark_worker *first = &ctx->workers[0];
  ctx->concurrent = true;
  ugc_mark_pool_reopen(&ctx->pool);
  while (!ugc_prefetch_queue_empty(&first->queue))
    ugc_mark_moving(first, ugc_prefetch_queue_take(&first->queue));
  size_t work = ugc_mark_local_work(first);
  if (work) /* no roots: the stack may not exist yet */
    first->bottom += ugc_mark_pool_give(&ctx->pool, first->stack + first->bottom, work);
}

size_t ugc_marker_take_credit(ugc_marker *ctx, size_t want) {
  size_t credit = atomic_load_explicit(&ctx->scan_credit, memory_order_relaxed);
  for (;;) {
    size_t take = credit < want ? credit : want;
    if (!take || atomic_compare_exchange_weak_explicit(&ctx->scan_credit, &credit, credit - take,
                                                       memory_order_relaxed, memory_order_relaxed))
      return take;
  }
}
