/* A thread that exits while attached (plain return, or inside a blocking region) is detached
 * at exit, and later collections complete (they used to wait for it forever). A pause that
 * waits for a thread that does not poll names it after config.safepoint_timeout_ms, and one
 * whose thread vanished without its exit handler (a raw exit system call) fails loudly.
 * alarm() turns a hang into a failure. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>

#include "child.h"
#include "fixture.h"

static ugc_heap *heap;
static ugc_type_id pair_type;

static ugc_heap *make_heap(unsigned timeout_ms) {
  ugc_config config = fixture_config(32 << 20, 0);
  config.safepoint_timeout_ms = timeout_ms;
  ugc_heap *h = fixture_heap(&config);
  REQUIRE(h);
  static const uint32_t offsets[] = {0};
  pair_type = fixture_type(h, "pair", UGC_LAYOUT_FIXED, 16, offsets, 1);
  REQUIRE(pair_type);
  return h;
}

static void *exit_attached(void *blocking) {
  ugc_mutator *m = ugc_thread_attach(heap, NULL);
  void *list = NULL;
  ugc_root(m, &list);
  for (int i = 0; i < 1000; i++) {
    void **cell = ugc_alloc(m, pair_type, 16);
    ugc_write(m, cell, &cell[0], list);
    list = cell;
  }
  if (blocking)
    ugc_blocking_enter(m);
  return NULL; /* no ugc_thread_detach */
}

static void test_exit_attached(bool blocking) {
  heap = make_heap(10000);
  pthread_t thread;
  REQUIRE(pthread_create(&thread, NULL, exit_attached, blocking ? &heap : NULL) == 0);
  pthread_join(thread, NULL);
  ugc_mutator *m = ugc_thread_attach(heap, NULL);
  alarm(60);
  for (int i = 0; i < 3; i++)
    ugc_collect(m, UGC_COLLECT_FULL);
  alarm(0);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  CHECK(stats.cycles >= 3);
  CHECK(stats.live_bytes_last == 0); /* the exited thread's roots were dropped */
  CHECK_EQ_U64(ugc_verify(m, NULL), 0);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap); /* no mutator left attached */
}

static atomic_int spinner_state;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *spinner(void *raw_exit) {
  pthread_setname_np(pthread_self(), "spinner");
  ugc_mutator *m = ugc_thread_attach(heap, NULL);
  atomic_store(&spinner_state, 1);
  if (raw_exit)
    syscall(SYS_exit, 0); /* the thread ends, its pthread exit handlers never run */
  double end = now_s() + 2.0;
  while (now_s() < end) /* no safepoint poll */
    ;
  ugc_safepoint(m);
  ugc_thread_detach(m);
  return NULL;
}

static void late_thread(void *raw_exit) {
  heap = make_heap(100);
  pthread_t thread;
  REQUIRE(pthread_create(&thread, NULL, spinner, raw_exit) == 0);
  while (!atomic_load(&spinner_state))
    ;
  ugc_mutator *m = ugc_thread_attach(heap, NULL);
  alarm(60);
  ugc_collect(m, UGC_COLLECT_FULL); /* waits for the spinner */
  ugc_blocking_enter(m);
  pthread_join(thread, NULL);
  ugc_blocking_leave(m);
}

int main(void) {
  test_exit_attached(false);
  test_exit_attached(true);

  char text[2048];
  int status = child_run(late_thread, NULL, text, sizeof text);
  printf("late thread: %s", text);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(strstr(text, "to reach a safepoint") && strstr(text, "\"spinner\""));
  /* and what it last did in the library: it attached, then spun */
  CHECK(strstr(text, "runs outside the library since ugc_thread_attach"));

  expect_abort_with(late_thread, &heap, "has exited while attached");
  TEST_DONE();
}
