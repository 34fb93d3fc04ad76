/* COPY, ZEROPAGE, CONTINUE, MOVE, POISON, WAKE and WRITEPROTECT: partial progress, EEXIST
 * (stop, or skip with UGC_UFFD_SKIP_EXISTING), ENOENT, batches, counters, and a pending
 * event (EAGAIN without progress). The descriptor uses SIGBUS mode so that a stray access
 * to an unresolved page kills the test instead of hanging it. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os/memfd.h"
#include "os/reserve.h"
#include "uffd/resolve.h"
#include "uffd/uffd.h"
#include "test.h"

static size_t page;

static char *anon(size_t pages) {
  char *p = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(p != MAP_FAILED);
  return p;
}

static void fill(char *buf, size_t pages, int seed) {
  for (size_t i = 0; i < pages; i++)
    memset(buf + i * page, seed + (int)i, page);
}

static void test_copy(ugc_uffd *u) {
  char *dst = anon(16), *src = anon(8);
  fill(src, 8, 10);
  REQUIRE(ugc_uffd_register(u, dst, 16 * page, UGC_UFFD_REG_MISSING, 0, NULL) == 0);

  ugc_uffd_result r = ugc_uffd_copy(u, dst + 3 * page, src + 3 * page, page, 0);
  CHECK(r.status == UGC_UFFD_OK && r.done == page);

  /* Pages 0-2 are done in a first call that stops at page 3 (-1/EAGAIN, copy = 3 pages),
   * then page 3 answers EEXIST: stop there. */
  uint64_t calls_before = u->counters.calls[UGC_UFFD_OP_COPY];
  r = ugc_uffd_copy(u, dst, src, 8 * page, 0);
  CHECK(r.status == UGC_UFFD_ALREADY_RESOLVED && r.err == EEXIST);
  CHECK_EQ_U64(r.done, 3 * page);
  CHECK_EQ_U64(u->counters.calls[UGC_UFFD_OP_COPY] - calls_before, 2);
  CHECK(dst[0] == 10 && dst[2 * page] == 12 && dst[3 * page] == 13);

  /* With SKIP_EXISTING the already-mapped pages are stepped over and the rest copied. */
  r = ugc_uffd_copy(u, dst, src, 8 * page, UGC_UFFD_SKIP_EXISTING);
  CHECK(r.status == UGC_UFFD_ALREADY_RESOLVED);
  CHECK_EQ_U64(r.done, 4 * page);
  CHECK_EQ_U64(r.skipped, 4 * page);
  for (size_t i = 0; i < 8; i++)
    CHECK(dst[i * page] == (char)(10 + i));

  /* ZEROPAGE maps zeros; again on the same pages is EEXIST. */
  r = ugc_uffd_zeropage(u, dst + 8 * page, 2 * page, 0);
  CHECK(r.status == UGC_UFFD_OK && r.done == 2 * page);
  CHECK(dst[8 * page] == 0 && dst[10 * page - 1] == 0);
  r = ugc_uffd_zeropage(u, dst + 8 * page, page, UGC_UFFD_DONTWAKE);
  CHECK(r.status == UGC_UFFD_ALREADY_RESOLVED && r.done == 0);

  /* ENOENT: the destination is not registered. */
  char *plain = anon(2);
  r = ugc_uffd_copy(u, plain, src, page, 0);
  CHECK(r.status == UGC_UFFD_NOENT && r.err == ENOENT && r.done == 0);
  r = ugc_uffd_copy(u, dst + page + 1, src, page, 0);
  CHECK(r.status == UGC_UFFD_INVALID);                           /* unaligned */
  CHECK(ugc_uffd_copy(u, dst, src, 0, 0).status == UGC_UFFD_OK); /* nothing to do */

  /* Batch: second span fails, first completes, third not tried. */
  ugc_uffd_span spans[3] = {
      {dst + 10 * page, src, 2 * page}, {plain, src, page}, {dst + 12 * page, src, page}};
  ugc_uffd_result sum;
  CHECK(ugc_uffd_copy_batch(u, spans, 3, 0, &sum) == 1);
  CHECK(sum.status == UGC_UFFD_NOENT && sum.done == 2 * page);
  spans[1].dst = dst + 13 * page;
  spans[0].dst = dst + 14 * page;
  CHECK(ugc_uffd_copy_batch(u, spans, 3, UGC_UFFD_DONTWAKE, &sum) == 3);
  CHECK(sum.status == UGC_UFFD_OK && sum.done == 4 * page);
  CHECK(ugc_uffd_wake(u, dst, 16 * page) == 0);
  CHECK(ugc_uffd_wake(u, dst, 0) == -EINVAL);
  r = ugc_uffd_zeropage(u, dst + 11 * page, 3 * page, UGC_UFFD_SKIP_EXISTING);
  CHECK(r.status == UGC_UFFD_ALREADY_RESOLVED && r.done == 0 && r.skipped == 3 * page);

  CHECK(ugc_uffd_unregister(u, dst, 16 * page) == 0);
  munmap(dst, 16 * page);
  munmap(src, 8 * page);
  munmap(plain, 2 * page);
}

static void test_move(ugc_uffd *u) {
  if (!(u->features & UFFD_FEATURE_MOVE)) {
    printf("MOVE not offered: skipped\n");
    return;
  }
  char *dst = anon(8), *src = anon(8);
  REQUIRE(ugc_uffd_register(u, dst, 8 * page, UGC_UFFD_REG_MISSING,
                            UGC_UFFD_IOCTL_BIT(_UFFDIO_MOVE), NULL) == 0);
  fill(src, 2, 40);            /* pages 0, 1 */
  fill(src + 3 * page, 1, 43); /* page 3; page 2 is a hole */

  /* Pages 0-1 move, then the hole: ENOENT after partial progress. */
  ugc_uffd_result r = ugc_uffd_move(u, dst, src, 4 * page, 0);
  CHECK(r.status == UGC_UFFD_NOENT);
  CHECK_EQ_U64(r.done, 2 * page);
  CHECK(dst[0] == 40 && dst[page] == 41);
  CHECK(src[0] == 0); /* the page left the source */

  /* Holes allowed: the rest goes through (holes count as done). */
  r = ugc_uffd_move(u, dst + 2 * page, src + 2 * page, 2 * page, UGC_UFFD_ALLOW_SRC_HOLES);
  CHECK(r.status == UGC_UFFD_OK && r.done == 2 * page);
  CHECK(dst[3 * page] == 43);

  /* EEXIST: the destination is already mapped. */
  fill(src + 4 * page, 1, 50);
  r = ugc_uffd_move(u, dst, src + 4 * page, page, 0);
  CHECK(r.status == UGC_UFFD_ALREADY_RESOLVED && r.done == 0);
  CHECK(src[4 * page] == 50); /* not moved */

  ugc_uffd_span spans[2] = {{dst + 4 * page, src + 4 * page, page},
                            {dst + 5 * page, src + 5 * page, page}};
  fill(src + 5 * page, 1, 51);
  ugc_uffd_result sum;
  CHECK(ugc_uffd_move_batch(u, spans, 2, 0, &sum) == 2 && sum.done == 2 * page);
  CHECK(dst[4 * page] == 50 && dst[5 * page] == 51);
  ugc_uffd_unregister(u, dst, 8 * page);
  munmap(dst, 8 * page);
  munmap(src, 8 * page);
}

static void test_continue(ugc_uffd *u) {
  if (!(u->features & UFFD_FEATURE_MINOR_SHMEM)) {
    printf("MINOR_SHMEM not offered: skipped\n");
    return;
  }
  ugc_memfd m;
  void *heap_v, *alias_v;
  if (ugc_memfd_create(&m, "continue-test", 8 * page) != 0) {
    printf("no memfd: CONTINUE skipped\n");
    return;
  }
  REQUIRE(ugc_memfd_map(&m, NULL, 0, 8 * page, PROT_READ | PROT_WRITE, &heap_v) == 0);
  REQUIRE(ugc_memfd_map(&m, NULL, 0, 8 * page, PROT_READ | PROT_WRITE, &alias_v) == 0);
  char *heap = heap_v, *alias = alias_v;
  fill(alias, 8, 60); /* the page cache is populated through the alias */
  uint64_t ioctls = 0;
  REQUIRE(ugc_uffd_register(u, heap, 8 * page, UGC_UFFD_REG_MINOR, 0, &ioctls) == 0);
  CHECK(ioctls & UGC_UFFD_IOCTL_BIT(_UFFDIO_CONTINUE));

  ugc_uffd_result r = ugc_uffd_continue(u, heap + 5 * page, page, 0);
  CHECK(r.status == UGC_UFFD_OK && heap[5 * page] == 65);
  r = ugc_uffd_continue(u, heap, 8 * page, 0);
  CHECK(r.status == UGC_UFFD_ALREADY_RESOLVED && r.done == 5 * page);
  ugc_uffd_span rest[1] = {{heap + 6 * page, NULL, 2 * page}};
  ugc_uffd_result sum;
  CHECK(ugc_uffd_continue_batch(u, rest, 1, 0, &sum) == 1 && sum.done == 2 * page);
  for (size_t i = 0; i < 8; i++)
    CHECK(heap[i * page] == (char)(60 + i));
  alias[page] = 99; /* the two views still share the page */
  CHECK(heap[page] == 99);
  ugc_uffd_unregister(u, heap, 8 * page);
  munmap(heap, 8 * page);
  munmap(alias, 8 * page);
  ugc_memfd_close(&m);
}

static void test_wp_and_poison(ugc_uffd *u) {
  char *p = anon(4);
  if (u->features & UFFD_FEATURE_PAGEFAULT_FLAG_WP) {
    REQUIRE(ugc_uffd_register(u, p, 4 * page, UGC_UFFD_REG_MISSING | UGC_UFFD_REG_WP, 0, NULL) ==
            0);
    char buf[4096] = {7};
    CHECK(ugc_uffd_copy(u, p, buf, page, 0).status == UGC_UFFD_OK);
    CHECK(ugc_uffd_writeprotect(u, p, page, true, 0) == 0);
    CHECK(ugc_uffd_writeprotect(u, p, page, false, 0) == 0);
    p[0] = 8; /* writable again */
    CHECK(ugc_uffd_unregister(u, p, 4 * page) == 0);
  }
  if (u->features & UFFD_FEATURE_POISON) {
    REQUIRE(ugc_uffd_register(u, p + page, page, UGC_UFFD_REG_MISSING, 0, NULL) == 0);
    ugc_uffd_result r = ugc_uffd_poison(u, p + page, page, 0);
    CHECK(r.status == UGC_UFFD_OK && r.done == page);
    CHECK(ugc_uffd_poison(u, p + page, page, 0).status == UGC_UFFD_ALREADY_RESOLVED);
    ugc_uffd_unregister(u, p + page, page);
  }
  munmap(p, 4 * page);
}

/* A thread's madvise(DONTNEED) on a range with EVENT_REMOVE waits until the event is read;
 * meanwhile resolving ioctls answer EAGAIN without progress. */
struct remover {
  char *addr;
};
static void *remove_range(void *arg) {
  struct remover *r = arg;
  madvise(r->addr, page, MADV_DONTNEED);
  return NULL;
}

static void test_pending_event(void) {
  ugc_uffd u;
  if (!(ugc_uffd_caps_get()->features & UFFD_FEATURE_EVENT_REMOVE))
    return;
  REQUIRE(ugc_uffd_create(&u, UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_SIGBUS,
                          UGC_UFFD_NONBLOCK | UGC_UFFD_ALLOW_USER_MODE_ONLY) == 0);
  char *dst = anon(4);
  char src[4096] = {1};
  REQUIRE(ugc_uffd_register(&u, dst, 4 * page, UGC_UFFD_REG_MISSING, 0, NULL) == 0);
  pthread_t t;
  struct remover rm = {dst};
  REQUIRE(pthread_create(&t, NULL, remove_range, &rm) == 0);
  struct pollfd pfd = {.fd = u.fd, .events = POLLIN};
  REQUIRE(poll(&pfd, 1, 10000) == 1); /* the REMOVE event is queued */
  ugc_uffd_result r = ugc_uffd_copy(&u, dst + 2 * page, src, page, 0);
  CHECK(r.status == UGC_UFFD_PENDING_EVENT && r.err == EAGAIN && r.done == 0);
  CHECK_EQ_U64(u.counters.pending_event, 1);
  struct uffd_msg msg;
  CHECK(read(u.fd, &msg, sizeof msg) == sizeof msg && msg.event == UFFD_EVENT_REMOVE);
  pthread_join(t, NULL);
  r = ugc_uffd_copy(&u, dst + 2 * page, src, page, 0);
  CHECK(r.status == UGC_UFFD_OK);
  ugc_uffd_close(&u);
  munmap(dst, 4 * page);
}

int main(void) {
  page = ugc_page_size();
  if (ugc_uffd_probe(NULL) != 0)
    SKIP("userfaultfd unavailable: %s", ugc_uffd_caps_get()->reason);
  ugc_uffd u;
  uint64_t want = UFFD_FEATURE_SIGBUS | UFFD_FEATURE_MOVE | UFFD_FEATURE_MINOR_SHMEM |
                  UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_POISON;
  REQUIRE(ugc_uffd_create(&u, want, UGC_UFFD_ALLOW_USER_MODE_ONLY) == 0);
  CHECK((u.features & ~want) == 0);
  test_copy(&u);
  test_move(&u);
  test_continue(&u);
  test_wp_and_poison(&u);

  ugc_uffd_counters c;
  ugc_uffd_get_counters(&u, &c);
  CHECK(c.calls[UGC_UFFD_OP_COPY] >= 8 && c.bytes[UGC_UFFD_OP_COPY] >= 12 * page);
  CHECK(c.calls[UGC_UFFD_OP_WAKE] >= 1);
  CHECK(c.already_resolved >= 4);
  CHECK(c.errors >= 2);
  for (int op = 0; op < UGC_UFFD_OP_COUNT; op++)
    printf("%-12s calls %llu bytes %llu\n", ugc_uffd_op_name(op), (unsigned long long)c.calls[op],
           (unsigned long long)c.bytes[op]);
  ugc_uffd_close(&u);
  CHECK(u.fd == -1);
  test_pending_event();
  TEST_DONE();
}
