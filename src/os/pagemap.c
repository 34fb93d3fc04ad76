#include "os/pagemap.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PAGE_BYTES 4096u /* the collector's page; x86_64 base pages */

/* The uapi of linux/fs.h (6.7), spelled out: the build machine's headers may predate it. */
struct pagemap_region {
  uint64_t start, end, categories;
};
struct pagemap_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN_IOCTL _IOWR('f', 16, struct pagemap_scan_arg)
#define PAGEMAP_IS_FILE (UINT64_C(1) << 2)
#define PAGEMAP_IS_PRESENT (UINT64_C(1) << 3)
#define PAGEMAP_IS_SWAPPED (UINT64_C(1) << 4)

/* Regions per call: adjacent pages with the same categories come as one region, so a
 * kept range written here and there takes a few calls at most. */
#define REGIONS_PER_CALL 256

static void set_pages(uint64_t *bits, uintptr_t start, uintptr_t lo, uintptr_t hi) {
  for (size_t page = (lo - start) / PAGE_BYTES, end = (hi - start) / PAGE_BYTES; page < end; page++)
    bits[page / 64] |= UINT64_C(1) << (page % 64);
}

int ugc_pagemap_private_copies(uintptr_t start, size_t bytes, uint64_t *bits) {
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  struct pagemap_region regions[REGIONS_PER_CALL];
  uintptr_t at = start, end = start + bytes;
  int rc = 0;
  while (at < end) {
    struct pagemap_scan_arg arg = {
        .size = sizeof arg,
        .start = at,
        .end = end,
        .vec = (uint64_t)(uintptr_t)regions,
        .vec_len = REGIONS_PER_CALL,
        /* Every page comes back with these three categories; the anyof filter drops the
         * pages that are neither present nor swapped (they read the file). */
        .category_anyof_mask = PAGEMAP_IS_PRESENT | PAGEMAP_IS_SWAPPED,
        .return_mask = PAGEMAP_IS_FILE | PAGEMAP_IS_PRESENT | PAGEMAP_IS_SWAPPED,
    };
    long found = ioctl(fd, PAGEMAP_SCAN_IOCTL, &arg);
    if (found < 0) {
      rc = -errno;
      break;
    }
    for (long i = 0; i < found; i++) {
      uint64_t c = regions[i].categories;
      if ((c & PAGEMAP_IS_SWAPPED) || !(c & PAGEMAP_IS_FILE))
        set_pages(bits, start, regions[i].start, regions[i].end);
    }
    if (arg.walk_end <= at) { /* no progress: not expected, but never loop forever */
      rc = -EIO;
      break;
    }
    at = arg.walk_end;
  }
  close(fd);
  return rc;
}
