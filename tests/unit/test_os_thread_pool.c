/* The thread skeleton shared by the worker pool and the compaction threads: every started
 * thread runs every job it is kicked for exactly once (wait), a closed job is never run
 * after ugc_thread_pool_close returns, the last thread's callback sees each job once with
 * its generation, CPU time is accounted, threads start once per process, and a fork child
 * starts its own. An outside thread joins only a job in progress, and the job ends (wait,
 * on_last) only after it. The worker pool on top of it runs every index exactly once. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/thread_pool.h"
#include "runtime/workers.h"
#include "test.h"

enum { THREADS = 3, JOBS = 300 };

static _Atomic unsigned runs[THREADS];
static _Atomic unsigned lasts;
static _Atomic uint64_t last_generation;
static _Atomic bool job_open;
static _Atomic unsigned late_runs; /* runs of a job after its close */
static _Atomic bool spin;
static _Atomic bool hold; /* the pool's threads stay in the job while set */

static void body(void *data, unsigned index) {
  (void)data;
  if (!atomic_load(&job_open))
    atomic_fetch_add(&late_runs, 1);
  atomic_fetch_add(&runs[index], 1);
  while (atomic_load(&hold))
    sched_yield();
  if (atomic_load(&spin)) { /* some CPU time to account */
    uint64_t until = ugc_thread_cpu_ns() + 2000000;
    while (ugc_thread_cpu_ns() < until) {
    }
  }
}

static void on_last(void *data, uint64_t generation) {
  (void)data;
  atomic_store(&last_generation, generation);
  atomic_fetch_add(&lasts, 1);
}

static void reset_counts(void) {
  for (unsigned i = 0; i < THREADS; i++)
    atomic_store(&runs[i], 0);
  atomic_store(&lasts, 0);
  atomic_store(&late_runs, 0);
}

/* Every thread runs each job once; the last one reports it. */
static void check_wait(ugc_thread_pool *pool) {
  reset_counts();
  atomic_store(&job_open, true);
  for (unsigned job = 0; job < JOBS; job++) {
    uint64_t generation = ugc_thread_pool_kick(pool);
    CHECK(generation != 0);
    ugc_thread_pool_wait(pool);
    for (unsigned i = 0; i < THREADS; i++)
      CHECK_EQ_U64(atomic_load(&runs[i]), job + 1);
    /* on_last runs after the waiters are woken: give it the moment it needs. */
    while (atomic_load(&lasts) != job + 1)
      sched_yield();
    CHECK_EQ_U64(atomic_load(&last_generation), generation);
  }
}

/* Closed jobs: some threads may skip them, none runs one after the close. */
static void check_close(ugc_thread_pool *pool) {
  reset_counts();
  unsigned total = 0;
  for (unsigned job = 0; job < JOBS; job++) {
    atomic_store(&job_open, true);
    CHECK(ugc_thread_pool_kick(pool) != 0);
    if (job % 2)
      usleep(50); /* let some of them join */
    ugc_thread_pool_close(pool);
    atomic_store(&job_open, false);
  }
  usleep(20000); /* late wake-ups skip the closed jobs */
  for (unsigned i = 0; i < THREADS; i++)
    total += atomic_load(&runs[i]);
  CHECK(total <= (unsigned)JOBS * THREADS);
  CHECK_EQ_U64(atomic_load(&late_runs), 0);
  /* on_last reports only jobs every thread ran. */
  CHECK(atomic_load(&lasts) <= JOBS);
  printf("closed jobs: %u thread runs of %u possible\n", total, JOBS * THREADS);
}

static void check_cpu(ugc_thread_pool *pool) {
  uint64_t before = ugc_thread_pool_cpu_ns(pool);
  atomic_store(&spin, true);
  atomic_store(&job_open, true);
  ugc_thread_pool_kick(pool);
  ugc_thread_pool_wait(pool);
  atomic_store(&spin, false);
  /* Three threads spun 2 ms of their own CPU time each. */
  CHECK(ugc_thread_pool_cpu_ns(pool) - before >= 3 * 2000000u);
}

static _Atomic bool joiner_inside, joiner_done;
static _Atomic unsigned lasts_seen_inside;

static void joiner_fn(void *arg) {
  (void)arg;
  atomic_store(&lasts_seen_inside, atomic_load(&lasts));
  atomic_store(&joiner_inside, true);
  usleep(20000); /* the pool's threads are done by now: the job must still not end */
  atomic_store(&joiner_done, true);
}

static void *joiner_main(void *pool) {
  CHECK(ugc_thread_pool_join(pool, joiner_fn, NULL));
  return NULL;
}

static void never_run(void *arg) {
  (void)arg;
  CHECK(!"a join ran without a job in progress");
}

static void check_join(ugc_thread_pool *pool) {
  /* The last job's on_last may still be on its way (it comes after the waiters wake). */
  while (atomic_load(&last_generation) != pool->generation)
    sched_yield();
  reset_counts();
  atomic_store(&job_open, true);
  CHECK(!ugc_thread_pool_join(pool, never_run, NULL)); /* no job since the last wait */
  atomic_store(&hold, true);
  uint64_t generation = ugc_thread_pool_kick(pool);
  CHECK(generation != 0);
  pthread_t joiner;
  REQUIRE(pthread_create(&joiner, NULL, joiner_main, pool) == 0);
  while (!atomic_load(&joiner_inside))
    sched_yield();
  atomic_store(&hold, false);
  ugc_thread_pool_wait(pool);
  CHECK(atomic_load(&joiner_done)); /* wait waited for the joiner */
  CHECK_EQ_U64(atomic_load(&lasts_seen_inside), 0);
  REQUIRE(pthread_join(joiner, NULL) == 0);
  while (atomic_load(&last_generation) != generation)
    sched_yield();
  usleep(1000);
  CHECK_EQ_U64(atomic_load(&lasts), 1); /* the job ended once, after the joiner */
  CHECK(!ugc_thread_pool_join(pool, never_run, NULL));
}

static void check_fork(ugc_thread_pool *pool) {
  ugc_thread_pool_fork_prepare(pool);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ugc_thread_pool_fork_child(pool);
    CHECK_EQ_U64(pool->started, 0);
    CHECK_EQ_U64(ugc_thread_pool_start(pool, THREADS), THREADS);
    check_wait(pool);
    ugc_thread_pool_destroy(pool);
    _exit(ugc_test_failures ? 1 : 0);
  }
  ugc_thread_pool_fork_parent(pool);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  if (!WIFEXITED(status))
    fprintf(stderr, "child: signal %d\n", WTERMSIG(status));
  /* A child that skipped the fork handlers cannot kick the parent's threads. */
  pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0)
    _exit(ugc_thread_pool_start(pool, THREADS) == 0 && ugc_thread_pool_kick(pool) == 0 ? 0 : 1);
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static _Atomic unsigned indices[1000];
static _Atomic unsigned bad_worker;

static void count_index(void *ctx, size_t index, unsigned worker) {
  (void)ctx;
  atomic_fetch_add(&indices[index], 1);
  if (worker >= THREADS + 1)
    atomic_fetch_add(&bad_worker, 1);
}

static void check_workers(void) {
  ugc_workers workers;
  ugc_workers_init(&workers, THREADS + 1);
  for (unsigned round = 0; round < 50; round++) {
    for (size_t i = 0; i < 1000; i++)
      atomic_store(&indices[i], 0);
    ugc_workers_run(&workers, 1000, 1 + round % 7, count_index, NULL);
    for (size_t i = 0; i < 1000; i++)
      CHECK_EQ_U64(atomic_load(&indices[i]), 1);
  }
  CHECK_EQ_U64(atomic_load(&bad_worker), 0);
  CHECK_EQ_U64(workers.pool.started, THREADS);
  ugc_workers_destroy(&workers);
}

int main(void) {
  ugc_thread_pool pool;
  ugc_thread_pool_init(&pool, THREADS, "test-pool", body, NULL);
  ugc_thread_pool_on_last(&pool, on_last);
  CHECK_EQ_U64(ugc_thread_pool_kick(&pool), 0); /* nothing started: nothing to kick */
  CHECK_EQ_U64(ugc_thread_pool_start(&pool, THREADS), THREADS);
  CHECK_EQ_U64(ugc_thread_pool_start(&pool, THREADS), THREADS); /* once per process */
  check_wait(&pool);
  check_close(&pool);
  check_wait(&pool); /* a closed job leaves the pool usable */
  check_cpu(&pool);
  check_join(&pool);
  check_fork(&pool);
  check_wait(&pool);
  ugc_thread_pool_destroy(&pool);
  check_workers();
  return ugc_test_failures ? 1 : 0;
}
