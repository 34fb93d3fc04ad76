/* The tag rule (ugc_tag_rule): with fixnums n << 1 | 1 and untagged pointers, a fixnum whose
 * untagged bits equal an object's address is an immediate everywhere -- in a FIXED slot, a
 * REF_ARRAY element, a CUSTOM slot traced with ugc_trace_value, a handle-scope root and a
 * global root. It survives collections unchanged (while the object it mimics moves) and
 * keeps nothing alive (a weak slot to the object it mimics is cleared). Digests before and
 * after each collection agree, ugc_verify and the library verifier find nothing. Run on
 * every backend by tests/matrix.cmake. Public API only. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "itest.h"

#define FIXNUM_OF_ADDRESS(p) ((uintptr_t)(p) | 1) /* a fixnum n << 1 | 1 with n = p >> 1 */

static const ugc_tag_rule fixnum_rule = {.tag_mask = 1, .pointer_tag_mask = 1, .pointer_tag = 0};

typedef struct pair {
  uintptr_t car, cdr;
} pair;

static void trace_box(void *obj, size_t bytes, ugc_tracer *tracer) {
  (void)bytes;
  ugc_trace_value(tracer, (uintptr_t *)obj, &fixnum_rule);
}

static ugc_type_id register_type(ugc_heap *heap, ugc_type_desc desc) {
  desc.tag_mask = fixnum_rule.tag_mask;
  desc.pointer_tag_mask = fixnum_rule.pointer_tag_mask;
  desc.pointer_tag = fixnum_rule.pointer_tag;
  ugc_error error;
  ugc_type_id id = ugc_type_register(heap, &desc, &error);
  if (!id) {
    fprintf(stderr, "ugc_type_register(%s): %s\n", desc.name, error.message);
    exit(1);
  }
  return id;
}

static void *global_fixnum; /* a global root holding fixnums */
static void *weak_to_dead;  /* weak: the object only fixnums mimic */

int main(void) {
  ugc_config config = fixture_config(64u << 20, 8u << 20);
  config.root_tag_mask = 1;
  config.root_pointer_tag_mask = 1;
  config.root_pointer_tag = 0;
  config.verify = 1;
  ugc_heap *heap = itest_heap_create(&config);
  ugc_mutator *m = fixture_attach(heap);

  static const uint32_t pair_refs[] = {0, 8};
  ugc_type_id t_pair = register_type(heap, (ugc_type_desc){.name = "pair",
                                                           .layout = UGC_LAYOUT_FIXED,
                                                           .fixed_size = sizeof(pair),
                                                           .ref_offsets = pair_refs,
                                                           .ref_count = 2});
  ugc_type_id t_vector =
      register_type(heap, (ugc_type_desc){.name = "vector", .layout = UGC_LAYOUT_REF_ARRAY});
  ugc_type_id t_box = register_type(
      heap, (ugc_type_desc){.name = "box", .layout = UGC_LAYOUT_CUSTOM, .trace = trace_box});
  ugc_type_id t_leaf = fixture_leaf_type(heap, "leaf");
  /* A type with a bad rule is refused. */
  ugc_error error;
  ugc_type_desc bad = {
      .name = "bad", .layout = UGC_LAYOUT_LEAF, .pointer_tag = 2, .pointer_tag_mask = 1};
  CHECK(ugc_type_register(heap, &bad, &error) == 0 && error.code == UGC_ERR_INVALID);

  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, void *, holder, NULL); /* pair: car -> vector, cdr -> box */
  UGC_LOCAL(m, void *, live, NULL);   /* the live leaf the fixnums mimic */
  UGC_LOCAL(m, uintptr_t, root_fixnum, 0);
  ugc_global_root_add(heap, &global_fixnum);
  ugc_weak_add(heap, &weak_to_dead);

  unsigned rounds = 20, moved = 0;
  for (unsigned round = 0; round < rounds; round++) {
    /* Garbage first, so that what follows slides down at the next compaction. */
    for (int i = 0; i < 2000; i++)
      ugc_alloc(m, t_leaf, 48);
    void *dead = ugc_alloc(m, t_leaf, 24);
    memcpy(dead, "dead object", 12);
    weak_to_dead = dead;
    live = ugc_alloc(m, t_leaf, 24); /* after the garbage: it moves at the collection */
    memcpy(live, "live object", 12);
    if (!holder) {
      holder = ugc_alloc(m, t_pair, sizeof(pair));
      void *vector = ugc_alloc(m, t_vector, 4 * sizeof(uintptr_t));
      ugc_write(m, holder, (void **)&((pair *)holder)->car, vector);
      void *box = ugc_alloc(m, t_box, sizeof(uintptr_t));
      ugc_write(m, holder, (void **)&((pair *)holder)->cdr, box);
    }
    pair *p = holder;
    uintptr_t *vector = (uintptr_t *)p->car, *box = (uintptr_t *)p->cdr;
    uintptr_t mimic_live = FIXNUM_OF_ADDRESS(live), mimic_dead = FIXNUM_OF_ADDRESS(dead);
    /* Every kind of slot holds fixnums that look like the live and the dead object. */
    ugc_write_tagged(m, vector, &vector[0], mimic_live);
    ugc_write_tagged(m, vector, &vector[1], mimic_dead);
    ugc_write_tagged(m, vector, &vector[2], (uintptr_t)live); /* a real reference */
    ugc_write_tagged(m, box, box, mimic_dead);
    root_fixnum = mimic_live;
    global_fixnum = (void *)mimic_dead;
    dead = NULL;

    uintptr_t live_before = (uintptr_t)live;
    uint64_t digest_before = ugc_graph_digest(m);
    ugc_collect(m, UGC_COLLECT_FULL);
    uint64_t digest_after = ugc_graph_digest(m);
    CHECK_EQ_U64(digest_after, digest_before);
    CHECK(ugc_verify(m, &error) == 0);

    p = holder;
    vector = (uintptr_t *)p->car;
    box = (uintptr_t *)p->cdr;
    moved += (uintptr_t)live != live_before;
    CHECK(memcmp(live, "live object", 12) == 0);
    CHECK_EQ_U64(vector[2], (uintptr_t)live);
    /* The immediates are exactly what was stored, though `live` moved. */
    CHECK_EQ_U64(vector[0], mimic_live);
    CHECK_EQ_U64(root_fixnum, mimic_live);
    CHECK_EQ_U64(vector[1], mimic_dead);
    CHECK_EQ_U64(*box, mimic_dead);
    CHECK_EQ_U64((uintptr_t)global_fixnum, mimic_dead);
    /* And they kept nothing alive. */
    CHECK(weak_to_dead == NULL);
    if (ugc_test_failures) {
      fprintf(stderr, "round %u failed\n", round);
      break;
    }
  }
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("tag_rule[%s]: %u rounds, the live object moved in %u, %llu verifier runs, %llu "
         "failures\n",
         ugc_heap_backend(heap), rounds, moved, (unsigned long long)stats.verify_cycles,
         (unsigned long long)stats.verify_failures);
  CHECK(moved > 0); /* the test says nothing unless objects moved */
  CHECK_EQ_U64(stats.verify_failures, 0);

  ugc_weak_remove(heap, &weak_to_dead);
  ugc_global_root_remove(heap, &global_fixnum);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
