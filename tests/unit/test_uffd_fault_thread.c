/* Handler-thread delivery: several threads fault the same pages, one handler thread
 * resolves them (EEXIST for duplicates), thread ids arrive, and start/stop are clean. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os/disable.h"
#include "os/reserve.h"
#include "uffd/fault_thread.h"
#include "uffd/resolve.h"
#include "uffd/uffd.h"
#include "test.h"

#define PAGES 128
#define THREADS 4

static size_t page;
static ugc_uffd uffd;
static char *heap;
static char source[4096];
static int tids_seen, bad_resolves, missing_flags_ok = 1;

static void resolve(void *ctx, const ugc_uffd_fault *f) {
  (void)ctx;
  uintptr_t pg = (uintptr_t)f->addr & ~(uintptr_t)(page - 1);
  if (f->flags & (UFFD_PAGEFAULT_FLAG_WP | UFFD_PAGEFAULT_FLAG_MINOR))
    missing_flags_ok = 0;
  if (f->tid)
    tids_seen++;
  ugc_uffd_result r = ugc_uffd_copy(&uffd, (void *)pg, source, page, 0);
  if (r.status != UGC_UFFD_OK && r.status != UGC_UFFD_ALREADY_RESOLVED)
    bad_resolves++;
}

static void *toucher(void *arg) {
  long id = (long)arg, bad = 0;
  for (int i = 0; i < PAGES; i++) {
    int idx = (int)((i * (id + 1)) % PAGES);
    if (id == 0)
      heap[idx * page + 8] = 'w';
    else if (heap[idx * page + 16] != 'q')
      bad++;
  }
  return (void *)bad;
}

int main(void) {
  page = ugc_page_size();
  if (ugc_uffd_probe(NULL) != 0)
    SKIP("userfaultfd unavailable: %s", ugc_uffd_caps_get()->reason);
  if (ugc_feature_disabled("thread"))
    SKIP("handler-thread delivery masked by UFFDGC_DISABLE");
  memset(source, 'q', sizeof source);

  /* A blocking descriptor cannot be polled: refused. */
  ugc_fault_thread t;
  REQUIRE(ugc_uffd_create(&uffd, 0, UGC_UFFD_ALLOW_USER_MODE_ONLY) == 0);
  CHECK(ugc_fault_thread_start(&t, &uffd, resolve, NULL) == -EINVAL);
  ugc_uffd_close(&uffd);

  REQUIRE(ugc_uffd_create(&uffd, UFFD_FEATURE_THREAD_ID,
                          UGC_UFFD_NONBLOCK | UGC_UFFD_ALLOW_USER_MODE_ONLY) == 0);
  heap = mmap(NULL, PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(heap != MAP_FAILED);
  REQUIRE(ugc_uffd_register(&uffd, heap, PAGES * page, UGC_UFFD_REG_MISSING, 0, NULL) == 0);

  /* Start and stop with nothing to do. */
  REQUIRE(ugc_fault_thread_start(&t, &uffd, resolve, NULL) == 0);
  CHECK(ugc_fault_thread_stop(&t) == 0);
  CHECK(t.faults == 0 && !t.running);
  CHECK(ugc_fault_thread_stop(&t) == 0); /* idempotent */

  REQUIRE(ugc_fault_thread_start(&t, &uffd, resolve, NULL) == 0);
  pthread_t threads[THREADS];
  for (long i = 0; i < THREADS; i++)
    REQUIRE(pthread_create(&threads[i], NULL, toucher, (void *)i) == 0);
  for (int i = 0; i < THREADS; i++) {
    void *bad;
    pthread_join(threads[i], &bad);
    CHECK(bad == NULL);
  }
  CHECK(ugc_fault_thread_stop(&t) == 0);
  printf("faults %llu reads %llu eagain %llu events %llu\n", (unsigned long long)t.faults,
         (unsigned long long)t.reads, (unsigned long long)t.eagain, (unsigned long long)t.events);
  CHECK(t.faults >= PAGES && t.faults <= (uint64_t)PAGES * THREADS);
  CHECK(t.errors == 0);
  CHECK(bad_resolves == 0 && missing_flags_ok);
  if (uffd.features & UFFD_FEATURE_THREAD_ID)
    CHECK(tids_seen == (int)t.faults);
  for (int i = 0; i < PAGES; i++)
    CHECK(heap[i * page + 16] == 'q');

  /* Restart on the same descriptor after a stop, on a fresh registered mapping. */
  char *fresh = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(fresh != MAP_FAILED);
  REQUIRE(ugc_uffd_register(&uffd, fresh, 4 * page, UGC_UFFD_REG_MISSING, 0, NULL) == 0);
  REQUIRE(ugc_fault_thread_start(&t, &uffd, resolve, NULL) == 0);
  CHECK(fresh[3 * page] == 'q');
  CHECK(ugc_fault_thread_stop(&t) == 0);
  CHECK(t.faults == 1);

  ugc_uffd_close(&uffd);
  munmap(heap, PAGES * page);
  munmap(fresh, 4 * page);
  TEST_DONE();
}
