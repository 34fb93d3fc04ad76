/* System calls that write into heap memory while it is being compacted. With handler-thread
 * delivery and full userfaultfd the kernel waits until the page is built, so read() into a
 * heap object must succeed and the object must hold the data afterwards; with SIGBUS
 * delivery, or when only UFFD_USER_MODE_ONLY could be opened (unprivileged), it may fail
 * with EFAULT (documented in docs/api.md): ugc_heap_syscalls_may_fault must then say so,
 * and the test reports the failures but accepts them. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "integration/itest.h"
#include "uffd/uffd.h"

enum { OBJECTS = 20000, BYTES = 8000 };

int main(void) {
  setenv("UFFDGC_BACKEND", "copy", 0);
  const char *delivery = getenv("UFFDGC_DELIVERY");
  bool thread_delivery = delivery && strcmp(delivery, "thread") == 0;
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = (size_t)512 << 20;
  config.heap_initial = (size_t)400 << 20;
  ugc_heap *heap = itest_heap_create(&config);
  ugc_error error;
  ugc_type_desc leaf = {.name = "bytes", .layout = UGC_LAYOUT_LEAF};
  ugc_type_id type = ugc_type_register(heap, &leaf, &error);
  ugc_mutator *m = ugc_thread_attach(heap, &error);
  REQUIRE(type && m);
  char why[256];
  bool may_fault = ugc_heap_syscalls_may_fault(heap, why, sizeof why);
  printf("system calls into the heap may fail with EFAULT: %s%s%s\n", may_fault ? "yes (" : "no",
         why, may_fault ? ")" : "");
  if (strcmp(ugc_heap_backend(heap), "stw") == 0)
    CHECK(!may_fault);
  else if (!thread_delivery && (ugc_uffd_caps_get()->features & UFFD_FEATURE_SIGBUS))
    CHECK(may_fault);
  else
    CHECK(may_fault == (ugc_uffd_caps_get()->open.path == UGC_UFFD_PATH_SYSCALL_USER_MODE_ONLY));
  static void *keep[OBJECTS];
  for (int i = 0; i < OBJECTS; i++) {
    keep[i] = ugc_alloc(m, type, BYTES);
    ugc_root(m, &keep[i]);
    ugc_alloc(m, type, BYTES); /* garbage: the kept objects slide */
  }
  void *pinned = ugc_alloc_pinned(m, type, 256);
  ugc_root(m, &pinned);
  int fd = open("/dev/urandom", O_RDONLY);
  REQUIRE(fd >= 0);
  int failed = 0, succeeded = 0;
  for (int round = 0; round < 5; round++) {
    ugc_collect(m, UGC_COLLECT_FULL);
    /* the far end first: the pages GC threads reach last */
    for (int i = OBJECTS - 1; i >= OBJECTS - 64; i--) {
      ssize_t got = read(fd, keep[i], 256);
      if (got == 256) {
        succeeded++;
      } else {
        failed++;
        if (!may_fault)
          fprintf(stderr, "read() into the heap: %zd (%s)\n", got, strerror(errno));
        /* only where the library says it may */
        CHECK(may_fault && got < 0 && errno == EFAULT);
      }
    }
    /* The documented ways out: a pinned object during the compaction, anything after it. */
    CHECK(read(fd, pinned, 256) == 256);
    ugc_collect(m, UGC_COLLECT_FINISH);
    CHECK(read(fd, keep[OBJECTS - 1], 256) == 256);
    CHECK_EQ_U64(ugc_verify(m, NULL), 0);
  }
  printf("delivery=%s backend=%s: %d reads into the heap succeeded, %d failed with EFAULT\n",
         thread_delivery ? "thread" : "sigbus", ugc_heap_backend(heap), succeeded, failed);
  close(fd);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
