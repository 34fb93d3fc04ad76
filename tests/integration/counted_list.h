/* A list of numbered nodes between garbage, for tests that need the heap to hold data that
 * every compaction moves, and to check it after each collection. */
#ifndef UGC_COUNTED_LIST_H
#define UGC_COUNTED_LIST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "itest.h"

typedef struct counted_node {
  struct counted_node *next;
  uint64_t value; /* its position in the list */
} counted_node;

static inline ugc_type_id counted_list_type(ugc_heap *heap) {
  static const uint32_t refs[] = {0};
  return fixture_type(heap, "counted_node", UGC_LAYOUT_FIXED, sizeof(counted_node), refs, 1);
}

/* Builds `count` nodes into *head (a rooted variable of the caller), each followed by a
 * garbage node, so that a compaction moves the list. */
static inline void counted_list_build(ugc_mutator *m, ugc_type_id type, unsigned count,
                                      counted_node **head) {
  for (unsigned i = 0; i < count; i++) {
    counted_node *n = ugc_alloc(m, type, sizeof(counted_node));
    REQUIRE(n != NULL);
    n->value = count - 1 - i;
    ugc_write(m, n, (void **)&n->next, *head);
    *head = n;
    (void)ugc_alloc(m, type, sizeof(counted_node));
  }
}

/* One full collection and its concurrent compaction, then the verifier and the list from
 * *head (the rooted variable: the collection updates it). */
static inline void counted_list_collect_and_check(ugc_mutator *m, counted_node *const *head,
                                                  unsigned count) {
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_collect(m, UGC_COLLECT_FINISH);
  ugc_error error;
  memset(&error, 0, sizeof error);
  if (ugc_verify(m, &error) != 0) {
    fprintf(stderr, "ugc_verify: %s\n", error.message);
    CHECK(0);
  }
  unsigned seen = 0;
  for (const counted_node *n = *head; n; n = n->next, seen++)
    if (n->value != seen) {
      fprintf(stderr, "node %u holds %" PRIu64 "\n", seen, n->value);
      CHECK(0);
      return;
    }
  CHECK_EQ_U64(seen, count);
}

#endif
