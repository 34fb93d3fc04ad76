/* MREMAP_DONTUNMAP leaves an empty range behind (anonymous: zeros; shmem: page cache), the
 * cost class follows alignment, plain moves unmap the source, errors are explained. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "os/memfd.h"
#include "os/remap.h"
#include "os/reserve.h"
#include "test.h"

static bool is_mapped(void *addr) {
  unsigned char vec;
  return mincore(addr, ugc_page_size(), &vec) == 0 || errno != ENOMEM;
}

int main(void) {
  size_t page = ugc_page_size();
  CHECK(ugc_remap_class_of((void *)UGC_GiB, (void *)(2 * UGC_GiB), UGC_GiB) == UGC_REMAP_PUD);
  CHECK(ugc_remap_class_of((void *)UGC_GiB, (void *)(2 * UGC_GiB), 64 * UGC_MiB) == UGC_REMAP_PMD);
  CHECK(ugc_remap_class_of((void *)(2 * UGC_MiB), (void *)UGC_GiB, UGC_GiB) == UGC_REMAP_PMD);
  CHECK(ugc_remap_class_of((void *)(UGC_GiB + page), (void *)UGC_GiB, UGC_GiB) == UGC_REMAP_PTE);
  CHECK(strcmp(ugc_remap_class_name(UGC_REMAP_PUD), "1GiB") == 0);

  if (!ugc_remap_dontunmap_works(false))
    SKIP("MREMAP_DONTUNMAP unsupported on this kernel");

  /* Anonymous: 1 GiB-aligned pair, data moves, the source stays mapped and reads zero. */
  size_t len = 4 * UGC_MiB;
  ugc_reservation a, b;
  REQUIRE(ugc_os_reserve(&a, len, UGC_GiB) == 0 && ugc_os_reserve(&b, len, UGC_GiB) == 0);
  char *src = a.base, *dst = b.base;
  REQUIRE(ugc_commit(src, len) == 0);
  for (size_t off = 0; off < len; off += page)
    src[off] = (char)(off / page + 1);
  ugc_remap_class cls = UGC_REMAP_PTE;
  int rc = ugc_remap_dontunmap(src, dst, len, &cls);
  REQUIRE(rc == 0);
  CHECK(cls == UGC_REMAP_PMD); /* 4 MiB < 1 GiB: PMD-sized entries move */
  CHECK(dst[0] == 1 && dst[len - page] == (char)(len / page));
  CHECK(is_mapped(src));
  CHECK(src[0] == 0 && src[len - page] == 0);

  /* Plain move: the source disappears. */
  REQUIRE(ugc_commit_fresh(src, len) == 0);
  src[page] = 77;
  REQUIRE(ugc_uncommit(dst, len) == 0);
  REQUIRE(ugc_remap_move(src, dst, len, NULL) == 0);
  CHECK(dst[page] == 77);
  CHECK(!is_mapped(src));

  /* Errors come back as -errno with an explanation. */
  rc = ugc_remap_dontunmap(src, dst, len, NULL); /* src no longer mapped */
  CHECK(rc == -EFAULT || rc == -EINVAL);
  CHECK(strlen(ugc_remap_explain(rc)) > 10);
  CHECK(strstr(ugc_remap_explain(-EOPNOTSUPP), "UFFDGC_DISABLE") != NULL);
  ugc_os_release(&a);
  ugc_os_release(&b);

  /* shmem: the source keeps seeing the page cache. */
  if (ugc_remap_dontunmap_works(true)) {
    ugc_memfd m;
    void *view, *target;
    REQUIRE(ugc_memfd_create(&m, "remap-test", 4 * page) == 0);
    REQUIRE(ugc_memfd_map(&m, NULL, 0, 4 * page, PROT_READ | PROT_WRITE, &view) == 0);
    target = mmap(NULL, 4 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(target != MAP_FAILED);
    ((char *)view)[2 * page] = 42;
    REQUIRE(ugc_remap_dontunmap(view, target, 4 * page, &cls) == 0);
    CHECK(cls == UGC_REMAP_PTE);
    CHECK(((char *)target)[2 * page] == 42);
    CHECK(((char *)view)[2 * page] == 42);
    munmap(view, 4 * page);
    munmap(target, 4 * page);
    ugc_memfd_close(&m);
  }
  TEST_DONE();
}
