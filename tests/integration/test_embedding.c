/* A miniature language runtime embedding uffdgc, the way an interpreter would:
 *  - a Scheme-like heap: pairs, vectors, strings, symbols; values are tagged words (low bit
 *    1 = fixnum, otherwise a reference or NULL), so pairs and vectors use CUSTOM tracing that
 *    reports only the words holding references;
 *  - a symbol table (a bucket array) as a global root; a fake VM value stack reported by a
 *    root enumerator; a weak cache; pinned objects;
 *  - ugc_reserve, then allocation with no safepoint; heap walks; statistics and JSON.
 * Every step is checked against what the interpreter knows it built. Public API only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

typedef uintptr_t value;
#define FIX(n) ((value)(((uintptr_t)(intptr_t)(n) << 1) | 1))
#define FIXVAL(v) ((intptr_t)(v) >> 1)
#define IS_FIX(v) (((v)&1) != 0)
#define IS_REF(v) ((v) != 0 && !IS_FIX(v))

typedef struct pair {
  value car, cdr;
} pair;
typedef struct vector {
  value length;
  value items[];
} vector; /* length is a fixnum */
typedef struct symbol {
  void *name;
  void *next;
  uint64_t hash;
} symbol;

enum { BUCKETS = 64, VM_STACK = 4096, NSYMBOLS = 300, LIST_LEN = 1000 };

static ugc_heap *heap;
static ugc_mutator *m;
static ugc_type_id t_pair, t_vector, t_string, t_symbol, t_table;
static void *symbol_table; /* global root */
static value vm[VM_STACK];
static int sp;

/* ---- tracing ---------------------------------------------------------------------------- */

static void trace_value(ugc_tracer *tracer, value *slot) {
  if (IS_REF(*slot))
    ugc_trace_slot(tracer, (void **)slot);
}

static void trace_pair(void *obj, size_t bytes, ugc_tracer *tracer) {
  (void)bytes;
  trace_value(tracer, &((pair *)obj)->car);
  trace_value(tracer, &((pair *)obj)->cdr);
}

static void trace_vector(void *obj, size_t bytes, ugc_tracer *tracer) {
  vector *v = (vector *)obj;
  /* Trust the allocation size, not the length word: both agree, but only one is ours. */
  for (size_t i = 0; i < (bytes - sizeof(value)) / sizeof(value); i++)
    trace_value(tracer, &v->items[i]);
}

static void enumerate_vm_stack(ugc_tracer *tracer, void *data) {
  (void)data;
  for (int i = 0; i < sp; i++)
    trace_value(tracer, &vm[i]);
}

/* ---- the interpreter's allocator and primitives ---------------------------------------- */

static void push(value v) {
  REQUIRE(sp < VM_STACK);
  vm[sp++] = v;
}
static value pop(void) {
  return vm[--sp];
}

static value cons(value car, value cdr) {
  push(car);
  push(cdr);
  pair *p = (pair *)ugc_alloc(m, t_pair, sizeof(pair));
  REQUIRE(p != NULL);
  /* The arguments were on the VM stack: read them back, they may have moved. */
  value d = pop(), a = pop();
  ugc_write_tagged(m, p, &p->car, a);
  ugc_write_tagged(m, p, &p->cdr, d);
  return (value)p;
}

static value make_string(const char *text) {
  size_t n = strlen(text) + 1;
  char *s = (char *)ugc_alloc(m, t_string, n);
  REQUIRE(s != NULL);
  memcpy(s, text, n);
  return (value)s;
}

static value make_vector(size_t n, value fill) {
  push(fill);
  vector *v = (vector *)ugc_alloc(m, t_vector, sizeof(value) * (n + 1));
  REQUIRE(v != NULL);
  fill = pop();
  v->length = FIX(n);
  for (size_t i = 0; i < n; i++)
    ugc_write_tagged(m, v, &v->items[i], fill);
  return (value)v;
}

static uint64_t hash_text(const char *s) {
  uint64_t h = 1469598103934665603ull;
  while (*s)
    h = (h ^ (unsigned char)*s++) * 1099511628211ull;
  return h;
}

static value intern(const char *text) {
  uint64_t h = hash_text(text);
  void **bucket = &((void **)symbol_table)[h % BUCKETS];
  for (symbol *s = (symbol *)*bucket; s; s = (symbol *)s->next)
    if (s->hash == h && strcmp((const char *)s->name, text) == 0)
      return (value)s;
  push(make_string(text));
  symbol *s = (symbol *)ugc_alloc(m, t_symbol, sizeof(symbol));
  REQUIRE(s != NULL);
  value name = pop();
  s->hash = h;
  ugc_write(m, s, &s->name, (void *)name);
  bucket = &((void **)symbol_table)[h % BUCKETS]; /* the table may have moved */
  ugc_write(m, s, &s->next, *bucket);
  ugc_write(m, symbol_table, bucket, s);
  return (value)s;
}

/* (list 0 1 ... n-1), built back to front. */
static value iota(intptr_t n) {
  value list = 0;
  for (intptr_t i = n - 1; i >= 0; i--)
    list = cons(FIX(i), list);
  return list;
}

static intptr_t sum_list(value list) {
  intptr_t sum = 0;
  for (; IS_REF(list); list = ((pair *)list)->cdr)
    sum += FIXVAL(((pair *)list)->car);
  return sum;
}

/* (reverse list), keeping the list on the VM stack while allocating. */
static value reverse(value list) {
  push(list);
  push(0);
  while (IS_REF(vm[sp - 2])) {
    value cell = cons(((pair *)vm[sp - 2])->car, vm[sp - 1]);
    vm[sp - 1] = cell;
    vm[sp - 2] = ((pair *)vm[sp - 2])->cdr;
  }
  value result = pop();
  pop();
  return result;
}

static void collect(void) {
  uint64_t before = ugc_graph_digest(m);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_collect(m, UGC_COLLECT_FINISH);
  CHECK_EQ_U64(ugc_graph_digest(m), before);
  ugc_error error;
  memset(&error, 0, sizeof error);
  size_t problems = ugc_verify(m, &error);
  if (problems)
    fprintf(stderr, "ugc_verify: %zu problem(s): %s\n", problems, error.message);
  CHECK(problems == 0);
}

/* ---- heap walk -------------------------------------------------------------------------- */

typedef struct counts {
  size_t pairs, vectors, strings, symbols, other;
} counts;

static bool count_object(void *obj, ugc_type_id type, size_t bytes, void *data) {
  counts *c = (counts *)data;
  (void)obj;
  (void)bytes;
  if (type == t_pair)
    c->pairs++;
  else if (type == t_vector)
    c->vectors++;
  else if (type == t_string)
    c->strings++;
  else if (type == t_symbol)
    c->symbols++;
  else
    c->other++;
  return true;
}

/* ---- the program ------------------------------------------------------------------------ */

static void setup(void) {
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = 64u << 20;
  config.heap_initial = 4u << 20; /* small, so the garbage below triggers collections */
  heap = itest_heap_create(&config);
  ugc_error error;
  memset(&error, 0, sizeof error);
  static const uint32_t symbol_refs[] = {0, 8};
  ugc_type_desc pair_desc = {
      .name = "pair", .layout = UGC_LAYOUT_CUSTOM, .fixed_size = sizeof(pair), .trace = trace_pair};
  ugc_type_desc vector_desc = {.name = "vector",
                               .layout = UGC_LAYOUT_CUSTOM,
                               .fixed_size = sizeof(value),
                               .trace = trace_vector};
  ugc_type_desc string_desc = {.name = "string", .layout = UGC_LAYOUT_LEAF};
  ugc_type_desc symbol_desc = {.name = "symbol",
                               .layout = UGC_LAYOUT_FIXED,
                               .fixed_size = sizeof(symbol),
                               .ref_offsets = symbol_refs,
                               .ref_count = 2};
  ugc_type_desc table_desc = {.name = "symbol-table", .layout = UGC_LAYOUT_REF_ARRAY};
  REQUIRE((t_pair = ugc_type_register(heap, &pair_desc, &error)) != 0);
  REQUIRE((t_vector = ugc_type_register(heap, &vector_desc, &error)) != 0);
  REQUIRE((t_string = ugc_type_register(heap, &string_desc, &error)) != 0);
  REQUIRE((t_symbol = ugc_type_register(heap, &symbol_desc, &error)) != 0);
  REQUIRE((t_table = ugc_type_register(heap, &table_desc, &error)) != 0);
  m = ugc_thread_attach(heap, &error);
  REQUIRE(m != NULL);
  ugc_global_root_add(heap, &symbol_table);
  ugc_root_enumerator_add(heap, enumerate_vm_stack, NULL);
  symbol_table = ugc_alloc(m, t_table, BUCKETS * sizeof(void *));
  REQUIRE(symbol_table != NULL);
}

/* Symbols: interning is idempotent and survives collections (table is a global root). */
static void test_symbols(void) {
  char name[32];
  for (int i = 0; i < NSYMBOLS; i++) {
    snprintf(name, sizeof name, "sym-%d", i);
    intern(name);
  }
  collect();
  for (int i = 0; i < NSYMBOLS; i++) {
    snprintf(name, sizeof name, "sym-%d", i);
    symbol *s = (symbol *)intern(name); /* found again, not re-created */
    CHECK(strcmp((const char *)s->name, name) == 0);
  }
  counts c = {0};
  collect();
  ugc_heap_walk(m, count_object, &c);
  CHECK_EQ_U64(c.symbols, NSYMBOLS);
}

/* Lists and vectors on the VM stack survive heavy garbage and keep their fixnums. */
static void test_lists_and_vectors(void) {
  int base = sp;
  push(iota(LIST_LEN));
  push(make_vector(100, FIX(7)));
  for (int i = 0; i < 100; i++) { /* vector of strings: references mixed with fixnums */
    value str = make_string(i % 2 ? "odd" : "even");
    vector *v = (vector *)vm[base + 1];
    ugc_write_tagged(m, v, &v->items[i], i % 3 ? str : FIX(-i));
  }
  for (int round = 0; round < 30; round++) {
    value r = reverse(vm[base]); /* garbage: ~1000 pairs per round */
    CHECK(sum_list(r) == (intptr_t)LIST_LEN * (LIST_LEN - 1) / 2);
    make_vector(500, FIX(round)); /* more garbage */
  }
  collect();
  CHECK(sum_list(vm[base]) == (intptr_t)LIST_LEN * (LIST_LEN - 1) / 2);
  vector *v = (vector *)vm[base + 1];
  CHECK(FIXVAL(v->length) == 100);
  for (int i = 0; i < 100; i++) {
    value item = v->items[i];
    if (i % 3)
      CHECK(IS_REF(item) && strcmp((const char *)item, i % 2 ? "odd" : "even") == 0);
    else
      CHECK(item == FIX(-i));
  }
  counts c = {0};
  ugc_heap_walk(m, count_object, &c);
  CHECK_EQ_U64(c.pairs, LIST_LEN);
  CHECK_EQ_U64(c.vectors, 1);
  sp = base;
}

/* Weak slots: cleared when the referent dies, updated when it moves. */
static void test_weak(void) {
  int base = sp;
  void *weak[8];
  for (int i = 0; i < 8; i++) {
    value cell = cons(FIX(100 + i), 0);
    if (i % 2 == 0)
      push(cell); /* even ones stay alive */
    weak[i] = (void *)cell;
    ugc_weak_add(heap, &weak[i]);
  }
  /* weak[] may already be stale if a collection ran above: the library updates them. */
  collect();
  for (int i = 0; i < 8; i++) {
    if (i % 2 == 0) {
      CHECK(weak[i] == (void *)vm[base + i / 2]);
      CHECK(weak[i] && ((pair *)weak[i])->car == FIX(100 + i));
    } else {
      CHECK(weak[i] == NULL);
    }
    ugc_weak_remove(heap, &weak[i]);
  }
  sp = base;
}

/* Pinned objects keep their address across collections and stay reachable. */
static void test_pinned(void) {
  int base = sp;
  pair *pinned = (pair *)ugc_alloc_pinned(m, t_pair, sizeof(pair));
  REQUIRE(pinned != NULL);
  push((value)pinned);
  ugc_write_tagged(m, pinned, &pinned->car, FIX(42));
  value list = iota(50);
  pinned = (pair *)vm[base]; /* pinned: must be the same address anyway */
  ugc_write_tagged(m, pinned, &pinned->cdr, list);
  for (int i = 0; i < 3; i++) {
    iota(2000); /* garbage */
    collect();
    CHECK(vm[base] == (value)pinned);
    CHECK(pinned->car == FIX(42) && sum_list(pinned->cdr) == 50 * 49 / 2);
  }
  sp = base;
}

/* ugc_reserve, then allocation with raw pointers and no safepoint: nothing may move. */
static void test_reserve(void) {
  enum { N = 5000 };
  ugc_stats stats;
  REQUIRE(ugc_reserve(m, N * ugc_alloc_size(sizeof(pair))));
  ugc_stats_get(heap, &stats);
  uint64_t cycles = stats.cycles;
  pair *head = NULL; /* raw pointer, not rooted: fine while no safepoint is reached */
  for (int i = 0; i < N; i++) {
    pair *p = (pair *)ugc_alloc(m, t_pair, sizeof(pair));
    REQUIRE(p != NULL);
    p->car = FIX(i);
    p->cdr = (value)head;
    head = p;
  }
  ugc_stats_get(heap, &stats);
  CHECK_EQ_U64(stats.cycles, cycles);
  CHECK(sum_list((value)head) == (intptr_t)N * (N - 1) / 2);
  push((value)head);
  collect();
  CHECK(sum_list(vm[sp - 1]) == (intptr_t)N * (N - 1) / 2);
  pop();
}

static void test_stats(unsigned explicit_collections) {
  collect();
  explicit_collections++;
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("embedding: %llu cycles, %llu bytes allocated, %llu live after last, pauses %llu\n",
         (unsigned long long)stats.cycles, (unsigned long long)stats.allocated_bytes,
         (unsigned long long)stats.live_bytes_last, (unsigned long long)stats.pause.count);
  CHECK(stats.cycles >= explicit_collections);
  CHECK(stats.pause.count >= stats.cycles);
  /* Live now: the symbol table, NSYMBOLS symbols and their names. */
  uint64_t live_min = NSYMBOLS * (ugc_alloc_size(sizeof(symbol)) + ugc_alloc_size(8));
  CHECK(stats.live_bytes_last >= live_min);
  CHECK(stats.live_bytes_last < (4u << 20));
  CHECK(stats.live_bytes_peak >= stats.live_bytes_last);
  CHECK(stats.allocated_bytes > stats.live_bytes_peak);
  CHECK(stats.heap_max_bytes > 0);
  CHECK(stats.verify_failures == 0);

  FILE *f = tmpfile();
  REQUIRE(f != NULL);
  ugc_stats_write_json(heap, f);
  long size = ftell(f);
  CHECK(size > 2);
  rewind(f);
  char *text = calloc(1, (size_t)size + 1);
  REQUIRE(text != NULL);
  CHECK(fread(text, 1, (size_t)size, f) == (size_t)size);
  fclose(f);
  const char *p = text;
  while (*p == ' ' || *p == '\n')
    p++;
  CHECK(*p == '{');
  /* One object: braces balance, and the first '{' closes only at the very end. */
  int depth = 0;
  bool closed_early = false;
  for (const char *q = p; *q; q++) {
    depth += *q == '{';
    depth -= *q == '}';
    if (depth == 0 && q[strspn(q + 1, " \n") + 1] != 0)
      closed_early = true;
  }
  CHECK(depth == 0 && !closed_early);
  CHECK(strstr(text, "cycles") != NULL);
  free(text);
}

int main(void) {
  setup();
  test_symbols();
  test_lists_and_vectors();
  test_weak();
  test_pinned();
  test_reserve();
  test_stats(2 + 1 + 1 + 3 + 1);
  ugc_root_enumerator_remove(heap, enumerate_vm_stack, NULL);
  ugc_global_root_remove(heap, &symbol_table);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
