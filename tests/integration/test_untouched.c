/* Untouched spans (compact/untouched.c, backend/handoff.c): fully live LEAF data at the
 * bottom of the heap stays where it is through a compaction, neither read nor written, on
 * the backends that hand the heap off with mremap (stw always; copy and move with
 * config.untouched_concurrent, which this test sets unless UGC_TEST_UNTOUCHED=2 asks for the
 * default, where they must count none); sigsegv and minor build every page, and must count none
 * (and compact in the pause here: a string is pinned).
 *
 * 40 MiB of strings (2-8 KiB, a pattern each) allocated between garbage, a reference node
 * every 2,000 strings and one pinned string: the first compaction packs them, the next ones
 * find spans between the nodes (and around the pinned string's held pages). Each cycle
 * more garbage and fresh strings go on top. While a compaction runs (GC threads started
 * late where fault injection is built in, so the mutator's accesses meet it) the mutator
 * reads every string and checks its pattern, then, in every other cycle, writes one byte of
 * every fifth string: such a write into an untouched page lands in the heap right away, a
 * write into any other page waits for its page; after the compaction every byte must be
 * there. Around each compaction: graph digest unchanged (the write cycles take theirs after
 * the writes), verifier clean, pinned string unmoved, and the pages add up: built by GC
 * threads, by the mutator, or untouched, to pages_total. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

#define STRINGS 8000u
#define NODE_EVERY 2000u
#define CYCLES 6u

static ugc_type_id t_string, t_node, t_table;
static uint8_t written[STRINGS]; /* the byte each string's byte 100 should hold, or 0 */

static size_t string_bytes(unsigned i) {
  return 2048 + (size_t)(i * 2654435761u % 6144);
}

static void fill(unsigned char *s, unsigned i) {
  size_t n = string_bytes(i);
  memset(s, (int)(i & 0xFF), n);
  s[n - 1] = (unsigned char)~i;
}

static size_t bad_strings(void **table) {
  size_t bad = 0;
  for (unsigned i = 0; i < STRINGS; i++) {
    const unsigned char *s = table[i];
    size_t n = string_bytes(i);
    unsigned char at100 = written[i] ? written[i] : (unsigned char)(i & 0xFF);
    bad += s[0] != (unsigned char)(i & 0xFF) || s[n / 2] != (unsigned char)(i & 0xFF) ||
           s[n - 1] != (unsigned char)~i || s[100] != at100;
  }
  return bad;
}

int main(void) {
#ifndef UGC_NO_FAULT_INJECTION
  setenv("UFFDGC_INJECT", "compact.late_start", 1);
#endif
  /* copy and move only with config.untouched_concurrent (default off); UGC_TEST_UNTOUCHED=2
   * runs them with the default, and then they must leave nothing untouched. */
  bool concurrent_too = itest_env_unsigned("UGC_TEST_UNTOUCHED", 1) != 2;
  ugc_config config = fixture_config(256u << 20, 0);
  config.untouched_concurrent = concurrent_too;
  ugc_heap *heap = itest_heap_create(&config);
  ugc_mutator *m = fixture_attach(heap);
  const char *backend = ugc_heap_backend(heap);
  bool leaves_untouched =
      !strcmp(backend, "stw") ||
      (concurrent_too && (!strcmp(backend, "copy") || !strcmp(backend, "move")));
  static const uint32_t node_refs[] = {0};
  t_string = fixture_leaf_type(heap, "string");
  t_node = fixture_type(heap, "node", UGC_LAYOUT_FIXED, 16, node_refs, 1);
  t_table = fixture_type(heap, "table", UGC_LAYOUT_REF_ARRAY, 0, NULL, 0);
  ugc_scope scope = ugc_scope_open(m);
  void **table = NULL, **nodes = NULL;
  ugc_root(m, (void **)&table);
  ugc_root(m, (void **)&nodes);
  table = ugc_alloc(m, t_table, STRINGS * sizeof(void *)); /* large: off the moving space */
  nodes = ugc_alloc(m, t_table, (STRINGS / NODE_EVERY + 1) * sizeof(void *));
  for (unsigned i = 0; i < STRINGS; i++) {
    unsigned char *s = ugc_alloc(m, t_string, string_bytes(i));
    fill(s, i);
    ugc_write(m, table, &table[i], s);
    ugc_alloc(m, t_string, 512 + i % 1024); /* garbage between */
    if (i % NODE_EVERY == NODE_EVERY / 2) { /* a reference in the middle of the strings */
      void **node = ugc_alloc(m, t_node, 16);
      ugc_write(m, node, &node[0], s);
      ugc_write(m, nodes, &nodes[i / NODE_EVERY], node);
    }
  }
  void *pinned = table[STRINGS / 3];
  ugc_pin(m, pinned);

  uint64_t untouched = 0, by_mutator = 0, concurrent_cycles = 0;
  for (unsigned cycle = 0; cycle < CYCLES; cycle++) {
    for (unsigned k = 0; k < 4000; k++) /* more garbage on top */
      ugc_alloc(m, t_string, 256 + k % 2048);
    bool writes = cycle % 2 == 1;
    uint64_t digest = ugc_graph_digest(m);
    ugc_stats before, after;
    ugc_stats_get(heap, &before);
    ugc_collect(m, UGC_COLLECT_FULL); /* returns with the compaction running */
    size_t bad = bad_strings(table);
    if (writes)
      for (unsigned i = cycle; i < STRINGS; i += 5) {
        written[i] = (unsigned char)(0x80 | (cycle << 4) | (i & 0xF));
        ((unsigned char *)table[i])[100] = written[i];
      }
    ugc_collect(m, UGC_COLLECT_FINISH);
    ugc_stats_get(heap, &after);
    bad += bad_strings(table);
    CHECK_EQ_U64(bad, 0);
    if (!writes)
      CHECK_EQ_U64(ugc_graph_digest(m), digest);
    ugc_error error;
    CHECK_EQ_U64(ugc_verify(m, &error), 0);
    CHECK(table[STRINGS / 3] == pinned);
    const ugc_compaction_stats *b = &before.compaction, *a = &after.compaction;
    uint64_t total = a->pages_total - b->pages_total;
    uint64_t cycle_untouched = a->pages_untouched - b->pages_untouched;
    uint64_t cycle_mutator = a->pages_by_mutator - b->pages_by_mutator;
    printf("cycle %u%s: %" PRIu64 " pages, %" PRIu64 " in place, %" PRIu64 " untouched, %" PRIu64
           " built by the mutator\n",
           cycle, writes ? " (writes)" : "", total, a->pages_in_place - b->pages_in_place,
           cycle_untouched, cycle_mutator);
    CHECK(cycle_untouched <= a->pages_in_place - b->pages_in_place);
    if (strcmp(backend, "stw") && a->compactions_in_pause == b->compactions_in_pause)
      CHECK_EQ_U64(a->pages_by_gc - b->pages_by_gc + cycle_mutator + cycle_untouched, total);
    concurrent_cycles +=
        strcmp(backend, "stw") && a->compactions_in_pause == b->compactions_in_pause;
    untouched += cycle_untouched;
    by_mutator += cycle_mutator;
  }
  printf("backend %s: %" PRIu64 " pages untouched, %" PRIu64 " built by the mutator\n", backend,
         untouched, by_mutator);
  if (leaves_untouched)
    CHECK(untouched > 0);
  else
    CHECK_EQ_U64(untouched, 0);
#ifndef UGC_NO_FAULT_INJECTION
  /* The GC threads started late: the reads met the compaction (sigsegv and minor compact
   * in the pause while an object is pinned: docs/api.md, "Pinning"). */
  if (concurrent_cycles)
    CHECK(by_mutator > 0);
#endif
  ugc_unpin(m, pinned);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
