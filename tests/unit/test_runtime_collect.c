/* Collections keep every kind of root and every reference right: handle scopes, global
 * roots, an enumerator, weak slots, tagged references (low-bit tags in objects and roots,
 * a high-bit tag in an enumerator slot), custom-traced objects, reference arrays, large and
 * pinned objects. Objects must actually move, and the graph digest must be unchanged by a
 * collection but change when the graph does. */
#include <string.h>

#include "fixture.h"

#define FIXNUM(n) ((uintptr_t)(n) << 1 | 1u)
#define HIGH_TAG ((uintptr_t)1 << 62)

typedef struct pair {
  uintptr_t car; /* tagged: a fixnum or a reference */
  void *cdr;
} pair;

/* A custom object: a count, then that many references. */
typedef struct vec {
  uint64_t count;
  void *items[];
} vec;

static void trace_vec(void *obj, size_t bytes, ugc_tracer *tracer) {
  vec *v = obj;
  for (uint64_t i = 0; i < v->count; i++)
    ugc_trace_slot(tracer, &v->items[i]);
}

static ugc_type_id pair_type, leaf_type, vec_type, array_type;
static void *enumerated[3];
static int enumerator_calls;

static void enumerate(ugc_tracer *tracer, void *data) {
  enumerator_calls++;
  void **slots = data;
  ugc_trace_slot(tracer, &slots[0]);
  ugc_trace_tagged(tracer, (uintptr_t *)&slots[1], HIGH_TAG);
  ugc_trace_slot(tracer, &slots[0]); /* the same slot twice must still move once */
  ugc_trace_slot(tracer, &slots[2]);
}

static void *make_string(ugc_mutator *m, const char *text) {
  char *s = ugc_alloc(m, leaf_type, strlen(text) + 1);
  memcpy(s, text, strlen(text) + 1);
  return s;
}

static void garbage(ugc_mutator *m, int n) {
  for (int i = 0; i < n; i++)
    ugc_alloc(m, leaf_type, 40);
}

static bool list_ok(void *list, int n) {
  int i = 0;
  for (pair *p = list; p; p = p->cdr, i++)
    if (p->car != FIXNUM(n - 1 - i))
      return false;
  return i == n;
}

int main(void) {
  ugc_config config = fixture_config(64 << 20, 0);
  config.root_tag_mask = 1;
  config.gc_threads = 2;
  config.large_threshold = 8192;
  config.verify = 1;
  config.backend = "stw";
  ugc_error error;
  ugc_heap *heap = fixture_heap(&config);
  REQUIRE(heap);
  CHECK(strcmp(ugc_heap_backend(heap), "stw") == 0);
  uint32_t pair_refs[] = {0, 8};
  pair_type = ugc_type_register(heap,
                                &(ugc_type_desc){.name = "pair",
                                                 .layout = UGC_LAYOUT_FIXED,
                                                 .fixed_size = 16,
                                                 .ref_offsets = pair_refs,
                                                 .ref_count = 2,
                                                 .tag_mask = 1},
                                &error);
  leaf_type = fixture_leaf_type(heap, "str");
  vec_type = ugc_type_register(
      heap, &(ugc_type_desc){.name = "vec", .layout = UGC_LAYOUT_CUSTOM, .trace = trace_vec},
      &error);
  uint32_t array_refs[] = {8};
  array_type = fixture_type(heap, "array", UGC_LAYOUT_REF_ARRAY, 16, array_refs, 1);
  REQUIRE(pair_type && leaf_type && vec_type && array_type);
  ugc_mutator *m = fixture_attach(heap);
  REQUIRE(m);

  garbage(m, 5000); /* so that everything after it slides down */
  ugc_scope scope = ugc_scope_open(m);
  UGC_LOCAL(m, void *, list, NULL);
  UGC_LOCAL(m, void *, tagged_root, NULL);
  UGC_LOCAL(m, void *, vector, NULL);
  UGC_LOCAL(m, void *, array, NULL);
  UGC_LOCAL(m, void *, big, NULL);
  UGC_LOCAL(m, void *, pinned, NULL);
  ugc_root(m, &list); /* rooted twice: must be updated once */
  const int n = 2000;
  for (int i = 0; i < n; i++) {
    pair *p = ugc_alloc(m, pair_type, sizeof(pair));
    p->car = FIXNUM(i);
    ugc_write(m, p, &p->cdr, list);
    list = p;
    garbage(m, 3);
  }
  /* A pair whose car is a tagged reference, rooted through a tagged root slot. */
  pair *holder = ugc_alloc(m, pair_type, sizeof(pair));
  void *hello = make_string(m, "hello");
  ugc_write_tagged(m, holder, &holder->car, (uintptr_t)hello | 1);
  tagged_root = (void *)((uintptr_t)holder | 1);

  static void *global;
  global = make_string(m, "global");
  ugc_global_root_add(heap, &global);
  enumerated[0] = make_string(m, "enum0");
  enumerated[1] = (void *)((uintptr_t)make_string(m, "enum1") | HIGH_TAG);
  enumerated[2] = (void *)(uintptr_t)12345; /* not a reference */
  ugc_root_enumerator_add(heap, enumerate, enumerated);

  vector = ugc_alloc(m, vec_type, sizeof(vec) + 3 * sizeof(void *));
  ((vec *)vector)->count = 3;
  for (int i = 0; i < 3; i++) {
    char text[8];
    snprintf(text, sizeof text, "v%d", i);
    void *s = make_string(m, text);
    ((vec *)vector)->items[i] = s;
  }
  array = ugc_alloc(m, array_type, 16 + 10 * 8);
  for (int i = 0; i < 10; i++) {
    void *s = make_string(m, i % 2 ? "odd" : "even");
    ((void **)array)[2 + i] = s;
  }
  ((void **)array)[1] = vector; /* the fixed part's reference */
  ((uint64_t *)array)[0] = 777; /* data */

  big = ugc_alloc(m, array_type, 16 + 2000 * 8); /* large object holding moving refs */
  for (int i = 0; i < 2000; i++)
    ((void **)big)[2 + i] = make_string(m, "in-large");
  pinned = ugc_alloc_pinned(m, pair_type, sizeof(pair));
  ((pair *)pinned)->cdr = make_string(m, "pinned-cdr");
  ((pair *)pinned)->car = FIXNUM(99);

  static void *weak_live, *weak_dead;
  weak_live = enumerated[0];
  weak_dead = make_string(m, "dies");
  ugc_weak_add(heap, &weak_live);
  ugc_weak_add(heap, &weak_dead);

  void *list_before = list, *global_before = global;
  uint64_t digest = ugc_graph_digest(m);
  CHECK(digest == ugc_graph_digest(m));
  CHECK(ugc_verify(m, &error) == 0);

  for (int cycle = 0; cycle < 5; cycle++) {
    enumerator_calls = 0;
    ugc_collect(m, UGC_COLLECT_FULL);
    CHECK(enumerator_calls >= 2); /* marking and updating */
    CHECK(ugc_graph_digest(m) == digest);
    CHECK(list_ok(list, n));
    garbage(m, 1000);
  }
  CHECK(list != list_before); /* objects moved */
  CHECK(global != global_before);
  CHECK(strcmp(global, "global") == 0);
  CHECK(((uintptr_t)tagged_root & 1) == 1);
  holder = (pair *)((uintptr_t)tagged_root & ~(uintptr_t)1);
  CHECK((holder->car & 1) == 1);
  CHECK(strcmp((char *)(holder->car & ~(uintptr_t)1), "hello") == 0);
  CHECK(strcmp(enumerated[0], "enum0") == 0);
  CHECK(((uintptr_t)enumerated[1] & HIGH_TAG) != 0);
  CHECK(strcmp((char *)((uintptr_t)enumerated[1] & ~HIGH_TAG), "enum1") == 0);
  CHECK((uintptr_t)enumerated[2] == 12345);
  CHECK(((vec *)vector)->count == 3 && strcmp(((vec *)vector)->items[2], "v2") == 0);
  CHECK(((void **)array)[1] == vector && ((uint64_t *)array)[0] == 777);
  CHECK(strcmp(((void **)array)[3], "odd") == 0);
  CHECK(strcmp(((void **)big)[2 + 1999], "in-large") == 0);
  CHECK(strcmp(((pair *)pinned)->cdr, "pinned-cdr") == 0);
  CHECK(weak_live == enumerated[0]);
  CHECK(weak_dead == NULL);

  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  CHECK(stats.cycles == 5);
  CHECK(stats.verify_cycles == 10);
  CHECK_EQ_U64(stats.verify_failures, 0);
  /* Stop-the-world marking stops the world once per cycle (marking and compaction phase);
   * concurrent marking three times: the initial and remark pauses (marking), then the
   * compaction pause. */
  uint64_t concurrent = stats.mark_concurrent_cycles;
  uint64_t retries = stats.mark_remark_retries; /* remark stops given up (see uffdgc.h) */
  CHECK(stats.pause.count == 5 + 2 * concurrent + retries &&
        stats.pause_mark.count == 5 + concurrent + retries && stats.pause_compact.count == 5);
  CHECK(stats.freed_bytes > 0 && stats.live_bytes_last > 0);
  CHECK(stats.compaction.pages_total > 0);

  /* The digest sees changes: data, shape, and tags. */
  ((pair *)((pair *)list)->cdr)->car = FIXNUM(123456);
  uint64_t changed = ugc_graph_digest(m);
  CHECK(changed != digest);
  ((pair *)((pair *)list)->cdr)->car = FIXNUM(n - 2);
  CHECK(ugc_graph_digest(m) == digest);
  void *second = ((pair *)list)->cdr;
  ((pair *)list)->cdr = ((pair *)second)->cdr; /* drop one element */
  CHECK(ugc_graph_digest(m) != digest);
  ((pair *)list)->cdr = second;
  CHECK(ugc_graph_digest(m) == digest);
  holder->car &= ~(uintptr_t)1; /* same target, different tag */
  CHECK(ugc_graph_digest(m) != digest);
  holder->car |= 1;

  /* Unrooting frees: after the scope closes and the roots go, almost nothing is live. */
  ugc_scope_close(m, scope);
  ugc_global_root_remove(heap, &global);
  ugc_root_enumerator_remove(heap, enumerate, enumerated);
  ugc_collect(m, UGC_COLLECT_FULL);
  CHECK(weak_live == NULL);
  ugc_stats_get(heap, &stats);
  CHECK_EQ_U64(stats.live_bytes_last, 0);
  CHECK_EQ_U64(stats.heap_used_bytes, 0);
  CHECK_EQ_U64(stats.verify_failures, 0);
  ugc_weak_remove(heap, &weak_live);
  ugc_weak_remove(heap, &weak_dead);

  FILE *json = tmpfile();
  ugc_stats_write_json(heap, json);
  rewind(json);
  char buffer[4096] = {0};
  CHECK(fread(buffer, 1, sizeof buffer - 1, json) > 0);
  CHECK(strstr(buffer, "\"pause_compact\":{\"count\":6") != NULL);
  fclose(json);

  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
