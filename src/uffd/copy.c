/* UFFDIO_COPY: allocate a page and fill it from a buffer. */
#include <errno.h>
#include <sys/ioctl.h>

#include "uffd/internal.h"

static int64_t copy_step(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
                         int *err) {
  struct uffdio_copy c = {.dst = dst, .src = src, .len = len, .mode = mode, .copy = 0};
  *err = ioctl(fd, UFFDIO_COPY, &c) == 0 ? 0 : errno;
  return c.copy;
}

ugc_uffd_result ugc_uffd_copy(ugc_uffd *u, void *dst, const void *src, size_t len, unsigned flags) {
  uint64_t mode = ((flags & UGC_UFFD_DONTWAKE) ? UFFDIO_COPY_MODE_DONTWAKE : 0) |
                  ((flags & UGC_UFFD_MAP_WP) ? UFFDIO_COPY_MODE_WP : 0);
  return ugc_uffd_run(u, UGC_UFFD_OP_COPY, copy_step, (uintptr_t)dst, (uintptr_t)src, len, mode,
                      flags);
}
