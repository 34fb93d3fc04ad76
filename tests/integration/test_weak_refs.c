/* Weak slots inside movable objects (ugc_type_desc.weak_offsets, cleared_value) and
 * ephemerons (ugc_type_desc.ephemeron), on every backend (tests/matrix.cmake), with both
 * markings. Values follow a tag rule: pointers end in 000, fixnums in 1, FALSE is 0x16.
 * Each round builds, then collects twice:
 *  1. with every object also held by a root: nothing is cleared, weak slots and ephemerons
 *     follow their moving referents, and the graph digest is the same before and after;
 *  2. with those extra roots gone:
 *     - an ephemeron whose key is reachable only through its own value loses key and value
 *       (both become FALSE), and the key and value are collected (a registered weak slot
 *       to each is cleared);
 *     - an ephemeron whose key is reachable only through another live ephemeron's value
 *       keeps its value (the fixpoint);
 *     - an ephemeron with a live key keeps its value, though nothing else holds it;
 *     - a weak slot to a dead object becomes FALSE, one to a live object is updated, one
 *       holding a fixnum is left alone;
 *     ugc_verify finds nothing. Public API only. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "itest.h"

#define FALSE_VALUE ((uintptr_t)0x16)
#define FIXNUM(n) (((uintptr_t)(n) << 1) | 1)

typedef struct ephemeron {
  uintptr_t key, value, id;
} ephemeron;
typedef struct holder {
  uintptr_t strong, weak;
} holder;
typedef struct node {
  uintptr_t next, id;
} node;

static ugc_heap *heap;
static ugc_mutator *m;
static ugc_type_id t_ephemeron, t_holder, t_node;

static ugc_type_id register_type(ugc_type_desc desc) {
  desc.pointer_tag_mask = 7;
  desc.pointer_tag = 0;
  desc.cleared_value = FALSE_VALUE;
  ugc_error error;
  ugc_type_id id = ugc_type_register(heap, &desc, &error);
  if (!id) {
    fprintf(stderr, "ugc_type_register(%s): %s\n", desc.name, error.message);
    exit(1);
  }
  return id;
}

static uintptr_t new_node(uintptr_t next, uintptr_t id) {
  ugc_scope scope = ugc_scope_open(m);
  ugc_root(m, &next);
  node *n = ugc_alloc(m, t_node, sizeof(node));
  REQUIRE(n);
  ugc_write(m, n, (void **)&n->next, (void *)next);
  n->id = FIXNUM(id);
  ugc_scope_close(m, scope);
  return (uintptr_t)n;
}

static uintptr_t new_ephemeron(uintptr_t key, uintptr_t value, uintptr_t id) {
  ugc_scope scope = ugc_scope_open(m);
  ugc_root(m, &key);
  ugc_root(m, &value);
  ephemeron *e = ugc_alloc(m, t_ephemeron, sizeof(ephemeron));
  REQUIRE(e);
  ugc_write(m, e, (void **)&e->key, (void *)key);
  ugc_write(m, e, (void **)&e->value, (void *)value);
  e->id = FIXNUM(id);
  ugc_scope_close(m, scope);
  return (uintptr_t)e;
}

static uintptr_t new_holder(uintptr_t strong, uintptr_t weak) {
  ugc_scope scope = ugc_scope_open(m);
  ugc_root(m, &strong);
  ugc_root(m, &weak);
  holder *h = ugc_alloc(m, t_holder, sizeof(holder));
  REQUIRE(h);
  ugc_write(m, h, (void **)&h->strong, (void *)strong);
  ugc_write(m, h, (void **)&h->weak, (void *)weak);
  ugc_scope_close(m, scope);
  return (uintptr_t)h;
}

static uintptr_t id_of(uintptr_t obj) {
  return ((node *)obj)->id; /* every type here keeps a fixnum id where node does */
}

static void *weak_self_key, *weak_self_value; /* registered weak slots */

int main(void) {
  ugc_config config = fixture_config(64u << 20, 8u << 20);
  config.root_pointer_tag_mask = 7;
  config.verify = 1;
  heap = itest_heap_create(&config);
  m = fixture_attach(heap);

  static const uint32_t two[] = {0, 8}, first[] = {0}, second[] = {8};
  t_ephemeron = register_type((ugc_type_desc){.name = "ephemeron",
                                              .layout = UGC_LAYOUT_FIXED,
                                              .fixed_size = sizeof(ephemeron),
                                              .ref_offsets = two,
                                              .ref_count = 2,
                                              .ephemeron = true});
  t_holder = register_type((ugc_type_desc){.name = "holder",
                                           .layout = UGC_LAYOUT_FIXED,
                                           .fixed_size = sizeof(holder),
                                           .ref_offsets = first,
                                           .ref_count = 1,
                                           .weak_offsets = second,
                                           .weak_count = 1});
  t_node = register_type((ugc_type_desc){.name = "node",
                                         .layout = UGC_LAYOUT_FIXED,
                                         .fixed_size = sizeof(node),
                                         .ref_offsets = first,
                                         .ref_count = 1});
  ugc_type_id t_leaf = fixture_leaf_type(heap, "leaf");

  /* Refused descriptions. */
  ugc_error error;
  ugc_type_desc bad = {.name = "bad",
                       .layout = UGC_LAYOUT_FIXED,
                       .fixed_size = 16,
                       .ref_offsets = first,
                       .ref_count = 1,
                       .ephemeron = true};
  CHECK(ugc_type_register(heap, &bad, &error) == 0 && error.code == UGC_ERR_INVALID);
  bad = (ugc_type_desc){.name = "bad",
                        .layout = UGC_LAYOUT_FIXED,
                        .fixed_size = 16,
                        .ref_offsets = first,
                        .ref_count = 1,
                        .weak_offsets = first,
                        .weak_count = 1};
  CHECK(ugc_type_register(heap, &bad, &error) == 0 && error.code == UGC_ERR_INVALID);
  bad = (ugc_type_desc){.name = "bad",
                        .layout = UGC_LAYOUT_REF_ARRAY,
                        .weak_offsets = first,
                        .weak_count = 1,
                        .fixed_size = 8};
  CHECK(ugc_type_register(heap, &bad, &error) == 0 && error.code == UGC_ERR_INVALID);

  ugc_weak_add(heap, &weak_self_key);
  ugc_weak_add(heap, &weak_self_value);

  unsigned rounds = 10, moved = 0;
  for (unsigned round = 0; round < rounds && !ugc_test_failures; round++) {
    ugc_scope scope = ugc_scope_open(m);
    for (int i = 0; i < 3000; i++) /* garbage below everything: all of it moves */
      ugc_alloc(m, t_leaf, 40);
    /* Self-keyed: key reachable only through the value. */
    UGC_LOCAL(m, uintptr_t, self_key, new_node(0, 100));
    UGC_LOCAL(m, uintptr_t, self_value, new_node(self_key, 101));
    UGC_LOCAL(m, uintptr_t, self_eph, new_ephemeron(self_key, self_value, 102));
    /* Chain: e_outer (live key) -> value holds the key of e_inner. e_inner is rooted last,
     * so that marking (depth-first from the last root) meets it before e_outer's value:
     * only the fixpoint keeps its value. */
    UGC_LOCAL(m, uintptr_t, outer_key, new_node(0, 200));
    UGC_LOCAL(m, uintptr_t, inner_key, new_node(0, 201));
    UGC_LOCAL(m, uintptr_t, inner_value, new_node(0, 202));
    UGC_LOCAL(m, uintptr_t, outer_value, new_node(inner_key, 204));
    UGC_LOCAL(m, uintptr_t, outer_eph, new_ephemeron(outer_key, outer_value, 205));
    UGC_LOCAL(m, uintptr_t, inner_eph, new_ephemeron(inner_key, inner_value, 203));
    /* Weak slots. */
    UGC_LOCAL(m, uintptr_t, weak_dead, new_node(0, 300));
    UGC_LOCAL(m, uintptr_t, weak_live, new_node(0, 301));
    UGC_LOCAL(m, uintptr_t, holder_dead, new_holder(weak_live, weak_dead));
    UGC_LOCAL(m, uintptr_t, holder_live, new_holder(0, weak_live));
    UGC_LOCAL(m, uintptr_t, holder_fixnum, new_holder(0, FIXNUM(12345)));
    weak_self_key = (void *)self_key;
    weak_self_value = (void *)self_value;

    /* 1: everything held; nothing may change but addresses. */
    uintptr_t before = self_eph;
    uint64_t digest_before = ugc_graph_digest(m);
    ugc_collect(m, UGC_COLLECT_FULL);
    CHECK_EQ_U64(ugc_graph_digest(m), digest_before);
    moved += self_eph != before;
    ephemeron *e = (ephemeron *)self_eph;
    CHECK_EQ_U64(e->key, self_key);
    CHECK_EQ_U64(e->value, self_value);
    CHECK_EQ_U64(((holder *)holder_dead)->weak, weak_dead);
    CHECK_EQ_U64(((holder *)holder_live)->weak, weak_live);
    CHECK_EQ_U64((uintptr_t)weak_self_key, self_key);

    /* 2: only the ephemerons, holders and the live keys stay rooted. */
    self_key = self_value = inner_key = inner_value = outer_value = weak_dead = 0;
    ugc_collect(m, UGC_COLLECT_FULL);
    CHECK(ugc_verify(m, &error) == 0);
    e = (ephemeron *)self_eph;
    CHECK_EQ_U64(e->key, FALSE_VALUE);
    CHECK_EQ_U64(e->value, FALSE_VALUE);
    CHECK_EQ_U64(e->id, FIXNUM(102));
    CHECK(weak_self_key == NULL);
    CHECK(weak_self_value == NULL);
    ephemeron *outer = (ephemeron *)outer_eph, *inner = (ephemeron *)inner_eph;
    CHECK_EQ_U64(outer->key, outer_key);
    CHECK(outer->value != FALSE_VALUE && id_of(outer->value) == FIXNUM(204));
    CHECK(outer->value != FALSE_VALUE && ((node *)outer->value)->next == inner->key);
    CHECK(inner->key != FALSE_VALUE && id_of(inner->key) == FIXNUM(201));
    CHECK(inner->value != FALSE_VALUE && id_of(inner->value) == FIXNUM(202));
    CHECK_EQ_U64(((holder *)holder_dead)->weak, FALSE_VALUE);
    CHECK_EQ_U64(((holder *)holder_dead)->strong, weak_live);
    CHECK_EQ_U64(((holder *)holder_live)->weak, weak_live);
    CHECK_EQ_U64(id_of(weak_live), FIXNUM(301));
    CHECK_EQ_U64(((holder *)holder_fixnum)->weak, FIXNUM(12345));
    if (ugc_test_failures)
      fprintf(stderr, "round %u failed\n", round);
    ugc_scope_close(m, scope);
  }
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("weak_refs[%s]: %u rounds, objects moved in %u, %llu verifier runs, %llu failures\n",
         ugc_heap_backend(heap), rounds, moved, (unsigned long long)stats.verify_cycles,
         (unsigned long long)stats.verify_failures);
  CHECK(moved > 0);
  CHECK_EQ_U64(stats.verify_failures, 0);
  ugc_weak_remove(heap, &weak_self_key);
  ugc_weak_remove(heap, &weak_self_value);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
