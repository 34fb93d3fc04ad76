/* The concurrent-compaction driver in its in-place mode (ugc_page_mapper.build_base, the
 * sigsegv backend) without the kernel: pages are built into an alias buffer and "published"
 * by a fake mapper that copies them into the to-space and counts how often each page was
 * published. GC threads and faulting threads race; in some runs the mapper asks for merged
 * runs, or fails every publication of a run that would split a protected mapping with a
 * transient error (ENOMEM from mprotect, out of mappings). Checked: every page published
 * exactly once (claims are exclusive: nobody helps), every extended run published next to
 * a page published before, and the compacted heap verifies. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "compact/concurrent.h"
#include "test.h"
#include "test_compact_heap.h"

static synth_heap heap;
static char *alias;                /* where pages are built */
static _Atomic uint8_t *published; /* times each page was published */
static _Atomic uint64_t splitting_refusals;
static bool merge_always, refuse_splits;

static bool is_published(size_t page) {
  return atomic_load(&published[page]) != 0;
}

static ugc_map_result fake_publish(void *ctx, uintptr_t dst, const void *src, size_t bytes,
                                   size_t *done) {
  (void)ctx;
  *done = 0;
  size_t first = (dst - heap.base) / UGC_PAGE_SIZE, count = bytes / UGC_PAGE_SIZE;
  CHECK(src == alias + first * UGC_PAGE_SIZE);
  /* A run with a protected page on each side would split a mapping in three. */
  bool splits = first > 0 && !is_published(first - 1) && first + count < heap.plan.page_count &&
                !is_published(first + count);
  if (refuse_splits && splits) {
    atomic_fetch_add(&splitting_refusals, 1);
    return UGC_MAP_RETRY;
  }
  memcpy((void *)dst, src, bytes);
  for (size_t i = 0; i < count; i++)
    atomic_fetch_add(&published[first + i], 1);
  *done = bytes;
  return UGC_MAP_OK;
}

static ugc_map_result fake_zero(void *ctx, uintptr_t dst) {
  (void)ctx;
  (void)dst;
  return UGC_MAP_EXISTS;
}

static void fake_release(void *ctx, uintptr_t from, size_t bytes) {
  (void)ctx;
  memset((void *)from, 0xDD, bytes);
}

static bool fake_merge_runs(void *ctx) {
  (void)ctx;
  return merge_always;
}

static ugc_concurrent driver;
static ugc_histogram stalls;

static void *gc_thread(void *arg) {
  (void)arg;
  static _Thread_local char batch[UGC_CONCURRENT_BATCH_PAGES * UGC_PAGE_SIZE];
  ugc_concurrent_gc_work(&driver, batch);
  return NULL;
}

typedef struct faulter {
  pthread_t thread;
  uint64_t seed;
} faulter;

static void *fault_thread(void *arg) {
  faulter *f = arg;
  for (int i = 0; i < 300; i++) { /* random pages, far ones first: most publish alone */
    size_t page = driver.states.count - 1 - rng_below(&f->seed, driver.states.count);
    uintptr_t addr = heap.base + page * UGC_PAGE_SIZE + rng_below(&f->seed, UGC_PAGE_SIZE);
    CHECK(ugc_concurrent_resolve_fault(&driver, addr, NULL) == 0);
    CHECK(is_published(page));
  }
  return NULL;
}

static void race(uint64_t seed) {
  merge_always = seed % 3 == 1;
  refuse_splits = seed % 3 == 2;
  synth_params params = {.heap_bytes = seed % 4 == 0 ? 24u << 20 : 3u << 20,
                         .live_prob = 0.3,
                         .dense_bytes = 256u << 10,
                         .dense_prob = 0.98,
                         .threshold = 0.95,
                         .shape = SHAPE_MIXED,
                         .local_refs = 1};
  synth_build(&heap, &params, seed);
  size_t pages = heap.space_bytes / UGC_PAGE_SIZE;
  published = calloc(pages, 1);
  alias = malloc(heap.space_bytes);
  char *pristine_from = malloc(heap.space_bytes);
  REQUIRE(published && alias && pristine_from);
  memcpy(pristine_from, heap.from, heap.space_bytes);
  memset(heap.space, 0xA5, heap.space_bytes);
  ugc_page_mapper mapper = {.map = fake_publish,
                            .map_zero = fake_zero,
                            .release_from = fake_release,
                            .build_base = alias,
                            .merge_runs = fake_merge_runs};
  REQUIRE(ugc_concurrent_begin(&driver, &heap.plan, heap.delta,
                               heap.plan.page_count * UGC_PAGE_SIZE, &mapper, &stalls) == 0);
  uint64_t refusals_before = atomic_load(&splitting_refusals); /* counted over all seeds */
  pthread_t gc[2];
  faulter faulters[2] = {{.seed = seed * 5 + 1}, {.seed = seed * 11 + 3}};
  for (int i = 0; i < 2; i++)
    REQUIRE(pthread_create(&faulters[i].thread, NULL, fault_thread, &faulters[i]) == 0);
  for (int i = 0; i < 2; i++)
    REQUIRE(pthread_create(&gc[i], NULL, gc_thread, NULL) == 0);
  for (int i = 0; i < 2; i++) {
    pthread_join(gc[i], NULL);
    pthread_join(faulters[i].thread, NULL);
  }
  ugc_concurrent_finish(&driver);
  ugc_concurrent_counters *k = &driver.counters;
  CHECK_EQ_U64(atomic_load(&k->pages_by_gc) + atomic_load(&k->pages_by_mutator),
               heap.plan.page_count);
  CHECK_EQ_U64(atomic_load(&k->pages_helped), 0);
  for (size_t p = 0; p < heap.plan.page_count; p++) {
    CHECK(ugc_page_get(&driver.states, p) == UGC_PAGE_MAPPED);
    CHECK(atomic_load(&published[p]) == 1);
  }
  if (merge_always || (refuse_splits && atomic_load(&splitting_refusals) > refusals_before))
    CHECK(atomic_load(&k->runs_extended) > 0);
  size_t data = heap.plan.page_count * UGC_PAGE_SIZE;
  memset(heap.space + data, 0, heap.space_bytes - data);
  memcpy(heap.from, pristine_from, heap.space_bytes);
  CHECK_EQ_U64(synth_verify(&heap), 0);
  free(pristine_from);
  free(alias);
  free((void *)published);
  synth_free(&heap);
}

int main(void) {
  ugc_concurrent_init(&driver);
  for (uint64_t seed = 1; seed <= 12; seed++)
    race(seed);
  printf("in-place: %llu publications refused for splitting a mapping, then extended\n",
         (unsigned long long)atomic_load(&splitting_refusals));
  CHECK(atomic_load(&splitting_refusals) > 0);
  ugc_concurrent_destroy(&driver);
  TEST_DONE();
}
