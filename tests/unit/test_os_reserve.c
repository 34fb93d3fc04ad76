/* Reservations come back with the alignment asked for, commit/uncommit work in place. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "os/reserve.h"
#include "test.h"

static void check_aligned(size_t size, size_t align) {
  ugc_reservation r;
  REQUIRE(ugc_os_reserve(&r, size, align) == 0);
  CHECK(r.base != NULL);
  CHECK_EQ_U64(r.size, size);
  CHECK_EQ_U64(r.align_requested, align);
  CHECK(r.align_obtained >= align);
  CHECK_EQ_U64((uintptr_t)r.base % align, 0);
  CHECK_EQ_U64(ugc_alignment_of(r.base), r.align_obtained);

  /* Commit a piece in the middle, use it, give it back, commit again: zeros. */
  size_t page = ugc_page_size();
  char *mid = (char *)r.base + (size / 2 / page) * page;
  size_t len = size >= 8 * page ? 4 * page : page;
  REQUIRE(ugc_commit(mid, len) == 0);
  memset(mid, 0xab, len);
  CHECK(ugc_uncommit(mid, len) == 0);
  REQUIRE(ugc_commit(mid, len) == 0);
  CHECK(mid[0] == 0 && mid[len - 1] == 0);
  mid[0] = 1;
  CHECK(ugc_commit_fresh(mid, len) == 0);
  CHECK(mid[0] == 0);
  CHECK(ugc_os_release(&r) == 0);
  CHECK(r.base == NULL);
}

int main(void) {
  CHECK(ugc_page_size() >= 4096);
  CHECK_EQ_U64(ugc_alignment_of((void *)(uintptr_t)0x40000000), UGC_GiB);
  CHECK_EQ_U64(ugc_alignment_of((void *)(uintptr_t)0x80000000), UGC_GiB); /* capped */
  CHECK_EQ_U64(ugc_alignment_of((void *)(uintptr_t)0x200000), 2 * UGC_MiB);
  CHECK_EQ_U64(ugc_alignment_of((void *)(uintptr_t)0x201000), 4 * UGC_KiB);

  check_aligned(UGC_GiB, UGC_GiB);
  check_aligned(4 * UGC_GiB, UGC_GiB);
  check_aligned(64 * UGC_MiB, 2 * UGC_MiB);
  check_aligned(3 * ugc_page_size(), ugc_page_size());

  ugc_reservation r;
  CHECK(ugc_os_reserve(&r, UGC_MiB, 3 * UGC_MiB) == -EINVAL);
  CHECK(ugc_os_reserve(&r, 0, UGC_MiB) == -EINVAL);
  /* A size that is not a page multiple is rounded up. */
  REQUIRE(ugc_os_reserve(&r, 100, 2 * UGC_MiB) == 0);
  CHECK_EQ_U64(r.size, ugc_page_size());
  ugc_os_release(&r);
  TEST_DONE();
}
