/* UFFDIO_POISON (6.6+): mark pages so that touching them raises SIGBUS. */
#include <errno.h>
#include <sys/ioctl.h>

#include "uffd/internal.h"

static int64_t poison_step(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
                           int *err) {
  (void)src;
  struct uffdio_poison p = {.range = {.start = dst, .len = len}, .mode = mode, .updated = 0};
  *err = ioctl(fd, UFFDIO_POISON, &p) == 0 ? 0 : errno;
  return p.updated;
}

ugc_uffd_result ugc_uffd_poison(ugc_uffd *u, void *dst, size_t len, unsigned flags) {
  if (!(u->features & UFFD_FEATURE_POISON))
    return (ugc_uffd_result){.status = UGC_UFFD_INVALID, .err = EOPNOTSUPP};
  uint64_t mode = (flags & UGC_UFFD_DONTWAKE) ? UFFDIO_POISON_MODE_DONTWAKE : 0;
  return ugc_uffd_run(u, UGC_UFFD_OP_POISON, poison_step, (uintptr_t)dst, 0, len, mode, flags);
}
