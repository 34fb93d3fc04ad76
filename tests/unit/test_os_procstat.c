/* RSS follows touched memory, the VMA count follows mappings, settings parse. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "os/procstat.h"
#include "os/reserve.h"
#include "os/time.h"
#include "test.h"

int main(void) {
  ugc_rss before, after;
  REQUIRE(ugc_proc_rss(&before) == 0);
  CHECK(before.rss > 0);
  CHECK(before.rss >= before.rss_anon);
  size_t len = 32 * UGC_MiB;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(p != MAP_FAILED);
  memset(p, 1, len);
  REQUIRE(ugc_proc_rss(&after) == 0);
  CHECK(after.rss_anon >= before.rss_anon + len - 4 * UGC_MiB);
  uint64_t statm = ugc_proc_rss_bytes();
  CHECK(statm >= len);
  CHECK(after.rss_peak >= after.rss);

  long vmas = ugc_proc_vma_count();
  CHECK(vmas > 5);
  /* Splitting the mapping in three adds two VMAs. */
  REQUIRE(mprotect(p + UGC_MiB, UGC_MiB, PROT_READ) == 0);
  CHECK(ugc_proc_vma_count() == vmas + 2);
  munmap(p, len);

  /* The peak outlives the unmapped memory until it is reset to the current RSS. */
  ugc_rss unmapped, reset;
  REQUIRE(ugc_proc_rss(&unmapped) == 0);
  CHECK(unmapped.rss_peak >= unmapped.rss + len - 4 * UGC_MiB);
  int reset_rc = ugc_proc_reset_peak_rss();
  CHECK(reset_rc == 0 || reset_rc == -EACCES || reset_rc == -ENOENT);
  REQUIRE(ugc_proc_rss(&reset) == 0);
  if (reset_rc == 0)
    CHECK(reset.rss_peak + len / 2 < unmapped.rss_peak);
  else
    printf("clear_refs not writable here (%d): peak reset unchecked\n", reset_rc);

  char buf[32];
  int rc = ugc_thp_setting("enabled", buf, sizeof buf);
  CHECK(rc == 0 || rc == -ENOENT);
  if (rc == 0) {
    CHECK(strcmp(buf, "always") == 0 || strcmp(buf, "madvise") == 0 || strcmp(buf, "never") == 0);
    printf("thp enabled=%s\n", buf);
  }
  CHECK(ugc_thp_setting("no_such_file", buf, sizeof buf) == -ENOENT);
  int uu = ugc_proc_unprivileged_userfaultfd();
  CHECK(uu == 0 || uu == 1 || uu == -ENOENT || uu == -EACCES);
  char rel[128];
  CHECK(ugc_kernel_release(rel, sizeof rel) == 0 && rel[0] >= '0' && rel[0] <= '9');

  uint64_t t0 = ugc_now_ns(), t1 = ugc_now_ns();
  CHECK(t1 >= t0 && t0 > 0);
  TEST_DONE();
}
