/* UFFDIO_WAKE: wake the threads queued on a range (after a DONTWAKE batch or on EEXIST). */
#include <errno.h>
#include <sys/ioctl.h>

#include "uffd/internal.h"

int ugc_uffd_wake(ugc_uffd *u, void *addr, size_t len) {
  if (len == 0)
    return -EINVAL; /* the kernel would wake everything */
  struct uffdio_range r = {.start = (uintptr_t)addr, .len = len};
  ugc_uffd_count(&u->counters.calls[UGC_UFFD_OP_WAKE], 1);
  if (ioctl(u->fd, UFFDIO_WAKE, &r) != 0) {
    int err = errno;
    ugc_uffd_count(&u->counters.errors, 1);
    return -err;
  }
  ugc_uffd_count(&u->counters.bytes[UGC_UFFD_OP_WAKE], len);
  return 0;
}
