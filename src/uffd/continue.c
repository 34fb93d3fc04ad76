/* UFFDIO_CONTINUE: map pages already in the page cache (minor faults on shmem). */
#include <errno.h>
#include <sys/ioctl.h>

#include "uffd/internal.h"

static int64_t continue_step(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
                             int *err) {
  (void)src;
  struct uffdio_continue c = {.range = {.start = dst, .len = len}, .mode = mode, .mapped = 0};
  *err = ioctl(fd, UFFDIO_CONTINUE, &c) == 0 ? 0 : errno;
  return c.mapped;
}

ugc_uffd_result ugc_uffd_continue(ugc_uffd *u, void *dst, size_t len, unsigned flags) {
  uint64_t mode = ((flags & UGC_UFFD_DONTWAKE) ? UFFDIO_CONTINUE_MODE_DONTWAKE : 0) |
                  ((flags & UGC_UFFD_MAP_WP) ? UFFDIO_CONTINUE_MODE_WP : 0);
  return ugc_uffd_run(u, UGC_UFFD_OP_CONTINUE, continue_step, (uintptr_t)dst, 0, len, mode, flags);
}
