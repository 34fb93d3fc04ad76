/* References that do not point at the payload start (ugc_tag_rule.reference_offset), the
 * Scheme48 way: every object's payload starts with the runtime's own header word and a
 * reference is (payload + 8) | 3; fixnums are n << 2 (tag 0), #f is 6 (tag 2). The rule is
 * the same for the roots and every type but one. Over many rounds of two collections each, a
 * graph built of every kind of slot -- FIXED, REF_ARRAY (moving and large), CUSTOM through
 * ugc_trace_value, a pinned object, weak slots in objects, ephemerons, a handle-scope root, a
 * global root, a registered weak slot, a finalizer slot, a root enumerator -- is moved,
 * each reference rewritten to new payload + 8 with its tag kept, each fixnum left exactly
 * as stored (one has the bits of a moving object's untagged reference), each dead referent
 * cleared; the graph digest is the same before and after the collection that slides it
 * down, and the verifiers find nothing. The one other type has untagged slots with offset
 * 24 (NULL 0), one of them to a one-word object, so that its reference points past that
 * object's end. Run on every backend by tests/matrix.cmake. Public API only. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "itest.h"

#define FIX(n) ((uintptr_t)(n) << 2)
#define S48_FALSE ((uintptr_t)6)
#define OWN_HEADER(kind) ((uintptr_t)0x5348000 | (kind)) /* the runtime's header word: data */

static const ugc_tag_rule s48 = {
    .tag_mask = 3, .pointer_tag_mask = 3, .pointer_tag = 3, .reference_offset = 8};
/* Per type: untagged references 24 bytes into the payload (the end of a plain object), NULL 0. */
static const ugc_tag_rule offset_only = {.reference_offset = 24};

enum { LIST_LENGTH = 40, LARGE_ELEMENTS = 600, ROUNDS = 200 };
/* The holder vector's elements. */
enum {
  H_LIST,
  H_BOX,
  H_WEAK_DEAD,
  H_WEAK_LIVE,
  H_EPH_DEAD,
  H_EPH_LIVE,
  H_PLAIN,
  H_PINNED,
  H_LARGE,
  H_MIMIC,
  H_FALSE,
  H_LIVE,
  H_TINY,
  H_COUNT
};

static ugc_heap *heap;
static ugc_mutator *m;
static ugc_type_id t_pair, t_vector, t_box, t_weak, t_eph, t_plain, t_leaf;
static uintptr_t global_ref;           /* global root: the list's second pair */
static uintptr_t weak_dead, weak_live; /* registered weak slots */
static uintptr_t finalized;            /* a finalizer slot */
static uintptr_t enumerated[3];        /* reported by the root enumerator */

static uintptr_t ref_of(const void *payload) {
  return ugc_tag_rewrite(s48.pointer_tag, (uintptr_t)payload, &s48);
}
static uintptr_t *obj_of(uintptr_t value) {
  return (uintptr_t *)ugc_tag_reference(value, &s48);
}

static void trace_box(void *obj, size_t bytes, ugc_tracer *tracer) {
  (void)bytes;
  ugc_trace_value(tracer, (uintptr_t *)obj + 1, &s48);
}

static void enumerate(ugc_tracer *tracer, void *data) {
  (void)data;
  for (size_t i = 0; i < sizeof enumerated / sizeof enumerated[0]; i++)
    ugc_trace_value(tracer, &enumerated[i], &s48);
}

static ugc_type_id register_type(ugc_type_desc desc, const ugc_tag_rule *rule) {
  desc.tag_mask = rule->tag_mask;
  desc.pointer_tag_mask = rule->pointer_tag_mask;
  desc.pointer_tag = rule->pointer_tag;
  desc.reference_offset = rule->reference_offset;
  desc.cleared_value = rule == &s48 ? S48_FALSE : 0;
  ugc_error error;
  ugc_type_id id = ugc_type_register(heap, &desc, &error);
  if (!id) {
    fprintf(stderr, "ugc_type_register(%s): %s\n", desc.name, error.message);
    exit(1);
  }
  return id;
}

static void register_types(void) {
  static const uint32_t two[] = {8, 16}, one[] = {8};
  t_pair = register_type((ugc_type_desc){.name = "pair",
                                         .layout = UGC_LAYOUT_FIXED,
                                         .fixed_size = 24,
                                         .ref_offsets = two,
                                         .ref_count = 2},
                         &s48);
  t_vector = register_type(
      (ugc_type_desc){.name = "vector", .layout = UGC_LAYOUT_REF_ARRAY, .fixed_size = 8}, &s48);
  t_box = register_type(
      (ugc_type_desc){.name = "box", .layout = UGC_LAYOUT_CUSTOM, .trace = trace_box}, &s48);
  t_weak = register_type((ugc_type_desc){.name = "weak",
                                         .layout = UGC_LAYOUT_FIXED,
                                         .fixed_size = 16,
                                         .weak_offsets = one,
                                         .weak_count = 1},
                         &s48);
  t_eph = register_type((ugc_type_desc){.name = "ephemeron",
                                        .layout = UGC_LAYOUT_FIXED,
                                        .fixed_size = 24,
                                        .ref_offsets = two,
                                        .ref_count = 2,
                                        .ephemeron = true},
                        &s48);
  t_plain = register_type((ugc_type_desc){.name = "plain",
                                          .layout = UGC_LAYOUT_FIXED,
                                          .fixed_size = 24,
                                          .ref_offsets = two,
                                          .ref_count = 2},
                          &offset_only);
  t_leaf = register_type((ugc_type_desc){.name = "leaf", .layout = UGC_LAYOUT_LEAF}, &s48);
}

/* The holder and the slots of objects reached from it are re-read after every allocation
 * (it may move them): `holder` is a rooted variable holding a reference. */
static uintptr_t holder;

static uintptr_t *hold(void) {
  return obj_of(holder) + 1;
}

static void store(uintptr_t *obj, size_t word, uintptr_t value) {
  ugc_write_tagged(m, obj, &obj[word], value);
}

/* Allocates an object whose first word is the runtime's header; returns its reference. */
static uintptr_t new_object(ugc_type_id type, size_t bytes, uintptr_t kind) {
  uintptr_t *obj = ugc_alloc(m, type, bytes);
  REQUIRE(obj);
  obj[0] = OWN_HEADER(kind);
  return ref_of(obj);
}

static uintptr_t new_leaf(uint64_t id) {
  uintptr_t ref = new_object(t_leaf, 16, 1);
  obj_of(ref)[1] = id;
  return ref;
}

static uint64_t leaf_id(uintptr_t ref) {
  uintptr_t *obj = obj_of(ref);
  CHECK((ref & 3) == 3 && obj && ugc_object_type(obj) == t_leaf && obj[0] == OWN_HEADER(1));
  return obj && ugc_object_type(obj) == t_leaf ? obj[1] : 0;
}

/* new_leaf into element `index` of the holder (rooted at once). */
static void hold_leaf(size_t index, uint64_t id) {
  uintptr_t leaf = new_leaf(id);
  store(obj_of(holder), 1 + index, leaf);
}

/* An object of `type` whose words 1 and 2 get the values of holder elements a and b
 * (S48_FALSE for none), itself stored into holder element `index`. */
static void hold_object(size_t index, ugc_type_id type, size_t bytes, int a, int b) {
  uintptr_t ref = new_object(type, bytes, 2);
  uintptr_t *obj = obj_of(ref);
  store(obj, 1, a < 0 ? S48_FALSE : hold()[a]);
  if (bytes > 16)
    store(obj, 2, b < 0 ? S48_FALSE : hold()[b]);
  store(obj_of(holder), 1 + index, ref);
}

static void build(uint64_t base) {
  /* Leaves first: the spare elements H_COUNT.. hold them while they are wired up. */
  enum {
    SPARE_DEAD = H_COUNT,
    SPARE_EPH_KEY,
    SPARE_EPH_VALUE,
    SPARE_LIVE_VALUE,
    SPARE_FINAL,
    SPARE_COUNT
  };
  holder = new_object(t_vector, 8 * (1 + SPARE_COUNT), 3);
  for (size_t i = 0; i < SPARE_COUNT; i++)
    store(obj_of(holder), 1 + i, S48_FALSE);
  hold_leaf(H_LIVE, base + 1);
  hold_leaf(SPARE_DEAD, base + 2);
  hold_leaf(SPARE_EPH_KEY, base + 3);
  hold_leaf(SPARE_EPH_VALUE, base + 4);
  hold_leaf(SPARE_LIVE_VALUE, base + 5);
  hold_leaf(SPARE_FINAL, base + 8);
  /* The list: car a leaf or a fixnum, cdr the next pair; built from its end. */
  store(obj_of(holder), 1 + H_LIST, S48_FALSE);
  for (int i = LIST_LENGTH - 1; i >= 0; i--) {
    if (i % 2 == 0)
      hold_leaf(H_BOX, base + 100 + (uint64_t)i); /* H_BOX is free until the end */
    else
      store(obj_of(holder), 1 + H_BOX, FIX(i));
    hold_object(H_LIST, t_pair, 24, H_BOX, H_LIST);
  }
  global_ref = obj_of(hold()[H_LIST])[2];
  hold_leaf(H_BOX, base + 6);
  hold_object(H_BOX, t_box, 16, H_BOX, -1);
  hold_object(H_WEAK_DEAD, t_weak, 16, SPARE_DEAD, -1);
  hold_object(H_WEAK_LIVE, t_weak, 16, H_LIVE, -1);
  hold_object(H_EPH_DEAD, t_eph, 24, SPARE_EPH_KEY, SPARE_EPH_VALUE);
  hold_object(H_EPH_LIVE, t_eph, 24, H_LIVE, SPARE_LIVE_VALUE);
  weak_dead = hold()[SPARE_DEAD];
  finalized = hold()[SPARE_FINAL];
  ugc_finalizer_add(heap, (void **)&finalized, NULL);
  for (int i = SPARE_DEAD; i < SPARE_COUNT; i++)
    store(obj_of(holder), 1 + (size_t)i, FIX(i)); /* the dead ones are unreachable now */
  /* A one-word object: its offset_only reference (payload + 24) is past its end, inside
   * the next object, which dies. */
  store(obj_of(holder), 1 + H_TINY, new_object(t_leaf, 8, 7));
  ugc_alloc(m, t_leaf, 16);
  /* Untagged offset references: plain a -> plain b -> the live leaf and the one-word
   * object; a NULL is 0. */
  uintptr_t *b = ugc_alloc(m, t_plain, 24);
  REQUIRE(b);
  b[0] = OWN_HEADER(4);
  store(obj_of(holder), 1 + H_PLAIN, ref_of(b));
  uintptr_t *a = ugc_alloc(m, t_plain, 24);
  REQUIRE(a);
  a[0] = OWN_HEADER(4);
  b = obj_of(hold()[H_PLAIN]);
  store(a, 1, ugc_tag_rewrite(0, (uintptr_t)b, &offset_only));
  store(b, 1, ugc_tag_rewrite(0, (uintptr_t)obj_of(hold()[H_LIVE]), &offset_only));
  store(b, 2, ugc_tag_rewrite(0, (uintptr_t)obj_of(hold()[H_TINY]), &offset_only));
  store(obj_of(holder), 1 + H_PLAIN, ref_of(a));
  uintptr_t *pinned = ugc_alloc_pinned(m, t_pair, 24);
  REQUIRE(pinned);
  pinned[0] = OWN_HEADER(5);
  store(pinned, 1, hold()[H_LIVE]);
  store(pinned, 2, FIX(7));
  store(obj_of(holder), 1 + H_PINNED, ref_of(pinned));
  store(obj_of(holder), 1 + H_LARGE, new_object(t_vector, 8 * (1 + LARGE_ELEMENTS), 6));
  for (size_t i = 0; i < LARGE_ELEMENTS; i += 50) {
    uintptr_t leaf = new_leaf(base + 1000 + i);
    store(obj_of(hold()[H_LARGE]), 1 + i, leaf);
  }
  for (size_t i = 1; i < LARGE_ELEMENTS; i += 50)
    store(obj_of(hold()[H_LARGE]), 1 + i, FIX(i));
  /* A fixnum with the bits of the live leaf's reference, tag 0: an immediate. */
  store(obj_of(holder), 1 + H_MIMIC, hold()[H_LIVE] & ~(uintptr_t)3);
  store(obj_of(holder), 1 + H_FALSE, S48_FALSE);
  weak_live = hold()[H_LIVE];
  enumerated[0] = hold()[H_LIVE];
  enumerated[1] = hold()[H_MIMIC];
  enumerated[2] = new_leaf(base + 7);
}

static uint64_t drained_id;
static void on_finalize(ugc_mutator *mutator, void *obj, void **slot, void *cookie, void *data) {
  (void)mutator, (void)slot, (void)cookie, (void)data;
  drained_id = leaf_id(ref_of(obj));
}

/* Everything the round built, as it must be after any collection. `mimic` is the untagged
 * reference the live leaf had when it was built. */
static void check_graph(uint64_t base, uintptr_t mimic) {
  uintptr_t *h = hold();
  uintptr_t live = h[H_LIVE];
  CHECK_EQ_U64(leaf_id(live), base + 1);
  uintptr_t list = h[H_LIST];
  for (int i = 0; i < LIST_LENGTH; i++) {
    uintptr_t *pair = obj_of(list);
    REQUIRE((list & 3) == 3 && pair && ugc_object_type(pair) == t_pair);
    CHECK_EQ_U64(pair[0], OWN_HEADER(2));
    if (i == 1)
      CHECK_EQ_U64(global_ref, list);
    if (i % 2 == 0)
      CHECK_EQ_U64(leaf_id(pair[1]), base + 100 + (uint64_t)i);
    else
      CHECK_EQ_U64(pair[1], FIX(i));
    list = pair[2];
  }
  CHECK_EQ_U64(list, S48_FALSE);
  CHECK_EQ_U64(leaf_id(obj_of(h[H_BOX])[1]), base + 6);
  CHECK_EQ_U64(obj_of(h[H_WEAK_LIVE])[1], live);
  CHECK_EQ_U64(obj_of(h[H_EPH_LIVE])[1], live);
  CHECK_EQ_U64(leaf_id(obj_of(h[H_EPH_LIVE])[2]), base + 5);
  uintptr_t *a = obj_of(h[H_PLAIN]);
  uintptr_t *b = (uintptr_t *)ugc_tag_reference(a[1], &offset_only);
  REQUIRE(b && ugc_object_type(b) == t_plain);
  CHECK_EQ_U64(a[1], (uintptr_t)b + 24);
  CHECK_EQ_U64(a[2], 0);
  CHECK_EQ_U64(b[1], (uintptr_t)obj_of(live) + 24);
  CHECK_EQ_U64(b[2], (uintptr_t)obj_of(h[H_TINY]) + 24);
  CHECK_EQ_U64(obj_of(h[H_TINY])[0], OWN_HEADER(7));
  uintptr_t *pinned = obj_of(h[H_PINNED]);
  CHECK_EQ_U64(pinned[1], live);
  CHECK_EQ_U64(pinned[2], FIX(7));
  uintptr_t *large = obj_of(h[H_LARGE]) + 1;
  for (size_t i = 0; i < LARGE_ELEMENTS; i += 50) {
    CHECK_EQ_U64(leaf_id(large[i]), base + 1000 + i);
    CHECK_EQ_U64(large[i + 1], FIX(i + 1));
  }
  CHECK_EQ_U64(h[H_MIMIC], mimic);
  CHECK_EQ_U64(h[H_FALSE], S48_FALSE);
  CHECK_EQ_U64(weak_live, live);
  CHECK_EQ_U64(enumerated[0], live);
  CHECK_EQ_U64(enumerated[1], mimic);
  CHECK_EQ_U64(leaf_id(enumerated[2]), base + 7);
}

int main(void) {
  ugc_config config = fixture_config(64u << 20, 8u << 20);
  config.root_tag_mask = s48.tag_mask;
  config.root_pointer_tag_mask = s48.pointer_tag_mask;
  config.root_pointer_tag = s48.pointer_tag;
  config.root_reference_offset = s48.reference_offset;
  config.large_threshold = 4096;
  config.verify = 1;
  heap = itest_heap_create(&config);
  m = fixture_attach(heap);
  register_types();
  ugc_root_enumerator_add(heap, enumerate, NULL);
  ugc_global_root_add(heap, (void **)&global_ref);
  ugc_weak_add(heap, (void **)&weak_dead);
  ugc_weak_add(heap, (void **)&weak_live);

  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, uintptr_t, previous, S48_FALSE);
  ugc_root(m, &holder);
  unsigned moved = 0, rounds = 0;
  ugc_error error;
  for (unsigned round = 0; round < ROUNDS && !ugc_test_failures; round++, rounds++) {
    uint64_t base = (uint64_t)round << 20;
    previous = holder; /* kept through collection 1, below this round's graph */
    for (int i = 0; i < 1000; i++)
      ugc_alloc(m, t_leaf, 40); /* garbage below this round's graph */
    build(base);
    uintptr_t mimic = hold()[H_MIMIC];
    /* Collection 1: the dead referents go, the finalizer's object is queued. */
    ugc_collect(m, UGC_COLLECT_FULL);
    CHECK_EQ_U64(obj_of(hold()[H_WEAK_DEAD])[1], S48_FALSE);
    CHECK_EQ_U64(obj_of(hold()[H_EPH_DEAD])[1], S48_FALSE);
    CHECK_EQ_U64(obj_of(hold()[H_EPH_DEAD])[2], S48_FALSE);
    CHECK_EQ_U64(weak_dead, 0);
    drained_id = 0;
    CHECK_EQ_U64(ugc_finalizers_drain(m, on_finalize, NULL), 1);
    CHECK_EQ_U64(drained_id, base + 8);
    check_graph(base, mimic);
    /* Collection 2: the previous round's graph, below this one, dies; this one slides. */
    uintptr_t before = holder;
    previous = S48_FALSE;
    uint64_t digest_before = ugc_graph_digest(m);
    ugc_collect(m, UGC_COLLECT_FULL);
    CHECK_EQ_U64(ugc_graph_digest(m), digest_before);
    CHECK(ugc_verify(m, &error) == 0);
    moved += holder != before;
    check_graph(base, mimic);
    if (ugc_test_failures)
      fprintf(stderr, "round %u failed\n", round);
  }
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("reference_offset[%s]: %u rounds, %llu collections, the graph slid in %u, %llu "
         "verifier runs, %llu failures\n",
         ugc_heap_backend(heap), rounds, (unsigned long long)stats.cycles, moved,
         (unsigned long long)stats.verify_cycles, (unsigned long long)stats.verify_failures);
  CHECK(moved >= rounds / 2); /* the test says nothing unless references were rewritten */
  CHECK_EQ_U64(stats.verify_failures, 0);

  ugc_weak_remove(heap, (void **)&weak_live);
  ugc_weak_remove(heap, (void **)&weak_dead);
  ugc_global_root_remove(heap, (void **)&global_ref);
  ugc_root_enumerator_remove(heap, enumerate, NULL);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
