/* memfd views alias each other, the shrink seal holds, punch-hole frees pages. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os/memfd.h"
#include "os/reserve.h"
#include "test.h"

int main(void) {
  size_t page = ugc_page_size(), size = 16 * page;
  ugc_memfd m;
  int rc = ugc_memfd_create(&m, "test-heap", size);
  if (rc == -ENOSYS)
    SKIP("memfd_create not available");
  if (rc == -EOPNOTSUPP)
    SKIP("memfd masked by UFFDGC_DISABLE");
  REQUIRE(rc == 0);
  CHECK(m.fd >= 0);
  CHECK_EQ_U64(m.size, size);
  CHECK(fcntl(m.fd, F_GETFD) & FD_CLOEXEC);
  int seals = fcntl(m.fd, F_GET_SEALS);
  CHECK(seals >= 0 && (seals & F_SEAL_SHRINK));

  /* Heap view inside a 2 MiB-aligned reservation, alias view anywhere. */
  ugc_reservation r;
  REQUIRE(ugc_os_reserve(&r, size, 2 * UGC_MiB) == 0);
  void *heap_v = NULL, *alias_v = NULL;
  REQUIRE(ugc_memfd_map(&m, r.base, 0, size, PROT_READ | PROT_WRITE, &heap_v) == 0);
  CHECK(heap_v == r.base);
  REQUIRE(ugc_memfd_map(&m, NULL, 0, size, PROT_READ | PROT_WRITE, &alias_v) == 0);
  CHECK(alias_v != heap_v);
  char *heap = heap_v, *alias = alias_v;

  memset(alias + 3 * page, 0x5a, page);
  CHECK(heap[3 * page] == 0x5a && heap[4 * page - 1] == 0x5a);
  heap[7 * page] = 9;
  CHECK(alias[7 * page] == 9);

  /* A read-only view of a range shares the same pages. */
  void *ro = NULL;
  REQUIRE(ugc_memfd_map(&m, NULL, (off_t)(3 * page), page, PROT_READ, &ro) == 0);
  CHECK(((char *)ro)[0] == 0x5a);

  /* Sealed against shrinking; growing is fine. */
  CHECK(ftruncate(m.fd, (off_t)page) == -1 && errno == EPERM);
  CHECK(ugc_memfd_grow(&m, 2 * size) == 0);
  CHECK_EQ_U64(m.size, 2 * size);
  CHECK(ugc_memfd_grow(&m, size) == -EPERM);

  /* Punching a hole frees the page in every view. */
  CHECK(ugc_memfd_punch_hole(&m, (off_t)(3 * page), page) == 0);
  CHECK(heap[3 * page] == 0 && alias[3 * page + 17] == 0 && ((char *)ro)[0] == 0);
  CHECK(heap[7 * page] == 9); /* neighbours untouched */

  munmap(ro, page);
  munmap(alias_v, size);
  ugc_os_release(&r);
  ugc_memfd_close(&m);
  CHECK(m.fd == -1);
  TEST_DONE();
}
