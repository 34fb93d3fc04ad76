/* UFFDIO_ZEROPAGE: map the shared zero page (the first write costs another fault). */
#include <errno.h>
#include <sys/ioctl.h>

#include "uffd/internal.h"

static int64_t zeropage_step(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
                             int *err) {
  (void)src;
  struct uffdio_zeropage z = {.range = {.start = dst, .len = len}, .mode = mode, .zeropage = 0};
  *err = ioctl(fd, UFFDIO_ZEROPAGE, &z) == 0 ? 0 : errno;
  return z.zeropage;
}

ugc_uffd_result ugc_uffd_zeropage(ugc_uffd *u, void *dst, size_t len, unsigned flags) {
  uint64_t mode = (flags & UGC_UFFD_DONTWAKE) ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0;
  return ugc_uffd_run(u, UGC_UFFD_OP_ZEROPAGE, zeropage_step, (uintptr_t)dst, 0, len, mode, flags);
}
