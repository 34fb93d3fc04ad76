/* The allocator shim: what a workload may do with the heap, for uffdgc and for bdwgc.
 *
 * Workloads are written in uffdgc style (every reference held across an allocation is
 * rooted in a scope); compiled with BENCH_BDW the scope macros vanish, because bdwgc scans
 * the C stack conservatively. Allocation, stores and safepoints are static inline so the
 * uffdgc variant runs on the library's inline fast paths, as a real embedder would.
 *
 * Object kinds shared by all workloads:
 *   node   two references and two integers (GCBench's Node)
 *   array  a length word, then references
 *   leaf   bytes without references (strings, double arrays) */
#ifndef BENCH_SHIM_H
#define BENCH_SHIM_H

#include "bench.h"

typedef struct bnode {
  struct bnode *left, *right;
  int64_t i, j;
} bnode;

typedef struct barray {
  uint64_t len;
  void *items[];
} barray;

#ifdef BENCH_BDW
#include <gc.h>

/* Each workload source is compiled twice: give the bdw copy of its symbols another name. */
#define BENCH_SYM(name) name##_bdw

typedef struct shim {
  bench_ctx *ctx;
  uint32_t ticks;
} shim;

#define SHIM_SCOPE_BEGIN(s) do {
#define SHIM_ROOT(s, var) (void)0
#define SHIM_SCOPE_END(s)                                                                          \
  }                                                                                                \
  while (0)

static inline int shim_attach(shim *s, bench_ctx *ctx) {
  s->ctx = ctx;
  s->ticks = 0;
  return 0;
}
static inline void shim_detach(shim *s) {
  (void)s;
}
static inline void shim_safepoint(shim *s) {
  (void)s;
}

static inline bnode *shim_node(shim *s, bnode *left, bnode *right) {
  bnode *n = (bnode *)GC_MALLOC(sizeof(bnode));
  if (!n)
    bench_fail(s->ctx, "out of memory allocating a node");
  n->left = left;
  n->right = right;
  return n;
}
static inline barray *shim_array(shim *s, size_t len) {
  barray *a = (barray *)GC_MALLOC(sizeof(barray) + len * sizeof(void *));
  if (!a)
    bench_fail(s->ctx, "out of memory allocating an array of %zu", len);
  a->len = len;
  return a;
}
static inline void *shim_leaf(shim *s, size_t bytes) {
  void *p = GC_MALLOC_ATOMIC(bytes);
  if (!p)
    bench_fail(s->ctx, "out of memory allocating %zu bytes", bytes);
  return p;
}
static inline void shim_write(shim *s, void *obj, void **slot, void *value) {
  (void)s;
  (void)obj;
  *slot = value;
}
static inline uint64_t shim_gc_count(shim *s) {
  (void)s;
  return GC_get_gc_no();
}
#else
#include "uffdgc.h"

#define BENCH_SYM(name) name

typedef struct shim {
  bench_ctx *ctx;
  ugc_mutator *m;
  ugc_type_id node, array, leaf;
  uint32_t ticks;
  uint32_t thread; /* this thread's number in the pause timeline */
} shim;

#define SHIM_SCOPE_BEGIN(s)                                                                        \
  do {                                                                                             \
  ugc_scope shim_scope_ = ugc_scope_open((s)->m)
#define SHIM_ROOT(s, var) ugc_root((s)->m, &(var))
#define SHIM_SCOPE_END(s)                                                                          \
  ugc_scope_close((s)->m, shim_scope_);                                                            \
  }                                                                                                \
  while (0)

int shim_attach(shim *s, bench_ctx *ctx);
void shim_detach(shim *s);
uint64_t shim_gc_count(shim *s);
/* The library's slow paths, timed: a call during which a pause happened becomes a span of
 * the pause timeline (bench_record_pause). The fast paths stay the library's inline ones. */
void *shim_alloc_timed(shim *s, ugc_type_id type, size_t bytes);
void shim_safepoint_timed(shim *s);

static inline void shim_safepoint(shim *s) {
  if (UGC_UNLIKELY(*ugc_fast(s->m)->safepoint_requested))
    shim_safepoint_timed(s);
}

/* ugc_alloc, with the slow path timed. */
static inline void *shim_alloc(shim *s, ugc_type_id type, size_t bytes) {
  ugc_mutator_fast *fast = ugc_fast(s->m);
  if (UGC_LIKELY(bytes < fast->small_limit &&
                 ugc_alloc_size(bytes) <= fast->tlab_limit - fast->tlab_cursor))
    return ugc_alloc(s->m, type, bytes);
  return shim_alloc_timed(s, type, bytes);
}

static inline bnode *shim_node(shim *s, bnode *left, bnode *right) {
  /* The arguments are rooted here because the allocation may move them. */
  ugc_scope scope = ugc_scope_open(s->m);
  ugc_root(s->m, &left);
  ugc_root(s->m, &right);
  bnode *n = (bnode *)shim_alloc(s, s->node, sizeof(bnode));
  ugc_scope_close(s->m, scope);
  if (!n)
    bench_fail(s->ctx, "out of memory allocating a node");
  if (left)
    ugc_write(s->m, n, (void **)&n->left, left);
  if (right)
    ugc_write(s->m, n, (void **)&n->right, right);
  return n;
}
static inline barray *shim_array(shim *s, size_t len) {
  barray *a = (barray *)shim_alloc(s, s->array, sizeof(barray) + len * sizeof(void *));
  if (!a)
    bench_fail(s->ctx, "out of memory allocating an array of %zu", len);
  a->len = len;
  return a;
}
static inline void *shim_leaf(shim *s, size_t bytes) {
  void *p = shim_alloc(s, s->leaf, bytes);
  if (!p)
    bench_fail(s->ctx, "out of memory allocating %zu bytes", bytes);
  return p;
}
static inline void shim_write(shim *s, void *obj, void **slot, void *value) {
  ugc_write(s->m, obj, slot, value);
}
#endif

/* Shared out-of-line helpers, compiled per variant (bench/shim_common.c). */
#define shim_collect BENCH_SYM(shim_collect)
#define shim_sample_tick BENCH_SYM(shim_sample_tick)
/* A full collection; with --verify on a single-threaded workload also compares the graph
 * digest before and after and runs the verifier. Samples memory afterwards. */
void shim_collect(shim *s);
/* Samples memory if a collection happened since the last sample. */
void shim_sample_tick(shim *s);

/* Call in every workload loop: polls the safepoint, and now and then samples memory. */
static inline void shim_tick(shim *s) {
  shim_safepoint(s);
  if (__builtin_expect(++s->ticks >= 4096, 0)) {
    s->ticks = 0;
    shim_sample_tick(s);
  }
}

#endif
