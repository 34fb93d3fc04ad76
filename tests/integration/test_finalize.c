/* Finalization (ugc_finalizer_add / remove, ugc_finalizers_drain / pending), on the backend
 * UFFDGC_BACKEND names, with or without concurrent marking (tests/matrix.cmake registers
 * each):
 *  - resurrection: an unreachable registered object is queued with everything it
 *    references; after several more (moving) collections the drained graph has the digest
 *    it had while reachable, and the verifier finds nothing;
 *  - order (Java's rules): objects found unreachable in one collection are handed out in
 *    registration order, one registered object referenced by another and a cycle of two are
 *    queued in the same collection, each with its referents intact;
 *  - a finalizer that registers its object again: finalized once per registration;
 *  - exactly once: 3,000 objects, a changing third of them reachable, drains interleaved
 *    with collections (including collections the finalizer itself causes);
 *  - ugc_finalizer_remove: of a registered and of a queued registration. */
#include <string.h>

#include "itest.h"

typedef struct node {
  struct node *left, *right;
  uint64_t value;
} node;

static const uint32_t node_refs[] = {offsetof(node, left), offsetof(node, right)};
static ugc_heap *heap;
static ugc_mutator *m;
static ugc_type_id node_type, leaf_type;

/* A fresh node (children NULL): link it with set_left/set_right afterwards, since the
 * allocation may move whatever the caller holds in unrooted locals. */
static node *new_node(uint64_t value) {
  node *n = ugc_alloc(m, node_type, sizeof(node));
  REQUIRE(n);
  n->value = value;
  return n;
}

static void set_left(void *parent, void *child) {
  ugc_write(m, parent, (void **)&((node *)parent)->left, child);
}

/* Garbage, so that the next collections move what survives. */
static void churn(unsigned count) {
  for (unsigned i = 0; i < count; i++)
    REQUIRE(ugc_alloc(m, leaf_type, 64 + (i % 7) * 16));
}

static void collect(void) {
  ugc_collect(m, UGC_COLLECT_FULL);
}

/* A chain of `length` nodes under the head it returns (left: next, value: position). */
static node *chain(unsigned length, uint64_t base) {
  void *head = NULL, *fresh = NULL;
  ugc_scope scope = ugc_scope_open(m);
  ugc_root(m, &head);
  ugc_root(m, &fresh);
  for (unsigned i = length; i-- > 0;) {
    fresh = new_node(base + i);
    set_left(fresh, head);
    head = fresh;
    churn(2);
  }
  ugc_scope_close(m, scope);
  return head;
}

static bool chain_intact(const node *n, unsigned length, uint64_t base) {
  for (unsigned i = 0; i < length; i++, n = n->left)
    if (!n || n->value != base + i)
      return false;
  return n == NULL;
}

/* ---- drain callbacks ---- */

#define MAX_SEEN 8192
typedef struct drained {
  size_t count;
  uintptr_t cookies[MAX_SEEN];
  void *objects[MAX_SEEN];
} drained;

static void record(ugc_mutator *mutator, void *obj, void **slot, void *cookie, void *data) {
  drained *d = data;
  CHECK(mutator == m);
  CHECK(*slot == obj);
  if (d->count < MAX_SEEN) {
    d->cookies[d->count] = (uintptr_t)cookie;
    d->objects[d->count] = obj;
  }
  d->count++;
}

static void *resurrected_root;

static void test_resurrection(void) {
  static void *slot;
  ugc_global_root_add(heap, &resurrected_root);
  resurrected_root = chain(500, 1000);
  slot = resurrected_root;
  ugc_finalizer_add(heap, &slot, (void *)7);
  collect();
  CHECK_EQ_U64(ugc_finalizers_pending(heap), 0);
  uint64_t digest_alive = ugc_graph_digest(m);

  resurrected_root = NULL; /* only the registration refers to it now */
  churn(20000);
  collect();
  CHECK_EQ_U64(ugc_finalizers_pending(heap), 1);
  for (int i = 0; i < 3; i++) { /* queued objects are roots: kept and moved */
    churn(20000);
    collect();
  }
  ugc_error error;
  CHECK_EQ_U64(ugc_verify(m, &error), 0);
  drained d = {0};
  CHECK_EQ_U64(ugc_finalizers_drain(m, record, &d), 1);
  CHECK_EQ_U64(d.cookies[0], 7);
  CHECK_EQ_U64(ugc_finalizers_pending(heap), 0);
  resurrected_root = d.objects[0];
  CHECK(chain_intact(resurrected_root, 500, 1000));
  CHECK_EQ_U64(ugc_graph_digest(m), digest_alive);
  collect();
  CHECK(chain_intact(resurrected_root, 500, 1000));
  CHECK_EQ_U64(ugc_verify(m, &error), 0);
  /* The registration is over: unreachable again, it is not queued again. */
  resurrected_root = NULL;
  collect();
  CHECK_EQ_U64(ugc_finalizers_pending(heap), 0);
  ugc_global_root_remove(heap, &resurrected_root);
}

static void test_order(void) {
  static void *slots[5];
  void *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;
  ugc_scope scope = ugc_scope_open(m);
  ugc_root(m, &a);
  ugc_root(m, &b);
  ugc_root(m, &c);
  ugc_root(m, &d);
  ugc_root(m, &e);
  /* a -> b (a chain), c alone, a cycle d <-> e; registered in the order a b c d e. */
  b = chain(50, 200);
  a = new_node(100);
  set_left(a, b);
  c = new_node(300);
  d = new_node(400);
  e = new_node(500);
  set_left(d, e);
  set_left(e, d);
  void *objects[5] = {a, b, c, d, e};
  for (uintptr_t i = 0; i < 5; i++) {
    slots[i] = objects[i];
    ugc_finalizer_add(heap, &slots[i], (void *)('a' + i));
  }
  collect();
  CHECK_EQ_U64(ugc_finalizers_pending(heap), 0);
  ugc_scope_close(m, scope);
  churn(5000);
  collect();
  CHECK_EQ_U64(ugc_finalizers_pending(heap), 5);
  churn(5000);
  collect();
  drained *dr = calloc(1, sizeof *dr);
  REQUIRE(dr);
  CHECK_EQ_U64(ugc_finalizers_drain(m, record, dr), 5);
  const char *expected = "abcde";
  for (size_t i = 0; i < 5 && i < dr->count; i++)
    CHECK_EQ_U64(dr->cookies[i], (uintptr_t)expected[i]);
  /* No safepoint since the drain: the objects are where it handed them out. */
  node *fa = dr->objects[0], *fb = dr->objects[1];
  CHECK(fa->value == 100 && fa->left == fb);
  CHECK(chain_intact(fb, 50, 200));
  CHECK(((node *)dr->objects[2])->value == 300);
  node *fd = dr->objects[3], *fe = dr->objects[4];
  CHECK(fd->value == 400 && fe->value == 500 && fd->left == fe && fe->left == fd);
  free(dr);
}

/* Registers its object again the first `again` times it is called. */
static int reregistrations_left;
static size_t reregister_calls;

static void reregister(ugc_mutator *mutator, void *obj, void **slot, void *cookie, void *data) {
  (void)mutator;
  (void)data;
  reregister_calls++;
  CHECK(((node *)obj)->value == 4242);
  if (reregistrations_left-- > 0)
    ugc_finalizer_add(heap, slot, cookie); /* *slot still holds obj: no safepoint since */
}

static void test_reregister(void) {
  static void *slot;
  slot = new_node(4242);
  ugc_finalizer_add(heap, &slot, NULL);
  reregistrations_left = 2;
  size_t total = 0;
  for (int round = 0; round < 6; round++) {
    churn(3000);
    collect();
    total += ugc_finalizers_drain(m, reregister, NULL);
  }
  /* Registered once, then twice more by its finalizer: three finalizations, no more. */
  CHECK_EQ_U64(total, 3);
  CHECK_EQ_U64(reregister_calls, 3);
  CHECK(!ugc_finalizer_remove(heap, &slot));
}

#define MANY 3000
static uint32_t finalized_count[MANY];
static void *many_slots[MANY];
static void *keep; /* a node array holding the reachable ones */

static void count_and_allocate(ugc_mutator *mutator, void *obj, void **slot, void *cookie,
                               void *data) {
  (void)data;
  uintptr_t i = (uintptr_t)cookie;
  CHECK(slot == &many_slots[i]);
  CHECK(((node *)obj)->value == i);
  finalized_count[i]++;
  /* Finalizers may allocate and so collect: some drains collect while draining. */
  for (int k = 0; k < 8; k++)
    REQUIRE(ugc_alloc(mutator, leaf_type, 512));
}

static void test_exactly_once(void) {
  ugc_type_id array_type = fixture_type(heap, "keep", UGC_LAYOUT_REF_ARRAY, 0, NULL, 0);
  ugc_global_root_add(heap, &keep);
  keep = ugc_alloc(m, array_type, MANY * sizeof(void *));
  REQUIRE(keep);
  for (uintptr_t i = 0; i < MANY; i++) {
    node *n = new_node(i);
    ugc_write(m, keep, &((void **)keep)[i], n);
    many_slots[i] = n;
    ugc_finalizer_add(heap, &many_slots[i], (void *)i);
  }
  uint64_t seed = 12345;
  for (int round = 0; round < 6; round++) {
    /* Drop a random third of those still held. */
    for (size_t i = 0; i < MANY; i++) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      if ((seed >> 33) % 3 == 0)
        ugc_write(m, keep, &((void **)keep)[i], NULL);
    }
    churn(4000);
    collect();
    ugc_finalizers_drain(m, count_and_allocate, NULL);
    /* A held object is never finalized, a dropped one at most once. A dropped one may
     * wait for a later collection: with concurrent marking a cycle that began before
     * the drop (in a collection the finalizers caused) keeps it as floating garbage. */
    size_t held_finalized = 0, twice = 0, dropped = 0, dropped_finalized = 0;
    for (size_t i = 0; i < MANY; i++) {
      bool held = ((void **)keep)[i] != NULL;
      held_finalized += held && finalized_count[i] != 0;
      twice += finalized_count[i] > 1;
      dropped += !held;
      dropped_finalized += !held && finalized_count[i] == 1;
    }
    CHECK_EQ_U64(held_finalized, 0);
    CHECK_EQ_U64(twice, 0);
    if (dropped_finalized != dropped)
      printf("round %d: %zu of %zu dropped objects finalized so far\n", round, dropped_finalized,
             dropped);
  }
  for (size_t i = 0; i < MANY; i++)
    ugc_write(m, keep, &((void **)keep)[i], NULL);
  for (int round = 0; round < 3; round++) {
    collect();
    ugc_finalizers_drain(m, count_and_allocate, NULL);
  }
  size_t wrong = 0;
  for (size_t i = 0; i < MANY; i++)
    wrong += finalized_count[i] != 1;
  CHECK_EQ_U64(wrong, 0);
  ugc_global_root_remove(heap, &keep);
}

static void test_remove(void) {
  static void *registered, *queued;
  registered = new_node(1);
  ugc_finalizer_add(heap, &registered, NULL);
  queued = new_node(2);
  ugc_finalizer_add(heap, &queued, NULL);
  CHECK(ugc_finalizer_remove(heap, &registered));
  CHECK(!ugc_finalizer_remove(heap, &registered));
  churn(3000);
  collect();
  CHECK_EQ_U64(ugc_finalizers_pending(heap), 1);
  CHECK(ugc_finalizer_remove(heap, &queued)); /* queued, not yet handed out */
  CHECK_EQ_U64(ugc_finalizers_pending(heap), 0);
  drained d = {0};
  CHECK_EQ_U64(ugc_finalizers_drain(m, record, &d), 0);
  collect();
  CHECK_EQ_U64(ugc_finalizers_pending(heap), 0);
}

int main(void) {
  ugc_config config = fixture_config(64u << 20, 4u << 20);
  heap = itest_heap_create(&config);
  m = fixture_attach(heap);
  node_type = fixture_type(heap, "node", UGC_LAYOUT_FIXED, sizeof(node), node_refs, 2);
  leaf_type = fixture_leaf_type(heap, "leaf");
  test_resurrection();
  test_order();
  test_reregister();
  test_exactly_once();
  test_remove();
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("backend %s, %llu collections, %llu concurrently marked\n", ugc_heap_backend(heap),
         (unsigned long long)stats.cycles, (unsigned long long)stats.mark_concurrent_cycles);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
