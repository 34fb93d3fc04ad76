/* Stop-the-world parallel marking with explicit mark stacks (no recursion).
 *
 * Each worker drains its own stack. Work is shared through a global pool of fixed-size
 * chunks: a worker that sees idle workers gives away part of its stack, and an idle worker
 * takes a chunk. Marking ends when every worker that joined is idle and the pool is empty.
 * All roots go into the pool before the workers start, so a worker that joins late (or
 * never, if its thread could not be started) cannot hold back work.
 *
 * Mark bits: a moving-space object sets the live-words bits of all its words (the bit of
 * the header word is the mark bit; the compaction plan needs the rest); non-moving cells
 * and large objects have their own bits. Whoever sets the mark bit pushes the object. */
#include "mark/mark.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os/log.h"

#define CHUNK_ENTRIES 256u

typedef struct mark_chunk {
  size_t count;
  uintptr_t entries[CHUNK_ENTRIES];
} mark_chunk;

typedef struct mark_context mark_context;

typedef struct mark_worker {
  ugc_tracer tracer; /* first: the visit callback casts back */
  mark_context *ctx;
  uintptr_t *stack;  /* payload addresses of marked, untraced objects */
  size_t count, capacity;
  size_t moving_bytes, nonmoving_bytes, large_bytes, objects, bad_refs;
} mark_worker;

struct mark_context {
  ugc_heap *heap;
  mark_worker *workers;
  unsigned worker_count;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  mark_chunk **pool;
  size_t pool_count, pool_capacity;
  unsigned entered, idle;
  _Atomic unsigned waiting; /* idle workers: a hint for busy ones to share */
  bool done;
  _Atomic int bad_reported;
  char first_bad[160];
};

static void push(mark_worker *w, uintptr_t ref) {
  if (w->count == w->capacity) {
    size_t capacity = w->capacity ? 2 * w->capacity : 1024;
    uintptr_t *stack = realloc(w->stack, capacity * sizeof *stack);
    if (!stack)
      ugc_fatal("out of memory growing a mark stack to %zu entries", capacity);
    w->stack = stack;
    w->capacity = capacity;
  }
  w->stack[w->count++] = ref;
}

static void report_bad(mark_worker *w, const void *slot, uintptr_t ref) {
  w->bad_refs++;
  int expected = 0;
  if (atomic_compare_exchange_strong(&w->ctx->bad_reported, &expected, 1))
    snprintf(w->ctx->first_bad, sizeof w->ctx->first_bad,
             "slot %p holds %#lx: inside the heap but not an object start", slot,
             (unsigned long)ref);
}

static void mark_visit(ugc_tracer *tracer, void *slot, uintptr_t tag_mask) {
  mark_worker *w = (mark_worker *)tracer;
  uintptr_t ref = *(uintptr_t *)slot & ~tag_mask;
  if (!ref)
    return;
  ugc_heap *heap = w->ctx->heap;
  uintptr_t hdr = ref - UGC_HEADER_BYTES;
  switch (ugc_heap_lookup(heap, ref)) {
  case UGC_REF_NONE:
    return;
  case UGC_REF_BAD:
    report_bad(w, slot, ref);
    return;
  case UGC_REF_MOVING: {
    size_t total = ugc_header_total(ugc_header_load(hdr));
    if (ugc_live_mark(&heap->moving, hdr, total)) {
      w->moving_bytes += total;
      w->objects++;
      push(w, ref);
    }
    return;
  }
  case UGC_REF_NONMOVING:
    if (ugc_nonmoving_mark(&heap->nonmoving, hdr)) {
      w->nonmoving_bytes += ugc_header_total(ugc_header_load(hdr));
      w->objects++;
      push(w, ref);
    }
    return;
  case UGC_REF_LARGE: {
    ugc_large_object *object = ugc_large_find(&heap->large, hdr);
    if (!atomic_exchange_explicit(&object->marked, 1, memory_order_relaxed)) {
      w->large_bytes += ugc_header_total(ugc_header_load(hdr));
      w->objects++;
      push(w, ref);
    }
    return;
  }
  }
}

/* Moves up to one chunk from the top of the worker's stack to the pool. Lock held. */
static void donate_locked(mark_context *ctx, mark_worker *w, size_t max) {
  if (ctx->pool_count == ctx->pool_capacity) {
    size_t capacity = ctx->pool_capacity ? 2 * ctx->pool_capacity : 64;
    mark_chunk **pool = realloc(ctx->pool, capacity * sizeof *pool);
    if (!pool)
      return; /* keep the work ourselves */
    ctx->pool = pool;
    ctx->pool_capacity = capacity;
  }
  mark_chunk *chunk = malloc(sizeof *chunk);
  if (!chunk)
    return;
  size_t n = w->count < max ? w->count : max;
  if (n > CHUNK_ENTRIES)
    n = CHUNK_ENTRIES;
  w->count -= n;
  memcpy(chunk->entries, &w->stack[w->count], n * sizeof(uintptr_t));
  chunk->count = n;
  ctx->pool[ctx->pool_count++] = chunk;
}

static void take_locked(mark_context *ctx, mark_worker *w) {
  mark_chunk *chunk = ctx->pool[--ctx->pool_count];
  for (size_t i = 0; i < chunk->count; i++)
    push(w, chunk->entries[i]);
  free(chunk);
}

static void drain(mark_context *ctx, mark_worker *w) {
  const ugc_type_table *types = &ctx->heap->types;
  unsigned since_check = 0;
  while (w->count) {
    uintptr_t ref = w->stack[--w->count];
    ugc_object_visit(types, ugc_header_load(ref - UGC_HEADER_BYTES), (void *)ref, &w->tracer);
    if (++since_check == 64) {
      since_check = 0;
      if (w->count > 1 && atomic_load_explicit(&ctx->waiting, memory_order_relaxed)) {
        pthread_mutex_lock(&ctx->lock);
        donate_locked(ctx, w, w->count / 2);
        pthread_cond_broadcast(&ctx->cond);
        pthread_mutex_unlock(&ctx->lock);
      }
    }
  }
}

static void worker_main(void *raw, size_t index, unsigned thread) {
  mark_context *ctx = raw;
  mark_worker *w = &ctx->workers[index];
  pthread_mutex_lock(&ctx->lock);
  if (ctx->done) {
    pthread_mutex_unlock(&ctx->lock);
    return;
  }
  ctx->entered++;
  for (;;) {
    if (ctx->pool_count) {
      take_locked(ctx, w);
      pthread_mutex_unlock(&ctx->lock);
      drain(ctx, w);
      pthread_mutex_lock(&ctx->lock);
      continue;
    }
    ctx->idle++;
    if (ctx->idle == ctx->entered) {
      ctx->done = true;
      pthread_cond_broadcast(&ctx->cond);
      break;
    }
    atomic_fetch_add(&ctx->waiting, 1);
    while (!ctx->pool_count && !ctx->done)
      pthread_cond_wait(&ctx->cond, &ctx->lock);
    atomic_fetch_sub(&ctx->waiting, 1);
    if (ctx->done)
      break;
    ctx->idle--;
  }
  pthread_mutex_unlock(&ctx->lock);
}

void ugc_mark_heap(ugc_heap *heap, ugc_mark_totals *totals) {
  mark_context ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.heap = heap;
  ctx.worker_count = heap->workers.count;
  ctx.workers = calloc(ctx.worker_count, sizeof *ctx.workers);
  if (!ctx.workers)
    ugc_fatal("out of memory for %u mark workers", ctx.worker_count);
  pthread_mutex_init(&ctx.lock, NULL);
  pthread_cond_init(&ctx.cond, NULL);
  for (unsigned i = 0; i < ctx.worker_count; i++) {
    ctx.workers[i].tracer.visit = mark_visit;
    ctx.workers[i].ctx = &ctx;
  }

  /* Roots are marked on this thread (enumerators are embedder code), then handed to the
   * pool for everyone. */
  mark_worker *first = &ctx.workers[0];
  ugc_roots_visit(heap, &first->tracer);
  while (first->count) {
    size_t before = first->count;
    donate_locked(&ctx, first, CHUNK_ENTRIES);
    if (first->count == before) { /* no memory for chunks: mark alone */
      drain(&ctx, first);
      break;
    }
  }
  ugc_workers_run(&heap->workers, ctx.worker_count, 1, worker_main, &ctx);

  memset(totals, 0, sizeof *totals);
  for (unsigned i = 0; i < ctx.worker_count; i++) {
    mark_worker *w = &ctx.workers[i];
    totals->moving_bytes += w->moving_bytes;
    totals->nonmoving_bytes += w->nonmoving_bytes;
    totals->large_bytes += w->large_bytes;
    totals->objects += w->objects;
    totals->bad_refs += w->bad_refs;
    free(w->stack);
  }
  snprintf(totals->first_bad, sizeof totals->first_bad, "%s", ctx.first_bad);
  free(ctx.pool);
  free(ctx.workers);
  pthread_mutex_destroy(&ctx.lock);
  pthread_cond_destroy(&ctx.cond);
}

bool ugc_mark_is_live(const ugc_heap *heap, uintptr_t ref) {
  uintptr_t hdr = ref - UGC_HEADER_BYTES;
  switch (ugc_heap_lookup(heap, ref)) {
  case UGC_REF_MOVING:
    return ugc_live_bit(&heap->moving, hdr);
  case UGC_REF_NONMOVING:
    return ugc_nonmoving_is_marked(&heap->nonmoving, hdr);
  case UGC_REF_LARGE:
    return atomic_load_explicit(&ugc_large_find(&heap->large, hdr)->marked,
                                memory_order_relaxed);
  default:
    return true;
  }
}
