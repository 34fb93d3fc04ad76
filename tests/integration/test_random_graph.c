/* Random object graphs over many seeds, checked across thousands of collections.
 *
 * Every object stores its own id in its payload, and a shadow model (ids and edges, kept by
 * this test alone) mirrors every mutation. Each checked collection is checked with:
 *   - ugc_graph_digest before it and after its compaction finished (the library's view),
 *   - ugc_verify (the library's heap checker) after its compaction finished,
 *   - walks from the roots against the shadow model, during the compaction and after it:
 *     the same ids behind every root and every slot, payload data intact, tags kept,
 *     pinned objects not moved, no object seen at two addresses. That catches bugs the
 *     digest could share with the collector.
 * The compaction of a checked collection runs concurrently with the mutators (on a
 * concurrent backend): see "collections" below for how the checks wait for it without
 * finishing it inside a pause.
 *
 * Allocation happens in epochs: ugc_reserve first (it may collect), then a walk from the
 * roots rebuilds id -> address, then objects are allocated and linked without reaching a
 * safepoint, so raw pointers stay valid within the epoch. Pinned and large objects are
 * allocated outside epochs, straight into a root slot.
 *
 * Env: UGC_TEST_SEEDS (default 1000), UGC_TEST_SEED_BASE (first seed, default 0),
 * UGC_TEST_THREADS (default 1; with N > 1 each thread has its own graphs on one heap, and
 * at every checked collection one thread collects while the others wait polling
 * safepoints or inside a blocking region), UFFDGC_BACKEND, UFFDGC_DELIVERY, UFFDGC_VERIFY,
 * UGC_TEST_MIN_COLLECTIONS (fail unless at least this many checked collections ran),
 * UGC_TEST_MAX_STALLS_PER_PAGE (fail if mutators stalled more than this many times per page
 * they built: a fault that keeps coming back instead of being resolved; default no limit).
 * On a concurrent backend the run fails if no mutator built a page during a checked
 * collection (unless UFFDGC_VERIFY=2, which finishes compactions in the pause).
 *
 * With several threads the digest comparison stays valid because nobody mutates between
 * the two digests of a read-only round: the other threads are parked (blocking region, or
 * polling safepoints without touching their graphs) while the collector takes a digest,
 * and in between every thread only reads. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

enum { K_FIXED, K_ARRAY, K_LEAF, K_CUSTOM, K_PINNED, K_LARGE, K_COUNT };
enum {
  NROOTS = 24,
  NGLOBAL = 4, /* roots[0..NGLOBAL) are global roots, the rest handle-scope roots */
  EPOCH_OPS = 64,
  MAX_SMALL = 248,     /* payload bytes of any object allocated inside an epoch */
  LARGE_SLOTS = 17000, /* 136 KB: above the default large-object threshold */
  COLLECTIONS_PER_SEED = 5,
};
#define FIXED_CHECK 0x9E3779B97F4A7C15ull
#define CUSTOM_FIXNUM 1u /* mode bit: the tagged slot holds an immediate, not a reference */

static ugc_heap *heap;
static ugc_type_id type_of_kind[K_COUNT];

static int kind_of_type(ugc_type_id type) {
  for (int k = 0; k < K_COUNT; k++)
    if (type_of_kind[k] == type)
      return k;
  return -1;
}

/* CUSTOM layout: [0] id, [8] mode, [16] tagged slot (reference | tag, or an immediate),
 * [24] plain reference. Reads nothing but the object, as the API requires. */
static void custom_trace(void *obj, size_t payload_bytes, ugc_tracer *tracer) {
  uint64_t *w = (uint64_t *)obj;
  (void)payload_bytes;
  if (!(w[1] & CUSTOM_FIXNUM))
    ugc_trace_tagged(tracer, (uintptr_t *)&w[2], 1);
  ugc_trace_slot(tracer, (void **)&w[3]);
}

/* ---- shadow model ------------------------------------------------------------------- */

typedef struct sobj {
  uint8_t kind;
  uint32_t size; /* payload bytes */
  uint32_t nslots;
  uint32_t edge0;  /* first edge in the pool */
  void *pinned_at; /* K_PINNED, K_LARGE: the address it must keep */
} sobj;

/* One thread's graph and its shadow. Ids start at 1; edge value 0 = NULL. For K_CUSTOM,
 * edge 0 is the tagged slot (bit 31 = tag; with mode CUSTOM_FIXNUM it is unused and the
 * immediate is in `fixnum`), edge 1 the plain slot. */
typedef struct graph {
  ugc_mutator *m;
  uint64_t rng;
  void *roots[NROOTS];
  uint32_t root_id[NROOTS];
  sobj *obj;
  uint64_t *fixnum; /* per id, K_CUSTOM immediates (0 = holds a reference) */
  uint32_t nobj, cap;
  uint32_t *edges;
  uint32_t nedges, edge_cap;
  /* Rebuilt by every walk: */
  void **ptr;     /* id -> address */
  uint32_t *seen; /* id -> walk number that reached it */
  uint32_t walk_no;
  uint32_t *reach; /* reachable ids */
  uint32_t nreach;
  void **stack;
  uint32_t stack_cap;
  unsigned long collections, digest_checks, digest_mismatches, verify_failures, shadow_mismatches;
  uint64_t digest_before;      /* of the collection in progress */
  uint64_t mutator_pages_mark; /* pages_by_mutator when it started */
  uint64_t window_pages;       /* pages built by mutators during checked collections */
  unsigned long windows_with_pages;
} graph;

#define TAG_BIT 0x80000000u

static uint64_t rnd(graph *g) {
  uint64_t x = g->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  g->rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

static void *xrealloc(void *p, size_t bytes) {
  void *q = realloc(p, bytes);
  REQUIRE(q != NULL);
  return q;
}

static uint32_t shadow_new(graph *g, int kind, uint32_t size, uint32_t nslots) {
  if (g->nobj + 1 >= g->cap) {
    g->cap = g->cap ? g->cap * 2 : 1024;
    g->obj = xrealloc(g->obj, g->cap * sizeof *g->obj);
    g->fixnum = xrealloc(g->fixnum, g->cap * sizeof *g->fixnum);
    g->ptr = xrealloc(g->ptr, g->cap * sizeof *g->ptr);
    g->seen = xrealloc(g->seen, g->cap * sizeof *g->seen);
    g->reach = xrealloc(g->reach, g->cap * sizeof *g->reach);
  }
  if (g->nedges + nslots > g->edge_cap) {
    while (g->nedges + nslots > g->edge_cap)
      g->edge_cap = g->edge_cap ? g->edge_cap * 2 : 4096;
    g->edges = xrealloc(g->edges, g->edge_cap * sizeof *g->edges);
  }
  uint32_t id = ++g->nobj;
  g->obj[id] = (sobj){.kind = (uint8_t)kind, .size = size, .nslots = nslots, .edge0 = g->nedges};
  g->fixnum[id] = 0;
  g->seen[id] = 0;
  memset(&g->edges[g->nedges], 0, nslots * sizeof *g->edges);
  g->nedges += nslots;
  return id;
}

static void shadow_reset(graph *g) {
  g->nobj = 0;
  g->nedges = 0;
  g->walk_no = 0;
}

/* ---- real objects ------------------------------------------------------------------- */

static uint64_t *words(void *obj) {
  return (uint64_t *)obj;
}

/* Address of reference slot `i` of an object of `kind` (untagged slots only). */
static void **slot_addr(void *obj, int kind, uint32_t i) {
  switch (kind) {
  case K_FIXED:
  case K_PINNED:
    return (void **)&words(obj)[i];
  case K_ARRAY:
  case K_LARGE:
    return (void **)&words(obj)[1 + i];
  case K_CUSTOM:
    return (void **)&words(obj)[i == 0 ? 2 : 3];
  default:
    return NULL;
  }
}

static uint64_t real_id(void *obj, int kind) {
  return kind == K_FIXED || kind == K_PINNED ? words(obj)[2] : words(obj)[0];
}

/* Fills a fresh object's non-reference payload. */
static void init_payload(void *obj, int kind, uint32_t id, uint32_t size) {
  uint64_t *w = words(obj);
  if (kind == K_FIXED || kind == K_PINNED) {
    w[2] = id;
    w[3] = id * FIXED_CHECK;
  } else {
    w[0] = id;
  }
  if (kind == K_LEAF)
    for (uint32_t i = 8; i < size; i++)
      ((unsigned char *)obj)[i] = (unsigned char)(id * 7 + i);
}

/* The value stored in a slot, as the id of its referent (0 = NULL); ~0u = not an object
 * the walk knows. For the tagged slot, the tag comes back in TAG_BIT. */
static uint32_t slot_target(graph *g, void *obj, int kind, uint32_t i, void **target) {
  uintptr_t raw = (uintptr_t)*slot_addr(obj, kind, i);
  uint32_t tag = 0;
  if (kind == K_CUSTOM && i == 0) {
    tag = (raw & 1) ? TAG_BIT : 0;
    raw &= ~(uintptr_t)1;
  }
  *target = (void *)raw;
  if (!raw)
    return 0;
  int child_kind = kind_of_type(ugc_object_type((void *)raw));
  if (child_kind < 0)
    return ~0u;
  uint64_t id = real_id((void *)raw, child_kind);
  if (id == 0 || id > g->nobj)
    return ~0u;
  return (uint32_t)id | tag;
}

static void report(graph *g, const char *what, uint32_t id, uint32_t slot) {
  if (g->shadow_mismatches++ < 10)
    fprintf(stderr, "shadow mismatch: %s (object id %u, slot %u)\n", what, id, slot);
}

/* Checks one reached object against the shadow; returns false if it cannot be trusted. */
static bool check_object(graph *g, void *obj, uint32_t id) {
  sobj *s = &g->obj[id];
  int kind = kind_of_type(ugc_object_type(obj));
  if (kind != s->kind) {
    report(g, "type differs", id, 0);
    return false;
  }
  if (ugc_object_size(obj) != s->size)
    report(g, "payload size differs", id, 0);
  if (s->pinned_at && s->pinned_at != obj)
    report(g, "pinned or large object moved", id, 0);
  uint64_t *w = words(obj);
  if ((kind == K_FIXED || kind == K_PINNED) && w[3] != id * FIXED_CHECK)
    report(g, "non-reference payload word changed", id, 0);
  if (kind == K_LEAF)
    for (uint32_t i = 8; i < s->size; i++)
      if (((unsigned char *)obj)[i] != (unsigned char)(id * 7 + i)) {
        report(g, "leaf bytes changed", id, i);
        break;
      }
  if (kind == K_CUSTOM && ((w[1] & CUSTOM_FIXNUM) != 0) != (g->fixnum[id] != 0))
    report(g, "custom mode word changed", id, 0);
  if (kind == K_CUSTOM && g->fixnum[id] && w[2] != g->fixnum[id])
    report(g, "custom immediate changed", id, 0);
  return true;
}

/* Walks from the roots: rebuilds id -> address and the reachable list, and (check) compares
 * every root, object and edge with the shadow. */
static void walk(graph *g, bool check) {
  uint32_t n = ++g->walk_no, sp = 0;
  g->nreach = 0;
  for (int r = 0; r < NROOTS; r++) {
    void *obj = g->roots[r];
    uint32_t id = 0;
    if (obj) {
      int kind = kind_of_type(ugc_object_type(obj));
      uint64_t rid = kind < 0 ? 0 : real_id(obj, kind);
      id = rid && rid <= g->nobj ? (uint32_t)rid : ~0u;
    }
    if (id != g->root_id[r]) {
      report(g, "root holds another object", id, (uint32_t)r);
      continue;
    }
    if (!id || g->seen[id] == n)
      continue;
    g->seen[id] = n;
    g->ptr[id] = obj;
    if (sp == g->stack_cap) {
      g->stack_cap = g->stack_cap ? g->stack_cap * 2 : 1024;
      g->stack = xrealloc(g->stack, g->stack_cap * sizeof *g->stack);
    }
    g->stack[sp++] = obj;
  }
  while (sp) {
    void *obj = g->stack[--sp];
    int kind = kind_of_type(ugc_object_type(obj));
    uint32_t id = (uint32_t)real_id(obj, kind);
    g->reach[g->nreach++] = id;
    if (check && !check_object(g, obj, id))
      continue;
    sobj *s = &g->obj[id];
    for (uint32_t i = 0; i < s->nslots; i++) {
      if (kind == K_CUSTOM && i == 0 && g->fixnum[id])
        continue;
      void *child;
      uint32_t got = slot_target(g, obj, kind, i, &child);
      if (got != g->edges[s->edge0 + i]) {
        report(g, got == ~0u ? "slot points at no known object" : "slot holds another object", id,
               i);
        continue;
      }
      uint32_t cid = got & ~TAG_BIT;
      if (!cid)
        continue;
      if (g->seen[cid] == n) {
        if (g->ptr[cid] != child)
          report(g, "one object id at two addresses", cid, i);
        continue;
      }
      g->seen[cid] = n;
      g->ptr[cid] = child;
      if (sp == g->stack_cap) {
        g->stack_cap *= 2;
        g->stack = xrealloc(g->stack, g->stack_cap * sizeof *g->stack);
      }
      g->stack[sp++] = child;
    }
  }
}

/* ---- mutations ---------------------------------------------------------------------- */

static uint32_t random_reachable(graph *g) {
  if (!g->nreach || rnd(g) % 8 == 0)
    return 0;
  return g->reach[rnd(g) % g->nreach];
}

/* Stores object `target` (id, may be 0) with `tag` into slot i of object `id`. */
static void store(graph *g, uint32_t id, uint32_t i, uint32_t target, uint32_t tag) {
  sobj *s = &g->obj[id];
  void *obj = g->ptr[id];
  void *value = target ? g->ptr[target] : NULL;
  if (s->kind == K_CUSTOM && i == 0) {
    uint64_t *w = words(obj);
    w[1] &= ~(uint64_t)CUSTOM_FIXNUM;
    g->fixnum[id] = 0;
    uintptr_t v = (uintptr_t)value | (target ? tag : 0);
    ugc_write_tagged(g->m, obj, (uintptr_t *)&w[2], v);
    g->edges[s->edge0] = target | (target && tag ? TAG_BIT : 0);
    return;
  }
  ugc_write(g->m, obj, slot_addr(obj, s->kind, i), value);
  g->edges[s->edge0 + i] = target;
}

/* Puts object `id` somewhere reachable: a root slot or a slot of a reachable object. */
static void link_somewhere(graph *g, uint32_t id) {
  uint32_t holder = g->nreach ? g->reach[rnd(g) % g->nreach] : 0;
  if (holder && g->obj[holder].nslots && rnd(g) % 4) {
    store(g, holder, (uint32_t)(rnd(g) % g->obj[holder].nslots), id, (uint32_t)(rnd(g) & 1));
    return;
  }
  int r = (int)(rnd(g) % NROOTS);
  g->roots[r] = g->ptr[id];
  g->root_id[r] = id;
}

/* Allocates a small object inside an epoch (a reservation covers it). */
static void alloc_small(graph *g) {
  int kind = (int)(rnd(g) % 4); /* K_FIXED .. K_CUSTOM */
  uint32_t size = 32, nslots = 2;
  if (kind == K_ARRAY) {
    nslots = 1 + (uint32_t)(rnd(g) % 16);
    size = 8 + 8 * nslots;
  } else if (kind == K_LEAF) {
    nslots = 0;
    size = 8 + (uint32_t)(rnd(g) % (MAX_SMALL - 8));
  }
  void *obj = ugc_alloc(g->m, type_of_kind[kind], size);
  REQUIRE(obj != NULL);
  uint32_t id = shadow_new(g, kind, size, nslots);
  init_payload(obj, kind, id, size);
  g->ptr[id] = obj;
  if (kind == K_CUSTOM && rnd(g) % 3 == 0) {
    uint64_t imm = ((rnd(g) % 100000) << 1) | 1;
    words(obj)[1] = CUSTOM_FIXNUM;
    words(obj)[2] = imm;
    g->fixnum[id] = imm;
  }
  /* Some edges of the new object point at existing ones. */
  for (uint32_t i = 0; i < nslots; i++)
    if (rnd(g) % 2 && !(kind == K_CUSTOM && i == 0 && g->fixnum[id]))
      store(g, id, i, random_reachable(g), (uint32_t)(rnd(g) & 1));
  link_somewhere(g, id);
  g->reach[g->nreach++] = id;
}

/* One epoch: reserve, rebuild addresses, then `ops` operations with no safepoint. */
static void epoch(graph *g, unsigned ops, unsigned alloc_percent) {
  REQUIRE(ugc_reserve(g->m, (size_t)ops * ugc_alloc_size(MAX_SMALL)));
  walk(g, false);
  for (unsigned k = 0; k < ops; k++) {
    uint64_t r = rnd(g) % 100;
    if (r < alloc_percent) {
      alloc_small(g);
    } else if (r < 92 && g->nreach) {
      uint32_t id = g->reach[rnd(g) % g->nreach];
      if (g->obj[id].nslots)
        store(g, id, (uint32_t)(rnd(g) % g->obj[id].nslots), random_reachable(g),
              (uint32_t)(rnd(g) & 1));
    } else {
      /* Drop or replace a root: whole subgraphs become garbage. */
      int root = (int)(rnd(g) % NROOTS);
      uint32_t id = rnd(g) % 2 ? 0 : random_reachable(g);
      g->roots[root] = id ? g->ptr[id] : NULL;
      g->root_id[root] = id;
    }
  }
}

/* Pinned and large objects: allocated outside epochs (they may collect), straight into a
 * root slot so nothing unrooted is held across the call. */
static void alloc_outside_epoch(graph *g, int kind) {
  int r = NGLOBAL + (int)(rnd(g) % (NROOTS - NGLOBAL));
  uint32_t nslots = kind == K_LARGE ? LARGE_SLOTS : 2;
  uint32_t size = kind == K_LARGE ? 8 + 8 * nslots : 32;
  void *obj = kind == K_LARGE ? ugc_alloc(g->m, type_of_kind[K_LARGE], size)
                              : ugc_alloc_pinned(g->m, type_of_kind[K_PINNED], size);
  REQUIRE(obj != NULL);
  uint32_t id = shadow_new(g, kind, size, nslots);
  init_payload(obj, kind, id, size);
  g->obj[id].pinned_at = obj;
  g->roots[r] = obj;
  g->root_id[r] = id;
}

/* Unreachable allocations worth more than the trigger: the collector starts a cycle on its
 * own in the middle of a seed, with the whole graph live; the walk then checks it. */
static void garbage_burst(graph *g) {
  for (size_t bytes = 0; bytes < (3u << 20); bytes += ugc_alloc_size(MAX_SMALL)) {
    void *junk = ugc_alloc(g->m, type_of_kind[K_LEAF], MAX_SMALL);
    REQUIRE(junk != NULL);
    ugc_safepoint(g->m);
  }
  walk(g, true);
}

/* ---- collections -------------------------------------------------------------------- */

/* A checked collection leaves its compaction running: the digest is taken before it, then
 * the world resumes and every thread walks (reads) its whole graph while the compaction
 * is in flight, so the walk faults on pages not built yet and builds them; in half of the
 * rounds (the same for every thread) the threads also write and allocate in that window.
 * Then one thread waits for the compaction to finish and takes the second digest and
 * ugc_verify, and everyone walks again: what was written in the window must be there.
 * The digests are compared in the read-only rounds (a write changes the graph); the
 * shadow walks check every round. Taking the second digest or verifying right after
 * ugc_collect would finish the compaction inside that stop, and no mutator would ever
 * build a page of a checked cycle. */

static int nthreads = 1;
static unsigned seed_base;
static pthread_barrier_t barrier;
static atomic_uint sections_done;
/* Pages mutators built during checked collections, all threads (see thread_main). */
static atomic_ulong all_window_pages;
static bool fault_path_expected; /* a concurrent backend, compaction not finished in pauses */
static atomic_uint extra_seeds_run;

static bool window_writes(unsigned round) {
  return ((round * 2654435761u) >> 13) & 1;
}

/* Moving-space pages and pages of large objects whose references are updated after the
 * pause: both are the fault path. */
static uint64_t pages_by_mutator(void) {
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  return stats.compaction.pages_by_mutator + stats.compaction.update_pages_by_mutator;
}

static void start_checked_collection(graph *g, unsigned round) {
  (void)round;
  g->digest_before = ugc_graph_digest(g->m); /* finishes the compaction of any earlier cycle */
  g->mutator_pages_mark = pages_by_mutator();
  ugc_collect(g->m, UGC_COLLECT_FULL);
}

static void finish_checked_collection(graph *g, unsigned round) {
  ugc_collect(g->m, UGC_COLLECT_FINISH);
  uint64_t built = pages_by_mutator() - g->mutator_pages_mark;
  g->window_pages += built;
  g->windows_with_pages += built != 0;
  atomic_fetch_add(&all_window_pages, (unsigned long)built);
  uint64_t after = ugc_graph_digest(g->m);
  if (!window_writes(round)) {
    g->digest_checks++;
    if (g->digest_before != after && g->digest_mismatches++ < 10)
      fprintf(stderr, "digest mismatch: %016llx -> %016llx\n", (unsigned long long)g->digest_before,
              (unsigned long long)after);
  }
  ugc_error error;
  memset(&error, 0, sizeof error);
  size_t problems = ugc_verify(g->m, &error);
  if (problems && g->verify_failures++ < 10)
    fprintf(stderr, "%s\n", error.message);
  g->collections++;
}

static void wait_barrier(graph *g) {
  ugc_blocking_enter(g->m);
  pthread_barrier_wait(&barrier);
  ugc_blocking_leave(g->m);
}

/* Runs `step` on the round's collecting thread while the others do not touch their graphs:
 * alternately polling safepoints and parked in a blocking region, so that both ways of
 * being stopped are tested. `section` numbers the calls (the same on every thread). */
static void exclusive(graph *g, int tid, unsigned round, unsigned section,
                      void (*step)(graph *, unsigned)) {
  if (nthreads == 1) {
    step(g, round);
    return;
  }
  wait_barrier(g);
  if ((int)(round % (unsigned)nthreads) == tid) {
    step(g, round);
    atomic_store(&sections_done, section + 1);
  } else if (round & 1) {
    ugc_blocking_enter(g->m);
    while (atomic_load(&sections_done) != section + 1)
      sched_yield();
    ugc_blocking_leave(g->m);
  } else {
    while (atomic_load(&sections_done) != section + 1) {
      ugc_safepoint(g->m);
      sched_yield();
    }
  }
  wait_barrier(g);
}

static void collection_round(graph *g, int tid, unsigned round) {
  exclusive(g, tid, round, 2 * round, start_checked_collection);
  walk(g, true); /* the compaction may still run: faults */
  if (window_writes(round))
    for (int e = 0; e < 2; e++)
      epoch(g, EPOCH_OPS, 30);
  exclusive(g, tid, round, 2 * round + 1, finish_checked_collection);
  walk(g, true);
}

typedef struct thread_arg {
  int tid;
  unsigned seeds;
  graph g;
} thread_arg;

/* One seed: a fresh random graph, then COLLECTIONS_PER_SEED checked collections. */
static void run_seed(graph *g, const thread_arg *arg, unsigned seed, unsigned *next_round) {
  unsigned round = *next_round;
  uint64_t mixed = (uint64_t)(seed_base + seed) * 1000003u + (unsigned)arg->tid;
  g->rng = 0x853C49E6748FEA9Bull ^ (mixed << 1);
  rnd(g);
  memset(g->roots, 0, sizeof g->roots);
  memset(g->root_id, 0, sizeof g->root_id);
  shadow_reset(g);
  g->nreach = 0;
  uint32_t target = 200 + (uint32_t)(rnd(g) % 1800);
  unsigned pinned = (unsigned)(rnd(g) % 4);
  for (unsigned i = 0; i < pinned; i++)
    alloc_outside_epoch(g, K_PINNED);
  if (rnd(g) % 8 == 0)
    alloc_outside_epoch(g, K_LARGE);
  while (g->nobj < target)
    epoch(g, EPOCH_OPS, 85);
  for (int c = 0; c < COLLECTIONS_PER_SEED; c++) {
    collection_round(g, arg->tid, round++);
    for (int e = 0; e < 3; e++)
      epoch(g, EPOCH_OPS, 30);
    if (c == 2 && rnd(g) % 2)
      alloc_outside_epoch(g, K_PINNED);
    if (rnd(g) % 16 == 0)
      garbage_burst(g);
  }
  *next_round = round;
}

#define MAX_EXTRA_SEEDS 200u

static void *thread_main(void *p) {
  thread_arg *arg = (thread_arg *)p;
  graph *g = &arg->g;
  ugc_error error;
  memset(&error, 0, sizeof error);
  g->m = ugc_thread_attach(heap, &error);
  REQUIRE(g->m != NULL);
  ugc_scope scope = ugc_scope_open(g->m);
  for (int r = 0; r < NROOTS; r++) {
    if (r < NGLOBAL)
      ugc_global_root_add(heap, &g->roots[r]);
    else
      ugc_root(g->m, &g->roots[r]);
  }
  unsigned round = 0;
  for (unsigned seed = 0; seed < arg->seeds; seed++)
    run_seed(g, arg, seed, &round);
  /* On a loaded machine the GC threads may have built every page of every checked cycle
   * before a mutator touched one: then more seeds run (all threads alike: they decide
   * between two barriers, on the same total) until a mutator has, at most MAX_EXTRA_SEEDS. */
  for (unsigned extra = 0;; extra++) {
    /* In a blocking region: a collection another thread starts meanwhile must not wait
     * for this one. */
    if (nthreads > 1)
      wait_barrier(g);
    bool none = atomic_load(&all_window_pages) == 0;
    if (nthreads > 1)
      wait_barrier(g);
    if (!none || !fault_path_expected || extra >= MAX_EXTRA_SEEDS)
      break;
    if (arg->tid == 0)
      atomic_fetch_add(&extra_seeds_run, 1);
    run_seed(g, arg, arg->seeds + extra, &round);
  }
  for (int r = 0; r < NGLOBAL; r++)
    ugc_global_root_remove(heap, &g->roots[r]);
  ugc_scope_close(g->m, scope);
  ugc_thread_detach(g->m);
  return NULL;
}

static void register_types(void) {
  static const uint32_t fixed_refs[] = {0, 8};
  ugc_type_desc descs[K_COUNT] = {
      [K_FIXED] = {.name = "rg.fixed",
                   .layout = UGC_LAYOUT_FIXED,
                   .fixed_size = 32,
                   .ref_offsets = fixed_refs,
                   .ref_count = 2},
      [K_ARRAY] = {.name = "rg.array", .layout = UGC_LAYOUT_REF_ARRAY, .fixed_size = 8},
      [K_LEAF] = {.name = "rg.leaf", .layout = UGC_LAYOUT_LEAF},
      [K_CUSTOM] = {.name = "rg.custom",
                    .layout = UGC_LAYOUT_CUSTOM,
                    .fixed_size = 32,
                    .trace = custom_trace},
      [K_PINNED] = {.name = "rg.pinned",
                    .layout = UGC_LAYOUT_FIXED,
                    .fixed_size = 32,
                    .ref_offsets = fixed_refs,
                    .ref_count = 2},
      [K_LARGE] = {.name = "rg.large", .layout = UGC_LAYOUT_REF_ARRAY, .fixed_size = 8},
  };
  for (int k = 0; k < K_COUNT; k++) {
    ugc_error error;
    memset(&error, 0, sizeof error);
    type_of_kind[k] = ugc_type_register(heap, &descs[k], &error);
    if (!type_of_kind[k]) {
      fprintf(stderr, "ugc_type_register(%s): %s\n", descs[k].name, error.message);
      exit(1);
    }
  }
}

int main(void) {
  unsigned seeds = itest_env_unsigned("UGC_TEST_SEEDS", 1000);
  unsigned long min_collections = itest_env_unsigned("UGC_TEST_MIN_COLLECTIONS", 1);
  /* Below this many checked collections a run may be too short for any fault to happen. */
  unsigned long min_mutator_pages_after = 200;
  nthreads = (int)itest_env_unsigned("UGC_TEST_THREADS", 1);
  seed_base = itest_env_unsigned("UGC_TEST_SEED_BASE", 0);
  if (nthreads > 16)
    nthreads = 16;
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = 128u << 20;
  /* Small trigger: collections also start inside ugc_reserve and the pinned/large
   * allocations, not only in ugc_collect. */
  config.heap_initial = 2u << 20;
  heap = itest_heap_create(&config);
  register_types();
  {
    const char *verify_mode = getenv("UFFDGC_VERIFY");
    bool verified_in_pause = verify_mode && strcmp(verify_mode, "2") == 0;
    fault_path_expected = strcmp(ugc_heap_backend(heap), "stw") != 0 && !verified_in_pause &&
                          (unsigned long)seeds * COLLECTIONS_PER_SEED >= min_mutator_pages_after;
  }

  thread_arg args[16];
  memset(args, 0, sizeof args);
  unsigned per_thread = (seeds + (unsigned)nthreads - 1) / (unsigned)nthreads;
  if (nthreads == 1) {
    args[0].seeds = seeds;
    thread_main(&args[0]);
  } else {
    pthread_t threads[16];
    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
    for (int t = 0; t < nthreads; t++) {
      args[t].tid = t;
      args[t].seeds = per_thread;
      REQUIRE(pthread_create(&threads[t], NULL, thread_main, &args[t]) == 0);
    }
    for (int t = 0; t < nthreads; t++)
      pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&barrier);
  }

  unsigned long collections = 0, digest_checks = 0, digest = 0, verify = 0, shadow = 0;
  unsigned long windows_with_pages = 0;
  uint64_t window_pages = 0;
  for (int t = 0; t < nthreads; t++) {
    collections += args[t].g.collections;
    digest_checks += args[t].g.digest_checks;
    digest += args[t].g.digest_mismatches;
    verify += args[t].g.verify_failures;
    shadow += args[t].g.shadow_mismatches;
    window_pages += args[t].g.window_pages;
    windows_with_pages += args[t].g.windows_with_pages;
    free(args[t].g.obj);
    free(args[t].g.fixnum);
    free(args[t].g.edges);
    free(args[t].g.ptr);
    free(args[t].g.seen);
    free(args[t].g.reach);
    free(args[t].g.stack);
  }
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  const char *delivery = getenv("UFFDGC_DELIVERY");
  const char *backend = ugc_heap_backend(heap);
  bool concurrent = strcmp(backend, "stw") != 0;
  const char *library_verify = getenv("UFFDGC_VERIFY");
  printf("random_graph: backend %s (delivery %s), %d thread(s), %u seeds, UFFDGC_VERIFY=%s\n",
         backend, delivery && *delivery ? delivery : "default", nthreads,
         nthreads == 1 ? seeds : per_thread * (unsigned)nthreads,
         library_verify && *library_verify ? library_verify : "0");
  printf("random_graph: %llu pages built by mutators in all (%llu of them of large objects "
         "updated after the pause), %llu of them while checked collections were compacting (in "
         "%lu of them); %llu stalls on pages being compacted; %llu compaction(s) in the pause "
         "(a fallback)\n",
         (unsigned long long)(stats.compaction.pages_by_mutator +
                              stats.compaction.update_pages_by_mutator),
         (unsigned long long)stats.compaction.update_pages_by_mutator,
         (unsigned long long)window_pages, windows_with_pages,
         (unsigned long long)stats.stall.count,
         (unsigned long long)stats.compaction.compactions_in_pause);
  printf("random_graph: %llu pages compacted in all, %llu of them in place (minor: kept in "
         "their file, updated without a copy), %llu fresh, %llu recycled (move: %llu in whole "
         "2 MiB chunks)\n",
         (unsigned long long)stats.compaction.pages_total,
         (unsigned long long)stats.compaction.pages_in_place,
         (unsigned long long)stats.compaction.pages_fresh,
         (unsigned long long)stats.compaction.pages_recycled,
         (unsigned long long)stats.compaction.pages_recycled_huge);
  printf("random_graph: %lu checked collections (%lu with digests compared), %lu digest "
         "mismatches, %lu verify failures, %lu shadow mismatches, %llu library verifier runs "
         "with %llu problems (%llu cycles in all; at least %lu checked required)\n",
         collections, digest_checks, digest, verify, shadow,
         (unsigned long long)stats.verify_cycles, (unsigned long long)stats.verify_failures,
         (unsigned long long)stats.cycles, min_collections);
  if (atomic_load(&extra_seeds_run))
    printf("random_graph: %u extra seed(s) per thread ran until a mutator built a page of a "
           "checked collection\n",
           atomic_load(&extra_seeds_run));
  printf("random_graph: %llu cycles marked concurrently, %llu values recorded by the write "
         "barrier meanwhile\n",
         (unsigned long long)stats.mark_concurrent_cycles,
         (unsigned long long)stats.mark_barrier_values);
  CHECK(collections >= min_collections);
  CHECK(digest == 0);
  CHECK(verify == 0);
  CHECK(shadow == 0);
  CHECK(stats.verify_failures == 0);
  CHECK(stats.cycles >= collections);
  /* On a concurrent backend the checked collections must have reached the fault path:
   * mutators built pages while the compaction that the checks then verified was running. */
  bool in_pause = library_verify && strcmp(library_verify, "2") == 0;
  if (concurrent && in_pause)
    printf("random_graph: UFFDGC_VERIFY=2 finishes every compaction in the pause: no page "
           "built by a mutator is expected\n");
  else if (concurrent && collections >= min_mutator_pages_after)
    CHECK(window_pages > 0);
  unsigned long max_stalls_per_page = itest_env_unsigned("UGC_TEST_MAX_STALLS_PER_PAGE", 0);
  if (max_stalls_per_page) {
    uint64_t built = stats.compaction.pages_by_mutator + stats.compaction.update_pages_by_mutator;
    CHECK(stats.stall.count <= max_stalls_per_page * (built ? built : 1));
  }
  ugc_heap_destroy(heap);
  TEST_DONE();
}
