/* After-marking hooks and relocation hooks, on every backend (tests/matrix.cmake).
 * A table outside the heap (not a root) holds "guarded" objects, each with a child only it
 * references. The after-marking hook resurrects guarded objects that marking did not reach
 * (what finalization needs) and checks in its second round that their children were traced;
 * the relocation hook keeps the table's addresses right. Checked over three collections:
 * objects still rooted (one round, nothing resurrected, the table follows the moves);
 * roots dropped (two rounds, every object resurrected with its child, contents intact, the
 * verifier clean); the hook no longer resurrecting (the objects die: weak slots cleared). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "itest.h"

enum { GUARDED = 32 };

typedef struct node {
  void *child;
  uint64_t id;
} node;

static void *table[GUARDED]; /* not a root: kept right by the hooks */
static bool resurrect = true;
static unsigned rounds, resurrected, children_traced;

static void after_mark(ugc_heap *heap, ugc_tracer *tracer, unsigned round, void *data) {
  (void)data;
  rounds = round;
  for (int i = 0; i < GUARDED; i++) {
    if (round == 1 && resurrect && !ugc_is_marked(heap, table[i])) {
      ugc_trace_slot(tracer, &table[i]);
      CHECK(ugc_is_marked(heap, table[i])); /* marked at once */
      resurrected++;
    }
    if (round == 2 && ugc_is_marked(heap, ((node *)table[i])->child))
      children_traced++;
  }
}

static void relocated(ugc_heap *heap, const ugc_relocation *relocation, void *data) {
  (void)heap;
  (void)data;
  for (int i = 0; i < GUARDED; i++)
    if (table[i])
      table[i] = ugc_new_address(relocation, table[i]);
}

static void *weak[GUARDED];

int main(void) {
  ugc_config config = fixture_config(64u << 20, 8u << 20);
  config.verify = 1;
  ugc_heap *heap = itest_heap_create(&config);
  ugc_mutator *m = fixture_attach(heap);
  static const uint32_t refs[] = {0};
  ugc_type_id t_node = fixture_type(heap, "node", UGC_LAYOUT_FIXED, sizeof(node), refs, 1);
  ugc_type_id t_leaf = fixture_leaf_type(heap, "leaf");
  ugc_after_mark_add(heap, after_mark, NULL);
  ugc_relocation_hook_add(heap, relocated, NULL);

  ugc_scope scope = ugc_scope_open(m);
  void *rooted[GUARDED];
  for (int i = 0; i < GUARDED; i++) {
    rooted[i] = NULL;
    ugc_root(m, &rooted[i]);
  }
  for (int i = 0; i < GUARDED; i++) {
    ugc_alloc(m, t_leaf, 64); /* garbage below: everything moves */
    node *n = ugc_alloc(m, t_node, sizeof(node));
    REQUIRE(n);
    n->id = (uint64_t)i;
    rooted[i] = n;
    node *child = ugc_alloc(m, t_node, sizeof(node));
    REQUIRE(child);
    child->id = 1000u + (uint64_t)i;
    ugc_write(m, rooted[i], &((node *)rooted[i])->child, child);
    table[i] = rooted[i];
    weak[i] = rooted[i];
    ugc_weak_add(heap, &weak[i]);
  }

  /* 1: all rooted. */
  uintptr_t before = (uintptr_t)rooted[0];
  ugc_collect(m, UGC_COLLECT_FULL);
  CHECK_EQ_U64(rounds, 1);
  CHECK_EQ_U64(resurrected, 0);
  CHECK((uintptr_t)rooted[0] != before); /* it moved... */
  for (int i = 0; i < GUARDED; i++)
    CHECK(table[i] == rooted[i]); /* ...and the table followed */

  /* 2: roots dropped; the hook resurrects. */
  for (int i = 0; i < GUARDED; i++)
    rooted[i] = NULL;
  for (int i = 0; i < 1000; i++)
    ugc_alloc(m, t_leaf, 64);
  rounds = 0;
  ugc_collect(m, UGC_COLLECT_FULL);
  CHECK_EQ_U64(rounds, 2);
  CHECK_EQ_U64(resurrected, GUARDED);
  CHECK_EQ_U64(children_traced, GUARDED);
  for (int i = 0; i < GUARDED; i++) {
    CHECK(weak[i] == table[i]); /* resurrected before weak slots were cleared */
    CHECK_EQ_U64(((node *)table[i])->id, (uint64_t)i);
    CHECK_EQ_U64(((node *)((node *)table[i])->child)->id, 1000u + (uint64_t)i);
  }
  ugc_error error;
  CHECK(ugc_verify(m, &error) == 0);

  /* 3: no more resurrection: they die. */
  resurrect = false;
  rounds = 0;
  ugc_collect(m, UGC_COLLECT_FULL);
  CHECK_EQ_U64(rounds, 1);
  for (int i = 0; i < GUARDED; i++) {
    CHECK(weak[i] == NULL);
    table[i] = NULL;
  }
  CHECK(ugc_verify(m, &error) == 0);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("hooks[%s]: %u resurrected, %u children traced in round 2, %llu verify failures\n",
         ugc_heap_backend(heap), resurrected, children_traced,
         (unsigned long long)stats.verify_failures);
  CHECK_EQ_U64(stats.verify_failures, 0);

  for (int i = 0; i < GUARDED; i++)
    ugc_weak_remove(heap, &weak[i]);
  ugc_after_mark_remove(heap, after_mark, NULL);
  ugc_relocation_hook_remove(heap, relocated, NULL);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
