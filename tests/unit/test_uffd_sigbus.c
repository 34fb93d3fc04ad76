/* SIGBUS-mode delivery: faults in a registered range reach its callback (several threads,
 * same pages), everything else is chained to the handler installed before ours (real
 * faults, kill(), a callback that declines, a memory-error si_code, a callback with nothing
 * to resolve on a page that would fault again), ranges come and go while threads fault, and
 * with SIG_DFL before us an unrelated SIGBUS still kills the process. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/reserve.h"
#include "uffd/resolve.h"
#include "uffd/sigbus.h"
#include "uffd/uffd.h"
#include "test.h"

#define HEAP_PAGES 64
#define THREADS 4

static size_t page;
static ugc_uffd uffd;
static char *heap;
static char pattern[HEAP_PAGES][4096];
static volatile int last_is_write = -2;
static int handled_faults;

/* Previous handler: counts, and makes a truncated-file fault go away by growing the file. */
static volatile sig_atomic_t prev_calls, prev_sent;
static volatile void *prev_addr;
static int grow_fd = -1;
static void previous_handler(int sig, siginfo_t *info, void *uc) {
  (void)sig, (void)uc;
  prev_calls++;
  if (info->si_code <= 0) {
    prev_sent++;
    return;
  }
  prev_addr = info->si_addr;
  if (grow_fd >= 0 && ftruncate(grow_fd, (off_t)page) != 0)
    _exit(3);
}

static int on_heap_fault(void *ctx, void *addr, int is_write, void *page_buffer) {
  (void)ctx, (void)page_buffer;
  uintptr_t pg = (uintptr_t)addr & ~(uintptr_t)(page - 1);
  size_t idx = (pg - (uintptr_t)heap) / page;
  ugc_uffd_result r = ugc_uffd_copy(&uffd, (void *)pg, pattern[idx], page, 0);
  if (r.status != UGC_UFFD_OK && r.status != UGC_UFFD_ALREADY_RESOLVED)
    return 1;
  last_is_write = is_write;
  __atomic_add_fetch(&handled_faults, 1, __ATOMIC_RELAXED);
  return 0;
}

static int idle_calls;
static int idle(void *ctx, void *addr, int is_write, void *page_buffer) {
  (void)ctx, (void)addr, (void)is_write, (void)page_buffer;
  idle_calls++;
  return UGC_SIGBUS_IDLE;
}

static int decline(void *ctx, void *addr, int is_write, void *page_buffer) {
  (void)ctx, (void)addr, (void)is_write, (void)page_buffer;
  return 1;
}

/* A page that SIGBUSes until the file behind it is grown (a zero-length memfd). */
static char *truncated_page(int *fd_out) {
  int fd = memfd_create("sigbus-test", MFD_CLOEXEC);
  REQUIRE(fd >= 0);
  char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  REQUIRE(p != MAP_FAILED);
  *fd_out = fd;
  return p;
}

static void *reader(void *arg) {
  long id = (long)arg;
  long bad = 0;
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < HEAP_PAGES; i++) {
      int idx = (int)((i + id * 7) % HEAP_PAGES);
      if (heap[idx * page + 100] != pattern[idx][100])
        bad++;
    }
  return (void *)bad;
}

static volatile int churn_stop;
static void *churn(void *arg) {
  char *other = arg;
  while (!__atomic_load_n(&churn_stop, __ATOMIC_RELAXED)) {
    int id = ugc_sigbus_add_range(other, page, decline, NULL);
    if (id >= 0)
      ugc_sigbus_remove_range(id);
  }
  return NULL;
}

static int child_default(void) {
  /* Nothing installed before us: an unrelated SIGBUS must still kill the process. */
  char dummy[64];
  int id = ugc_sigbus_add_range(dummy, sizeof dummy, decline, NULL);
  if (id < 0)
    return 2;
  int fd;
  volatile char *p = truncated_page(&fd);
  (void)p[0];
  return 0; /* not reached */
}

int main(int argc, char **argv) {
  page = ugc_page_size();
  if (argc > 1 && strcmp(argv[1], "default") == 0)
    return child_default();
  if (ugc_uffd_probe(NULL) != 0)
    SKIP("userfaultfd unavailable: %s", ugc_uffd_caps_get()->reason);
  if (!(ugc_uffd_caps_get()->features & UFFD_FEATURE_SIGBUS))
    SKIP("UFFD_FEATURE_SIGBUS not offered (or masked by UFFDGC_DISABLE)");
  REQUIRE(page == 4096);

  struct sigaction prev;
  memset(&prev, 0, sizeof prev);
  prev.sa_sigaction = previous_handler;
  prev.sa_flags = SA_SIGINFO;
  sigemptyset(&prev.sa_mask);
  REQUIRE(sigaction(SIGBUS, &prev, NULL) == 0);

  REQUIRE(ugc_uffd_create(&uffd, UFFD_FEATURE_SIGBUS, UGC_UFFD_ALLOW_USER_MODE_ONLY) == 0);
  heap = mmap(NULL, HEAP_PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(heap != MAP_FAILED);
  for (int i = 0; i < HEAP_PAGES; i++)
    memset(pattern[i], 'a' + i % 26, page);
  REQUIRE(ugc_uffd_register(&uffd, heap, HEAP_PAGES * page, UGC_UFFD_REG_MISSING, 0, NULL) == 0);
  int id = ugc_sigbus_add_range(heap, HEAP_PAGES * page, on_heap_fault, NULL);
  REQUIRE(id >= 0);

  /* Write and read faults on this thread. */
  heap[0] = 'Z';
  CHECK(heap[0] == 'Z' && heap[1] == pattern[0][1]);
#if defined(__x86_64__)
  CHECK(last_is_write == 1);
#endif
  CHECK(heap[page] == pattern[1][0]);
#if defined(__x86_64__)
  CHECK(last_is_write == 0);
#endif

  /* Several threads fault the same pages while another thread adds and removes ranges. */
  char *other = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  pthread_t threads[THREADS], churner;
  REQUIRE(pthread_create(&churner, NULL, churn, other) == 0);
  for (long t = 0; t < THREADS; t++)
    REQUIRE(pthread_create(&threads[t], NULL, reader, (void *)t) == 0);
  for (int t = 0; t < THREADS; t++) {
    void *bad;
    pthread_join(threads[t], &bad);
    CHECK(bad == NULL);
  }
  __atomic_store_n(&churn_stop, 1, __ATOMIC_RELAXED);
  pthread_join(churner, NULL);
  CHECK(heap[0] == 'Z');
  CHECK(handled_faults >= HEAP_PAGES);
  unsigned long dispatched, chained;
  ugc_sigbus_get_stats(&dispatched, &chained);
  CHECK(dispatched >= HEAP_PAGES && chained == 0);

  /* A real SIGBUS outside every range goes to the previous handler, which fixes it. */
  volatile char *trunc = truncated_page(&grow_fd);
  CHECK(trunc[10] == 0);
  CHECK(prev_calls == 1 && prev_addr == trunc + 10);
  close(grow_fd);

  /* A callback that declines also chains. */
  volatile char *trunc2 = truncated_page(&grow_fd);
  int id2 = ugc_sigbus_add_range((void *)trunc2, page, decline, NULL);
  REQUIRE(id2 >= 0);
  CHECK(trunc2[0] == 0);
  CHECK(prev_calls == 2 && prev_addr == trunc2);
  ugc_sigbus_remove_range(id2);
  close(grow_fd);
  grow_fd = -1;

  /* A signal sent with kill() is never dispatched to a range. */
  kill(getpid(), SIGBUS);
  CHECK(prev_sent == 1);
  ugc_sigbus_get_stats(&dispatched, &chained);
  CHECK(chained == 3);

  /* A memory-error SIGBUS (hardware poison) for a heap address is not ours: passed on,
   * never dispatched. Sent to ourselves with a crafted siginfo. */
  int faults_before = handled_faults, calls_before = prev_calls;
  siginfo_t poison;
  memset(&poison, 0, sizeof poison);
  poison.si_signo = SIGBUS;
  poison.si_code = BUS_MCEERR_AR;
  poison.si_addr = heap + 5 * page;
  REQUIRE(syscall(SYS_rt_tgsigqueueinfo, getpid(), (pid_t)syscall(SYS_gettid), SIGBUS, &poison) ==
          0);
  CHECK(prev_calls == calls_before + 1 && prev_addr == heap + 5 * page);
  CHECK(handled_faults == faults_before);
  CHECK(!ugc_sigbus_claim(SIGBUS, &poison, NULL));
  CHECK(!ugc_sigbus_claim(SIGSEGV, &poison, NULL));

  /* A callback with nothing to resolve (IDLE): a page that reads now is retried, a page
   * that would fault again is passed on (here: the previous handler fixes it). */
  volatile char *idle_page = truncated_page(&grow_fd);
  int idle_id = ugc_sigbus_add_range((void *)idle_page, page, idle, NULL);
  REQUIRE(idle_id >= 0);
  calls_before = prev_calls;
  CHECK(idle_page[0] == 0);
  CHECK(idle_calls == 1 && prev_calls == calls_before + 1);
  ugc_sigbus_remove_range(idle_id);
  close(grow_fd);
  grow_fd = -1;
  char *readable = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(readable != MAP_FAILED);
  idle_id = ugc_sigbus_add_range(readable, page, idle, NULL);
  REQUIRE(idle_id >= 0);
  siginfo_t raced;
  memset(&raced, 0, sizeof raced);
  raced.si_signo = SIGBUS;
  raced.si_code = BUS_ADRERR;
  raced.si_addr = readable;
  CHECK(ugc_sigbus_claim(SIGBUS, &raced, NULL)); /* a fault that raced with the end */
  CHECK(idle_calls == 2);
  ugc_sigbus_remove_range(idle_id);
  ugc_sigbus_get_stats(&dispatched, &chained);
  CHECK(chained == 5);

  /* The table holds UGC_SIGBUS_MAX_RANGES ranges (it grows in chunks). */
  int ids[UGC_SIGBUS_MAX_RANGES];
  int n = 0;
  for (; n < UGC_SIGBUS_MAX_RANGES; n++) {
    ids[n] = ugc_sigbus_add_range(other, page, decline, NULL);
    if (ids[n] < 0)
      break;
  }
  CHECK(n == UGC_SIGBUS_MAX_RANGES - 1); /* one slot holds the heap */
  CHECK(ids[n] == -ENOSPC);
  while (n-- > 0)
    ugc_sigbus_remove_range(ids[n]);
  CHECK(ugc_sigbus_add_range(other, 0, decline, NULL) == -EINVAL);

  ugc_sigbus_remove_range(id);
  ugc_uffd_unregister(&uffd, heap, HEAP_PAGES * page);
  ugc_uffd_close(&uffd);

#ifndef UGC_UNDER_SANITIZER
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    signal(SIGBUS, SIG_DFL);
    execl(argv[0], argv[0], "default", (char *)NULL);
    _exit(127);
  }
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS);
#else
  printf("SIG_DFL chaining not checked: the sanitizer's own SIGBUS handler comes first\n");
#endif
  TEST_DONE();
}
