/* UFFDIO_MOVE (6.8+): move the source's pages to dst without copying or allocating. Needs
 * private anonymous memory on both sides, same protection, destination registered. */
#include <errno.h>
#include <sys/ioctl.h>

#include "os/disable.h"
#include "uffd/internal.h"

static int64_t move_step(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
                         int *err) {
  struct uffdio_move m = {.dst = dst, .src = src, .len = len, .mode = mode, .move = 0};
  *err = ioctl(fd, UFFDIO_MOVE, &m) == 0 ? 0 : errno;
  return m.move;
}

ugc_uffd_result ugc_uffd_move(ugc_uffd *u, void *dst, void *src, size_t len, unsigned flags) {
  if (!(u->features & UFFD_FEATURE_MOVE))
    return (ugc_uffd_result){.status = UGC_UFFD_INVALID, .err = EOPNOTSUPP};
  uint64_t mode = ((flags & UGC_UFFD_DONTWAKE) ? UFFDIO_MOVE_MODE_DONTWAKE : 0) |
                  ((flags & UGC_UFFD_ALLOW_SRC_HOLES) ? UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES : 0);
  return ugc_uffd_run(u, UGC_UFFD_OP_MOVE, move_step, (uintptr_t)dst, (uintptr_t)src, len, mode,
                      flags);
}
