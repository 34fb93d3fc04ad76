/* Ephemerons and weak slots under concurrent marking: a collector thread runs cycle after
 * cycle (a long list makes marking take a while) while a mutator keeps rewriting the keys
 * and values of 64 ephemerons, drops and adds strong references to keys, and reads keys out
 * of ephemerons into strong slots (the barrier must keep such a key, and so the value).
 * After every safepoint the mutator checks each ephemeron against its own record: either
 * cleared (key and value FALSE) while nothing strong held its key, or the key and value it
 * stored, intact (ids), a value's link to its own key included (a key reachable only
 * through its own value). The verifier runs every few thousand operations and at the end.
 * Runs on copy by default, on the other backends through tests/matrix.cmake; skips when
 * marking is not concurrent. At least UGC_TEST_ITERATIONS operations (default 200,000) and
 * until 100 cycles have run. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "fixture.h"

#define FALSE_VALUE ((uintptr_t)0x16)
enum { EPHEMERONS = 64, STRONG = 32, BALLAST = 50000, MIN_CYCLES = 100, BURST = 64, QUIET = 25000 };

typedef struct node {
  uintptr_t next, id;
} node;
typedef struct ephemeron {
  uintptr_t key, value;
} ephemeron;

static ugc_heap *heap;
static ugc_type_id t_node, t_ephemeron, t_array;
static atomic_int mutator_done;
static unsigned iterations = 200000;

static uint64_t rng(uint64_t *state) {
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return *state;
}

static uintptr_t new_node(ugc_mutator *m, uintptr_t next, uintptr_t id) {
  ugc_scope scope = ugc_scope_open(m);
  ugc_root(m, &next);
  node *n = ugc_alloc(m, t_node, sizeof(node));
  REQUIRE(n);
  ugc_write(m, n, (void **)&n->next, (void *)next);
  n->id = id;
  ugc_scope_close(m, scope);
  return (uintptr_t)n;
}

static bool strongly_held(uintptr_t *strong, uintptr_t id) {
  for (int j = 0; j < STRONG; j++)
    if (strong[j] && ((node *)strong[j])->id == id)
      return true;
  return false;
}

static void *mutator_main(void *arg) {
  (void)arg;
  ugc_mutator *m = ugc_thread_attach(heap, NULL);
  REQUIRE(m);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, uintptr_t *, table, ugc_alloc_pinned(m, t_array, EPHEMERONS * 8));
  UGC_LOCAL(m, uintptr_t *, strong, ugc_alloc_pinned(m, t_array, STRONG * 8));
  REQUIRE(table && strong);
  uintptr_t key_id[EPHEMERONS], value_id[EPHEMERONS], next_id = 2;
  for (int i = 0; i < EPHEMERONS; i++) {
    ephemeron *e = ugc_alloc(m, t_ephemeron, sizeof(ephemeron));
    REQUIRE(e);
    e->key = e->value = FALSE_VALUE;
    ugc_write(m, table, (void **)&table[i], e);
    key_id[i] = value_id[i] = 0;
  }
  uint64_t state = 0x9E3779B97F4A7C15u;
  unsigned cleared = 0, promoted = 0, quiet_checks = 0;
  uint64_t first_cycle = ugc_collections(heap);
  unsigned op = 0;
  for (; op < iterations || ugc_collections(heap) - first_cycle < MIN_CYCLES; op++) {
    /* Bursts of operations inside marking: the races are there. */
    if (op % BURST == 0)
      for (long spins = 0; !ugc_fast(m)->marking && spins < 1000000; spins++)
        ugc_safepoint(m);
    int i = (int)(rng(&state) % EPHEMERONS), j = (int)(rng(&state) % STRONG);
    ephemeron *e = (ephemeron *)table[i];
    if (op % QUIET == QUIET - 1) { /* a key held by nothing else must be cleared */
      uintptr_t key = new_node(m, 0, next_id);
      next_id += 2;
      ugc_scope inner = ugc_scope_open(m);
      ugc_root(m, &key);
      uintptr_t value = new_node(m, key, ((node *)key)->id + 1);
      e = (ephemeron *)table[i];
      ugc_write(m, e, (void **)&e->key, (void *)key);
      ugc_write(m, e, (void **)&e->value, (void *)value);
      ugc_scope_close(m, inner);
      uint64_t written_at = ugc_collections(heap);
      while (ugc_collections(heap) < written_at + 2)
        ugc_safepoint(m);
      e = (ephemeron *)table[i];
      if (e->key != FALSE_VALUE)
        fprintf(stderr, "weak_races: ephemeron %d kept its unreachable key through a cycle\n", i);
      CHECK(e->key == FALSE_VALUE && e->value == FALSE_VALUE);
      key_id[i] = value_id[i] = 0;
      quiet_checks++;
      continue;
    }
    switch (rng(&state) % 5) {
    case 0: /* a new strongly held key */
      ugc_write(m, strong, (void **)&strong[j], (void *)new_node(m, 0, next_id));
      next_id += 2;
      break;
    case 1: { /* ephemeron i gets strong[j] (or a fresh key) as key, and a new value */
      uintptr_t key = strong[j] ? strong[j] : new_node(m, 0, (next_id += 2) - 2);
      ugc_scope inner = ugc_scope_open(m);
      ugc_root(m, &key);
      bool self = rng(&state) & 1; /* the value links back to its key */
      uintptr_t id = ((node *)key)->id + 1;
      uintptr_t value = new_node(m, self ? key : 0, id);
      e = (ephemeron *)table[i];
      ugc_write(m, e, (void **)&e->key, (void *)key);
      ugc_write(m, e, (void **)&e->value, (void *)value);
      key_id[i] = ((node *)key)->id;
      value_id[i] = id;
      ugc_scope_close(m, inner);
      break;
    }
    case 2: /* drop a strong reference */
      ugc_write(m, strong, (void **)&strong[j], NULL);
      break;
    case 3: /* read a key out of an ephemeron and hold it strongly */
      if (e->key != FALSE_VALUE) {
        ugc_write(m, strong, (void **)&strong[j], (void *)e->key);
        promoted++;
      }
      break;
    default:
      ugc_safepoint(m);
      break;
    }
    /* Check every ephemeron against the record (a collection may have happened in any
     * allocation or safepoint above). */
    for (int k = 0; k < EPHEMERONS; k++) {
      ephemeron *x = (ephemeron *)table[k];
      if (!key_id[k]) {
        CHECK(x->key == FALSE_VALUE && x->value == FALSE_VALUE);
        continue;
      }
      if (x->key == FALSE_VALUE) {
        CHECK(x->value == FALSE_VALUE);
        CHECK(!strongly_held(strong, key_id[k])); /* cleared while its key was held */
        key_id[k] = value_id[k] = 0;
        cleared++;
        continue;
      }
      node *key = (node *)x->key, *value = (node *)x->value;
      CHECK_EQ_U64(key->id, key_id[k]);
      CHECK_EQ_U64(value->id, value_id[k]);
      CHECK(value->next == 0 || value->next == x->key);
    }
    if (op % 50000 == 0) {
      ugc_error error;
      CHECK(ugc_verify(m, &error) == 0);
    }
    if (ugc_test_failures) {
      fprintf(stderr, "weak_races: failed at operation %u\n", op);
      break;
    }
  }
  printf("weak_races: %u operations, %u ephemerons found cleared in bursts, %u more in quiet "
         "checks, %u keys read out and held\n",
         op, cleared, quiet_checks, promoted);
  CHECK(quiet_checks > 0);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  atomic_store(&mutator_done, 1);
  return NULL;
}

static void *collector_main(void *arg) {
  (void)arg;
  ugc_mutator *m = ugc_thread_attach(heap, NULL);
  REQUIRE(m);
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, uintptr_t, ballast, 0);
  for (int i = 0; i < BALLAST; i++)
    ballast = new_node(m, ballast, 1);
  while (!atomic_load(&mutator_done))
    ugc_collect(m, UGC_COLLECT_FULL);
  ugc_scope_close(m, scope);
  ugc_thread_detach(m);
  return NULL;
}

int main(void) {
  const char *text = getenv("UGC_TEST_ITERATIONS");
  if (text && atoi(text) > 0)
    iterations = (unsigned)atoi(text);
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = 64 << 20;
  if (!getenv("UFFDGC_BACKEND") || !*getenv("UFFDGC_BACKEND"))
    config.backend = "copy";
  ugc_error error;
  heap = ugc_heap_create(&config, &error);
  if (!heap)
    SKIP("no heap: %s", error.message);
  static const uint32_t first[] = {0}, two[] = {0, 8};
  ugc_type_desc node_desc = {.name = "node",
                             .layout = UGC_LAYOUT_FIXED,
                             .fixed_size = sizeof(node),
                             .ref_offsets = first,
                             .ref_count = 1,
                             .pointer_tag_mask = 7,
                             .cleared_value = FALSE_VALUE};
  ugc_type_desc eph_desc = {.name = "ephemeron",
                            .layout = UGC_LAYOUT_FIXED,
                            .fixed_size = sizeof(ephemeron),
                            .ref_offsets = two,
                            .ref_count = 2,
                            .pointer_tag_mask = 7,
                            .ephemeron = true,
                            .cleared_value = FALSE_VALUE};
  ugc_type_desc array_desc = {.name = "array", .layout = UGC_LAYOUT_REF_ARRAY};
  t_node = ugc_type_register(heap, &node_desc, &error);
  t_ephemeron = ugc_type_register(heap, &eph_desc, &error);
  t_array = ugc_type_register(heap, &array_desc, &error);
  REQUIRE(t_node && t_ephemeron && t_array);
  fixture_skip_unless_concurrent_marking(heap);
  pthread_t mutator, collector;
  REQUIRE(pthread_create(&mutator, NULL, mutator_main, NULL) == 0);
  REQUIRE(pthread_create(&collector, NULL, collector_main, NULL) == 0);
  pthread_join(mutator, NULL);
  pthread_join(collector, NULL);
  fixture_verify(heap);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("weak_races[%s]: %llu cycles, %llu marked concurrently, %llu barrier values\n",
         ugc_heap_backend(heap), (unsigned long long)stats.cycles,
         (unsigned long long)stats.mark_concurrent_cycles,
         (unsigned long long)stats.mark_barrier_values);
  CHECK(stats.mark_concurrent_cycles >= MIN_CYCLES);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
