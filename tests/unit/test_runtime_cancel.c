/* An attached thread cancelled (pthread_cancel) while it waits for a pause to end, parked at
 * a safepoint or leaving a blocking region: the pause and every later one must complete, and
 * the thread is detached at its exit. Both waits are condition waits on the safepoint lock,
 * which are cancellation points: a thread cancelled there used to run its exit handlers with
 * the lock held, its own detach then waited for that lock, and every later collection hung.
 *
 * The after-marking hook, which runs in the pause on the collecting thread, cancels the
 * thread while the pause holds it. Each case runs in a child with alarm(): a hang is a
 * failure, not a stuck test. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "fixture.h"

enum victim_case { PARKED_AT_SAFEPOINT, LEAVING_BLOCKING_REGION };

static ugc_heap *heap;
static pthread_t victim;
static enum victim_case which;
static atomic_int victim_ready; /* 1: attached and in place for the pause */
static atomic_int victim_go;    /* blocking case: leave the blocking region now */
static atomic_int victim_tid;
static atomic_int cancels_sent;

/* Whether kernel thread `tid` of this process sleeps (in the condition wait: the pause does
 * not hold the safepoint lock, so nothing else puts the thread to sleep there). */
static bool thread_sleeps(int tid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  bool sleeping = false;
  if (fgets(line, sizeof line, f)) {
    const char *end = strrchr(line, ')'); /* the name may hold spaces */
    sleeping = end && end[1] == ' ' && end[2] == 'S';
  }
  fclose(f);
  return sleeping;
}

static void *victim_main(void *unused) {
  (void)unused;
  ugc_mutator *m = fixture_attach(heap);
  atomic_store(&victim_tid, (int)syscall(SYS_gettid));
  if (which == PARKED_AT_SAFEPOINT) {
    atomic_store(&victim_ready, 1);
    for (;;) { /* polls without any cancellation point of its own between polls */
      ugc_safepoint(m);
      if (atomic_load(&cancels_sent))
        pthread_testcancel(); /* where the cancellation must act: outside the library */
    }
  }
  ugc_blocking_enter(m);
  atomic_store(&victim_ready, 1);
  while (!atomic_load(&victim_go))
    sched_yield();       /* not a cancellation point */
  ugc_blocking_leave(m); /* waits for the pause that cancels us */
  pthread_testcancel();
  ugc_thread_detach(m); /* not reached: the cancellation acts just above */
  return NULL;
}

static void cancel_in_pause(ugc_heap *h, ugc_tracer *tracer, unsigned round, void *data) {
  (void)h, (void)tracer, (void)round, (void)data;
  if (atomic_load(&cancels_sent))
    return;
  pthread_cancel(victim);
  atomic_store(&cancels_sent, 1);
  if (which == PARKED_AT_SAFEPOINT)
    return; /* the world is stopped: the victim is in its wait already */
  atomic_store(&victim_go, 1);
  /* Until the victim sleeps in ugc_blocking_leave's wait (bounded: a loaded machine). */
  for (int ms = 0; ms < 10000 && !thread_sleeps(atomic_load(&victim_tid)); ms++)
    nanosleep(&(struct timespec){0, 1000000}, NULL);
}

static void run_case(void *which_case) {
  which = *(enum victim_case *)which_case;
  alarm(30);
  heap = fixture_heap_sized(32 << 20, 0);
  ugc_type_id leaf = fixture_leaf_type(heap, "leaf");
  ugc_mutator *m = fixture_attach(heap);
  ugc_after_mark_add(heap, cancel_in_pause, NULL);
  REQUIRE(pthread_create(&victim, NULL, victim_main, NULL) == 0);
  while (!atomic_load(&victim_ready))
    sched_yield();
  ugc_collect(m, UGC_COLLECT_FULL); /* the hook cancels the victim inside this pause */
  void *result = NULL;
  ugc_blocking_enter(m);
  pthread_join(victim, &result);
  ugc_blocking_leave(m);
  REQUIRE(atomic_load(&cancels_sent) == 1);
  REQUIRE(result == PTHREAD_CANCELED);
  ugc_after_mark_remove(heap, cancel_in_pause, NULL);
  for (int i = 0; i < 3; i++) { /* later collections are not held up */
    REQUIRE(ugc_alloc(m, leaf, 64));
    ugc_collect(m, UGC_COLLECT_FULL);
  }
  ugc_collect(m, UGC_COLLECT_FINISH);
  REQUIRE(ugc_verify(m, NULL) == 0);
  fprintf(stderr, "collections after the cancellation: done\n");
  ugc_thread_detach(m);
  ugc_heap_destroy(heap); /* no mutator left attached */
}

static void check_case(enum victim_case c, const char *name) {
  char text[4096];
  int status = child_run(run_case, &c, text, sizeof text);
  printf("%s: status 0x%x\n%s", name, status, text);
  bool completed = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
    fprintf(stderr, "%s: hung (killed by the alarm)\n", name);
  CHECK(completed);
  CHECK(strstr(text, "collections after the cancellation: done") != NULL);
  CHECK(strstr(text, "exited while attached") != NULL); /* detached by the exit handler */
}

int main(void) {
  check_case(PARKED_AT_SAFEPOINT, "cancelled while parked at a safepoint");
  check_case(LEAVING_BLOCKING_REGION, "cancelled while leaving a blocking region");
  TEST_DONE();
}
