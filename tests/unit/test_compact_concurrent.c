/* The concurrent-compaction driver without the kernel: a fake mapper copies built pages
 * into the to-space of a synthetic heap and answers EEXIST like UFFDIO_COPY. GC threads and
 * "faulting" threads race over the pages; a late owner is helped; released from-space is
 * poisoned, so a build that read it and got mapped would be caught by the verifier. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compact/concurrent.h"
#include "test.h"
#include "test_compact_heap.h"

static synth_heap heap;
static char *pristine_from;     /* from-space as built: the verifier compares against it */
static _Atomic uint8_t *mapped; /* one flag per to-space page */
static _Atomic uint64_t released_bytes;

static ugc_map_result fake_map(void *ctx, uintptr_t dst, const void *src, size_t bytes,
                               size_t *done) {
  (void)ctx;
  for (size_t offset = 0; offset < bytes; offset += UGC_PAGE_SIZE) {
    size_t page = (dst + offset - heap.base) / UGC_PAGE_SIZE;
    uint8_t expected = 0;
    if (!atomic_compare_exchange_strong(&mapped[page], &expected, 1)) {
      *done = offset;
      return UGC_MAP_EXISTS;
    }
    memcpy((void *)(dst + offset), (const char *)src + offset, UGC_PAGE_SIZE);
  }
  *done = bytes;
  return UGC_MAP_OK;
}

static ugc_map_result fake_map_zero(void *ctx, uintptr_t dst) {
  static const char zeros[UGC_PAGE_SIZE];
  size_t done;
  return fake_map(ctx, dst, zeros, UGC_PAGE_SIZE, &done);
}

static void fake_release(void *ctx, uintptr_t from, size_t bytes) {
  (void)ctx;
  memset((void *)from, 0xDD, bytes); /* anything still reading this would build garbage */
  atomic_fetch_add(&released_bytes, bytes);
}

static const ugc_page_mapper mapper = {
    .map = fake_map,
    .map_zero = fake_map_zero,
    .release_from = fake_release,
};

static ugc_concurrent driver;
static char main_batch[UGC_CONCURRENT_BATCH_PAGES * UGC_PAGE_SIZE];
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
  static _Thread_local char page_buffer[UGC_PAGE_SIZE];
  for (int i = 0; i < 400; i++) { /* faults all over the to-space, far pages first */
    size_t page = driver.states.count - 1 - rng_below(&f->seed, driver.states.count);
    uintptr_t addr = heap.base + page * UGC_PAGE_SIZE + rng_below(&f->seed, UGC_PAGE_SIZE);
    CHECK(ugc_concurrent_resolve_fault(&driver, addr, page_buffer) == 0);
    CHECK(atomic_load(&mapped[page]) == 1);
  }
  return NULL;
}

static void setup(uint64_t seed, size_t heap_bytes) {
  synth_params params = {.heap_bytes = heap_bytes,
                         .live_prob = 0.3,
                         .dense_bytes = 256u << 10,
                         .dense_prob = 0.98,
                         .threshold = 0.95,
                         .shape = SHAPE_MIXED,
                         .local_refs = 1};
  synth_build(&heap, &params, seed);
  mapped = calloc(heap.space_bytes / UGC_PAGE_SIZE, 1);
  pristine_from = malloc(heap.space_bytes);
  REQUIRE(mapped && pristine_from);
  memcpy(pristine_from, heap.from, heap.space_bytes);
  memset(heap.space, 0xA5, heap.space_bytes); /* to-space content is never read */
  REQUIRE(ugc_concurrent_begin(&driver, &heap.plan, heap.delta,
                               heap.plan.page_count * UGC_PAGE_SIZE, &mapper, &stalls) == 0);
  driver.mapper.backend = NULL;
}

static void teardown(void) {
  /* Past new_top the fake to-space still holds 0xA5: zero it, as the kernel would. */
  size_t data = heap.plan.page_count * UGC_PAGE_SIZE;
  memset(heap.space + data, 0, heap.space_bytes - data);
  memcpy(heap.from, pristine_from, heap.space_bytes); /* undo the release poisoning */
  CHECK_EQ_U64(synth_verify(&heap), 0);
  free(pristine_from);
  free((void *)mapped);
  synth_free(&heap);
}

/* GC threads and faulting threads race; every page is built once by its owner. */
static void race(uint64_t seed) {
  setup(seed, seed % 3 == 0 ? 40u << 20 : 3u << 20); /* big: from-space gets released */
  pthread_t gc[2];
  faulter faulters[2] = {{.seed = seed * 3 + 1}, {.seed = seed * 7 + 2}};
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
  for (size_t p = 0; p < heap.plan.page_count; p++)
    CHECK(ugc_page_get(&driver.states, p) == UGC_PAGE_MAPPED);
  teardown();
}

typedef struct help_request {
  size_t page;
} help_request;

static void *helper_main(void *arg) {
  help_request *r = arg;
  static _Thread_local char page_buffer[UGC_PAGE_SIZE];
  CHECK(ugc_concurrent_resolve_fault(&driver, heap.base + r->page * UGC_PAGE_SIZE + 8,
                                     page_buffer) == 0);
  return NULL;
}

/* The owner of a page stalls; the faulting thread builds and maps it after the help
 * timeout; the owner then finds EEXIST, sees HELPED and skips the page (no abort). */
static void late_owner(uint64_t seed) {
  setup(seed, 3u << 20);
  size_t page = heap.plan.page_count / 2;
  REQUIRE(ugc_page_try_claim(&driver.states, page, UGC_PAGE_BY_GC));
  help_request request = {page};
  pthread_t helper;
  REQUIRE(pthread_create(&helper, NULL, helper_main, &request) == 0);
  pthread_join(helper, NULL); /* returns only because it helped: the owner never mapped */
  CHECK_EQ_U64(atomic_load(&driver.counters.pages_helped), 1);
  CHECK(ugc_page_helped(&driver.states, page));
  CHECK(ugc_page_get(&driver.states, page) == UGC_PAGE_CLAIMED);
  char built[UGC_PAGE_SIZE];
  ugc_compact_build_page(&heap.plan, page, heap.delta, built);
  ugc_concurrent_map_built(&driver, page, built, 1);
  CHECK(ugc_page_get(&driver.states, page) == UGC_PAGE_MAPPED);
  CHECK(memcmp(built, heap.space + page * UGC_PAGE_SIZE, UGC_PAGE_SIZE) == 0);
  ugc_concurrent_gc_work(&driver, main_batch);
  ugc_concurrent_finish(&driver);
  teardown();
}

/* The owner of a page has mapped it but not yet said so (descheduled between its ioctl and
 * MAPPED): a faulting thread that helps and finds the page in place (EEXIST) returns at
 * once instead of waiting for the owner. Here the owner says MAPPED only after the faulting
 * thread has returned, so waiting would never end (the alarm fails the test). */
static void mapped_owner_late_to_say_so(uint64_t seed) {
  setup(seed, 3u << 20);
  size_t page = heap.plan.page_count / 3;
  REQUIRE(ugc_page_try_claim(&driver.states, page, UGC_PAGE_BY_GC));
  char built[UGC_PAGE_SIZE];
  ugc_compact_build_page(&heap.plan, page, heap.delta, built);
  ugc_page_set(&driver.states, page, UGC_PAGE_MAPPING);
  size_t done = 0;
  REQUIRE(fake_map(NULL, heap.base + page * UGC_PAGE_SIZE, built, UGC_PAGE_SIZE, &done) ==
          UGC_MAP_OK);
  help_request request = {page};
  pthread_t faulting;
  alarm(60);
  REQUIRE(pthread_create(&faulting, NULL, helper_main, &request) == 0);
  pthread_join(faulting, NULL);
  alarm(0);
  CHECK(ugc_page_get(&driver.states, page) == UGC_PAGE_MAPPING);
  CHECK_EQ_U64(atomic_load(&driver.counters.pages_helped), 0);
  ugc_page_set(&driver.states, page, UGC_PAGE_MAPPED);
  ugc_concurrent_gc_work(&driver, main_batch);
  ugc_concurrent_finish(&driver);
  teardown();
}

/* A helper builds from the from-space of a page that was not MAPPED when it looked; the
 * owner may map it meanwhile. From-space must not be released (or recycled) under such a
 * helper: its build would read garbage headers and could write outside its page buffer.
 * Here a helper is in flight for the whole compaction of a heap big enough to release
 * from-space many times over: nothing may be released until it is gone. */
static void no_release_under_a_helper(uint64_t seed) {
  setup(seed, 40u << 20);
  atomic_store(&released_bytes, 0);
  atomic_fetch_add(&driver.helpers_active, 1); /* announced, between its look and its build */
  ugc_concurrent_gc_work(&driver, main_batch);
  CHECK_EQ_U64(atomic_load(&released_bytes), 0);
  CHECK(atomic_load(&driver.counters.release_deferred) > 0);
  atomic_fetch_sub(&driver.helpers_active, 1);
  ugc_concurrent_finish(&driver);
  teardown();
}

/* A page of ours mapped by somebody who does not own it and is not a helper (EEXIST that
 * no helper explains) would lose writes: the owner stops the process with a message. */
static void stray_page_is_fatal(uint64_t seed) {
  fflush(NULL);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    setup(seed, 3u << 20);
    atomic_store(&mapped[0], 1); /* "mapped" with the garbage (0xA5) already there */
    ugc_concurrent_gc_work(&driver, main_batch);
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

int main(void) {
  ugc_concurrent_init(&driver);
  for (uint64_t seed = 1; seed <= 12; seed++)
    race(seed);
  late_owner(99);
  mapped_owner_late_to_say_so(5);
  stray_page_is_fatal(7);
  printf("released %llu bytes of from-space behind the watermark\n",
         (unsigned long long)atomic_load(&released_bytes));
  CHECK(atomic_load(&released_bytes) > 0);
  no_release_under_a_helper(11);
  ugc_concurrent_destroy(&driver);
  TEST_DONE();
}
