/* Shared heap set-up for the tests: a config with a given size, a heap that is created or
 * the test skips (backend not offered here, exit 77 with the reason) or fails with the
 * library's message, a fixed-layout type that must register, and an attached mutator.
 * Public API only; the checks a test makes stay in the test. */
#ifndef UGC_FIXTURE_H
#define UGC_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "uffdgc.h"

/* The library defaults with the heap limit and the initial commit set (0 keeps a default). */
static inline ugc_config fixture_config(size_t heap_max, size_t heap_initial) {
  ugc_config config;
  ugc_config_init(&config);
  if (heap_max)
    config.heap_max = heap_max;
  if (heap_initial)
    config.heap_initial = heap_initial;
  return config;
}

/* Creates the heap; skips when the backend is unavailable here, exits 1 on any other error. */
static inline ugc_heap *fixture_heap(const ugc_config *config) {
  ugc_error error;
  memset(&error, 0, sizeof error);
  ugc_heap *heap = ugc_heap_create(config, &error);
  if (!heap && error.code == UGC_ERR_UNAVAILABLE) {
    const char *backend = getenv("UFFDGC_BACKEND");
    SKIP("backend %s: %s", backend && *backend ? backend : "auto", error.message);
  }
  if (!heap) {
    fprintf(stderr, "ugc_heap_create failed (code %d): %s\n", (int)error.code, error.message);
    exit(1);
  }
  return heap;
}

/* A heap of heap_max bytes with heap_initial committed (0 keeps a default). */
static inline ugc_heap *fixture_heap_sized(size_t heap_max, size_t heap_initial) {
  ugc_config config = fixture_config(heap_max, heap_initial);
  return fixture_heap(&config);
}

/* Registers a type of the given layout (FIXED or REF_ARRAY) with its reference slots in the
 * fixed part; the test fails if the library refuses it. */
static inline ugc_type_id fixture_type(ugc_heap *heap, const char *name, ugc_layout layout,
                                       size_t fixed_size, const uint32_t *ref_offsets,
                                       uint32_t ref_count) {
  ugc_error error;
  memset(&error, 0, sizeof error);
  ugc_type_desc desc = {.name = name,
                        .layout = layout,
                        .fixed_size = fixed_size,
                        .ref_offsets = ref_offsets,
                        .ref_count = ref_count};
  ugc_type_id id = ugc_type_register(heap, &desc, &error);
  if (!id) {
    fprintf(stderr, "ugc_type_register(%s) failed: %s\n", name, error.message);
    exit(1);
  }
  return id;
}

/* A leaf type (no references), for byte payloads. */
static inline ugc_type_id fixture_leaf_type(ugc_heap *heap, const char *name) {
  return fixture_type(heap, name, UGC_LAYOUT_LEAF, 0, NULL, 0);
}

/* Attaches the calling thread as a mutator; the test fails if it cannot. */
static inline ugc_mutator *fixture_attach(ugc_heap *heap) {
  ugc_error error;
  memset(&error, 0, sizeof error);
  ugc_mutator *m = ugc_thread_attach(heap, &error);
  if (!m) {
    fprintf(stderr, "ugc_thread_attach failed: %s\n", error.message);
    exit(1);
  }
  return m;
}

/* Skips the test (the heap destroyed) unless this heap marks concurrently: a first full
 * collection must count as a concurrent cycle (UFFDGC_CONCURRENT_MARK=0 turns it off). */
static inline void fixture_skip_unless_concurrent_marking(ugc_heap *heap) {
  ugc_mutator *m = fixture_attach(heap);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  ugc_thread_detach(m);
  if (!stats.mark_concurrent_cycles) {
    ugc_heap_destroy(heap);
    SKIP("concurrent marking is off (UFFDGC_CONCURRENT_MARK=0)");
  }
}

/* Runs the library's verifier from a thread attached for it; the test fails on a report. */
static inline void fixture_verify(ugc_heap *heap) {
  ugc_error error;
  memset(&error, 0, sizeof error);
  ugc_mutator *m = fixture_attach(heap);
  if (ugc_verify(m, &error) != 0) {
    fprintf(stderr, "ugc_verify: %s\n", error.message);
    ugc_test_failures++;
  }
  ugc_thread_detach(m);
}

#endif
