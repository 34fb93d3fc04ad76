/* Limits and misuse that used to corrupt the heap or hang now fail clearly:
 *  - heap_max bounds the whole heap (moving + non-moving + large objects): large objects
 *    past it make allocation return NULL after calling the OOM handler;
 *  - in checking mode (config.check / UFFDGC_CHECK=1) the inline path refuses an
 *    unregistered type id, a FIXED object smaller than its fixed part, and a mutator used
 *    from another thread; the slow path always does;
 *  - allocation inside a blocking region or a heap-walk callback aborts with a message
 *    (the walk used to hang);
 *  - a weak slot or a global root inside a movable object is refused;
 *  - a call through a detached mutator says on which thread, who detached it and how (the
 *    thread-exit handler, ugc_thread_detach), and a NULL mutator says so;
 *  - a call that waits for the end of a pause, made by the thread running that pause (from
 *    a hook), aborts with a message (it used to wait for itself forever).
 * Each misuse runs in a child process that must abort with the expected message. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "fixture.h"

static ugc_heap *heap;
static ugc_mutator *mutator;
static ugc_type_id pair_type, leaf_type;
static int oom_calls;

static void on_oom(ugc_heap *h, size_t bytes, void *data) {
  (void)h, (void)bytes, (void)data;
  oom_calls++;
}

static void make_heap(size_t heap_max, bool check) {
  setenv("UFFDGC_BACKEND", "stw", 1);
  ugc_config config = fixture_config(heap_max, 0);
  config.check = check;
  config.oom_handler = on_oom;
  heap = fixture_heap(&config);
  REQUIRE(heap);
  static const uint32_t offsets[] = {0, 8};
  pair_type = fixture_type(heap, "pair", UGC_LAYOUT_FIXED, 16, offsets, 2);
  leaf_type = fixture_leaf_type(heap, "bytes");
  REQUIRE(pair_type && leaf_type);
  mutator = fixture_attach(heap);
  REQUIRE(mutator);
}

static void drop_heap(void) {
  ugc_thread_detach(mutator);
  ugc_heap_destroy(heap);
}

/* ---- heap_max ---- */

enum { KEPT_MAX = 2000 };
static void *kept[KEPT_MAX];

static void test_heap_max_bounds_large_objects(void) {
  make_heap((size_t)16 << 20, false);
  oom_calls = 0;
  size_t kept_count = 0;
  for (; kept_count < KEPT_MAX; kept_count++) {
    ugc_global_root_add(heap, &kept[kept_count]);
    kept[kept_count] = ugc_alloc(mutator, leaf_type, (size_t)1 << 20); /* large: 1 MiB */
    if (!kept[kept_count])
      break;
  }
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  printf("heap_max 16 MiB: %zu live large objects of 1 MiB before NULL; large space %llu KiB, "
         "OOM handler called %d time(s)\n",
         kept_count, (unsigned long long)stats.large_used_bytes >> 10, oom_calls);
  CHECK(kept_count < 16);
  CHECK(oom_calls == 1);
  CHECK(stats.heap_used_bytes + stats.nonmoving_used_bytes + stats.large_used_bytes <= (uint64_t)16
                                                                                           << 20);
  /* The heap is intact and usable below the limit. */
  CHECK(ugc_alloc(mutator, pair_type, 16) != NULL);
  CHECK_EQ_U64(ugc_verify(mutator, NULL), 0);
  for (size_t i = 0; i <= kept_count && i < KEPT_MAX; i++)
    ugc_global_root_remove(heap, &kept[i]);
  /* Once they are garbage, a collection makes the room again. */
  CHECK(ugc_alloc(mutator, leaf_type, (size_t)8 << 20) != NULL);
  drop_heap();

  make_heap((size_t)64 << 20, false);
  oom_calls = 0;
  CHECK(ugc_alloc(mutator, leaf_type, (size_t)3 << 30) == NULL); /* 3 GiB with heap_max 64M */
  CHECK(oom_calls == 1);
  CHECK(ugc_alloc_pinned(mutator, leaf_type, (size_t)65 << 20) == NULL);
  CHECK(oom_calls == 2);
  drop_heap();
}

/* ---- misuse: each in a child process ---- */

static void inline_unregistered_type(void *check) {
  make_heap((size_t)16 << 20, check != NULL);
  ugc_alloc(mutator, pair_type, 16); /* a TLAB with room: the inline path would serve */
  ugc_alloc(mutator, 4711, 16);
  fprintf(stderr, "not refused\n");
}

static void inline_short_fixed(void *check) {
  make_heap((size_t)16 << 20, check != NULL);
  ugc_alloc(mutator, pair_type, 16);
  ugc_alloc(mutator, pair_type, 8);
  fprintf(stderr, "not refused\n");
}

static void slow_short_fixed(void *unused) {
  (void)unused;
  make_heap((size_t)16 << 20, false);
  ugc_alloc_slow(mutator, pair_type, 8);
}

static void check_from_environment(void *unused) {
  (void)unused;
  setenv("UFFDGC_CHECK", "1", 1);
  inline_unregistered_type(NULL);
}

static void *alloc_from_other_thread(void *unused) {
  (void)unused;
  ugc_alloc(mutator, pair_type, 16); /* the owner has a TLAB with room */
  fprintf(stderr, "not refused\n");
  return NULL;
}

static void foreign_thread(void *unused) {
  (void)unused;
  make_heap((size_t)16 << 20, true);
  ugc_alloc(mutator, pair_type, 16);
  pthread_t thread;
  REQUIRE(pthread_create(&thread, NULL, alloc_from_other_thread, NULL) == 0);
  pthread_join(thread, NULL);
}

static void alloc_in_blocking_region(void *unused) {
  (void)unused;
  make_heap((size_t)16 << 20, false);
  ugc_alloc(mutator, pair_type, 16); /* a TLAB with room: the inline path would serve */
  ugc_blocking_enter(mutator);
  ugc_alloc(mutator, pair_type, 16);
  fprintf(stderr, "not refused\n");
}

static bool allocating_visitor(void *obj, ugc_type_id type, size_t bytes, void *data) {
  (void)obj, (void)type, (void)bytes, (void)data;
  ugc_alloc(mutator, pair_type, 16);
  return false;
}

static void alloc_in_walk(void *unused) {
  (void)unused;
  make_heap((size_t)16 << 20, false);
  UGC_LOCAL(mutator, void *, keep, ugc_alloc(mutator, pair_type, 16));
  alarm(30); /* it used to hang */
  ugc_heap_walk(mutator, allocating_visitor, NULL);
  fprintf(stderr, "not refused\n");
}

static void weak_slot_in_movable_object(void *global) {
  make_heap((size_t)16 << 20, false);
  void **pair = ugc_alloc(mutator, pair_type, 16);
  if (global)
    ugc_global_root_add(heap, &pair[1]);
  else
    ugc_weak_add(heap, &pair[1]);
  fprintf(stderr, "not refused\n");
}

static void weak_slot_in_pinned_object(void *unused) {
  (void)unused;
  make_heap((size_t)16 << 20, false);
  void **holder = ugc_alloc_pinned(mutator, leaf_type, 16); /* bytes: no strong slot */
  ugc_global_root_add(heap, (void **)&holder);
  holder[0] = ugc_alloc(mutator, leaf_type, 24);
  ugc_weak_add(heap, &holder[0]);
  ugc_collect(mutator, UGC_COLLECT_FULL);
  if (holder[0] != NULL) /* its referent died */
    abort();
  ugc_weak_remove(heap, &holder[0]);
  ugc_global_root_remove(heap, (void **)&holder);
  drop_heap();
}

/* ---- detached mutators ---- */

static ugc_mutator *exited_mutator;
static void *attach_and_exit(void *unused) {
  (void)unused;
  exited_mutator = fixture_attach(heap);
  return NULL; /* no detach: the thread-exit handler does it */
}

static void use_after_exit_detach(void *unused) {
  (void)unused;
  make_heap((size_t)16 << 20, false);
  pthread_t thread;
  REQUIRE(pthread_create(&thread, NULL, attach_and_exit, NULL) == 0);
  pthread_join(thread, NULL);
  ugc_alloc(exited_mutator, pair_type, 16);
  fprintf(stderr, "not refused\n");
}

static void use_after_detach(void *unused) {
  (void)unused;
  make_heap((size_t)16 << 20, false);
  ugc_blocking_enter(mutator);
  ugc_blocking_leave(mutator);
  ugc_thread_detach(mutator);
  ugc_alloc(mutator, pair_type, 16);
  fprintf(stderr, "not refused\n");
}

/* Memory that was never a mutator (or was overwritten with zeroes): no detach on record. */
static void zeroed_mutator(void *unused) {
  (void)unused;
  make_heap((size_t)16 << 20, false);
  ugc_mutator *fake = calloc(1, 4096); /* larger than a mutator: every field reads 0 */
  ugc_alloc(fake, pair_type, 16);
  fprintf(stderr, "not refused\n");
}

static void null_mutator(void *unused) {
  (void)unused;
  make_heap((size_t)16 << 20, false);
  ugc_safepoint_slow(NULL);
  fprintf(stderr, "not refused\n");
}

/* ---- waiting for one's own pause ---- */

static void safepoint_in_hook(ugc_heap *h, ugc_tracer *tracer, unsigned round, void *data) {
  (void)h, (void)tracer, (void)round, (void)data;
  ugc_safepoint_slow(mutator);
}

static void wait_in_own_pause(void *unused) {
  (void)unused;
  make_heap((size_t)16 << 20, false);
  ugc_after_mark_add(heap, safepoint_in_hook, NULL);
  alarm(30); /* it used to hang */
  ugc_collect(mutator, UGC_COLLECT_FULL);
  fprintf(stderr, "not refused\n");
}

int main(void) {
  test_heap_max_bounds_large_objects();

  expect_abort_with(wait_in_own_pause, NULL,
                    "ugc_safepoint: called by the thread running a pause (from a hook or an "
                    "event callback?)");

  expect_abort_with(use_after_exit_detach, NULL,
                    "ugc_alloc: the mutator is detached (called on thread tid ");
  expect_abort_with(use_after_exit_detach, NULL,
                    "in the thread-exit handler (its thread ended attached)");
  expect_abort_with(use_after_detach, NULL,
                    "(this thread) in ugc_thread_detach; its last call before: "
                    "ugc_blocking_leave)");
  expect_abort_with(zeroed_mutator, NULL,
                    "no detach recorded: never attached, or its memory was overwritten");
  expect_abort_with(null_mutator, NULL, "ugc_safepoint: the mutator is NULL (called on thread");

  expect_abort_with(inline_unregistered_type, &heap, "unregistered type id");
  expect_abort_with(check_from_environment, NULL, "unregistered type id");
  expect_abort_with(inline_short_fixed, &heap, "8 bytes for type \"pair\", whose fixed part is 16");
  expect_abort_with(slow_short_fixed, NULL, "whose fixed part is 16");
  expect_abort_with(foreign_thread, NULL, "the mutator belongs to another thread");
  expect_abort_with(alloc_in_blocking_region, NULL, "allocation inside a blocking region");
  expect_abort_with(alloc_in_walk, NULL, "allocation inside a ugc_heap_walk callback");
  expect_abort_with(weak_slot_in_movable_object, NULL,
                    "ugc_weak_add: the slot is inside a movable heap object");
  expect_abort_with(weak_slot_in_movable_object, &heap,
                    "ugc_global_root_add: the slot is inside a movable heap object");

  /* Still allowed: a weak slot in a pinned object. */
  char text[1024];
  int status = child_run(weak_slot_in_pinned_object, NULL, text, sizeof text);
  if (text[0])
    printf("weak slot in a pinned object: %s", text);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  TEST_DONE();
}
