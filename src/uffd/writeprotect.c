/* UFFDIO_WRITEPROTECT: set or clear write protection on a range registered with MODE_WP. */
#include <errno.h>
#include <sys/ioctl.h>

#include "uffd/internal.h"

int ugc_uffd_writeprotect(ugc_uffd *u, void *addr, size_t len, bool protect, unsigned flags) {
  struct uffdio_writeprotect wp = {
      .range = {.start = (uintptr_t)addr, .len = len},
      .mode = (protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0) |
              ((flags & UGC_UFFD_DONTWAKE) ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0)};
  ugc_uffd_count(&u->counters.calls[UGC_UFFD_OP_WRITEPROTECT], 1);
  if (ioctl(u->fd, UFFDIO_WRITEPROTECT, &wp) != 0) {
    int err = errno;
    ugc_uffd_count(&u->counters.errors, 1);
    return -err;
  }
  ugc_uffd_count(&u->counters.bytes[UGC_UFFD_OP_WRITEPROTECT], len);
  return 0;
}
