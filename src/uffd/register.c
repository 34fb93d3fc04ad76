/* Registration takes the mmap write lock: register once per cycle over the whole range. */
#include <errno.h>
#include <sys/ioctl.h>

#include "os/disable.h"
#include "uffd/internal.h"

_Static_assert(UGC_UFFD_REG_MISSING == UFFDIO_REGISTER_MODE_MISSING &&
                   UGC_UFFD_REG_WP == UFFDIO_REGISTER_MODE_WP &&
                   UGC_UFFD_REG_MINOR == UFFDIO_REGISTER_MODE_MINOR,
               "register modes are passed to the kernel as they are");

/* The ioctls each mode needs to be useful to the collector. */
static uint64_t needed_ioctls(unsigned modes) {
  uint64_t need = 0;
  if (modes & UGC_UFFD_REG_MISSING)
    need |= UGC_UFFD_IOCTL_BIT(_UFFDIO_COPY) | UGC_UFFD_IOCTL_BIT(_UFFDIO_ZEROPAGE) |
            UGC_UFFD_IOCTL_BIT(_UFFDIO_WAKE);
  if (modes & UGC_UFFD_REG_MINOR)
    need |= UGC_UFFD_IOCTL_BIT(_UFFDIO_CONTINUE) | UGC_UFFD_IOCTL_BIT(_UFFDIO_WAKE);
  if (modes & UGC_UFFD_REG_WP)
    need |= UGC_UFFD_IOCTL_BIT(_UFFDIO_WRITEPROTECT);
  return need;
}

int ugc_uffd_register(ugc_uffd *u, void *addr, size_t len, unsigned modes, uint64_t extra_ioctls,
                      uint64_t *ioctls_out) {
  if (ioctls_out)
    *ioctls_out = 0;
  if (modes == 0 ||
      (modes & ~(unsigned)(UGC_UFFD_REG_MISSING | UGC_UFFD_REG_WP | UGC_UFFD_REG_MINOR)))
    return -EINVAL;
  if (((modes & UGC_UFFD_REG_MINOR) && ugc_feature_disabled("minor")) ||
      ((modes & UGC_UFFD_REG_WP) && ugc_feature_disabled("wp")))
    return -EOPNOTSUPP;
  uint64_t masked = ugc_uffd_disabled_ioctls();
  if (extra_ioctls & masked)
    return -EOPNOTSUPP;

  struct uffdio_register reg = {.range = {.start = (uintptr_t)addr, .len = len}, .mode = modes};
  ugc_uffd_count(&u->counters.calls[UGC_UFFD_OP_REGISTER], 1);
  if (ioctl(u->fd, UFFDIO_REGISTER, &reg) != 0) {
    ugc_uffd_count(&u->counters.errors, 1);
    return -errno;
  }
  ugc_uffd_count(&u->counters.bytes[UGC_UFFD_OP_REGISTER], len);
  uint64_t have = reg.ioctls & ~masked; /* unknown bits are simply carried along */
  uint64_t need = needed_ioctls(modes) | extra_ioctls;
  if ((have & need) != need) {
    ugc_uffd_unregister(u, addr, len);
    return -EOPNOTSUPP;
  }
  if (ioctls_out)
    *ioctls_out = have;
  return 0;
}

int ugc_uffd_unregister(ugc_uffd *u, void *addr, size_t len) {
  struct uffdio_range range = {.start = (uintptr_t)addr, .len = len};
  ugc_uffd_count(&u->counters.calls[UGC_UFFD_OP_UNREGISTER], 1);
  if (ioctl(u->fd, UFFDIO_UNREGISTER, &range) != 0) {
    ugc_uffd_count(&u->counters.errors, 1);
    return -errno;
  }
  ugc_uffd_count(&u->counters.bytes[UGC_UFFD_OP_UNREGISTER], len);
  return 0;
}
