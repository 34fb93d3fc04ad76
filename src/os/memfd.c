#include "os/memfd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os/disable.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

int ugc_memfd_create(ugc_memfd *m, const char *name, size_t size) {
  m->fd = -1;
  m->size = 0;
  if (ugc_feature_disabled("memfd"))
    return -EOPNOTSUPP;
  /* Since 6.3 the kernel warns about memfds that are neither EXEC nor NOEXEC_SEAL, and
   * vm.memfd_noexec=2 refuses them; older kernels reject the flag with EINVAL. */
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
  if (fd < 0 && errno == EINVAL)
    fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return -errno;
  if (ftruncate(fd, (off_t)size) != 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  m->fd = fd;
  m->size = size;
  return 0;
}

int ugc_memfd_grow(ugc_memfd *m, size_t new_size) {
  if (new_size < m->size)
    return -EPERM;
  if (ftruncate(m->fd, (off_t)new_size) != 0)
    return -errno;
  m->size = new_size;
  return 0;
}

int ugc_memfd_map(const ugc_memfd *m, void *addr, off_t offset, size_t len, int prot, void **out) {
  int flags = MAP_SHARED | (addr ? MAP_FIXED : 0);
  void *p = mmap(addr, len, prot, flags, m->fd, offset);
  if (p == MAP_FAILED)
    return -errno;
  *out = p;
  return 0;
}

int ugc_memfd_map_private(const ugc_memfd *m, void *addr, off_t offset, size_t len, int prot,
                          void **out) {
  void *p = mmap(addr, len, prot, MAP_PRIVATE | (addr ? MAP_FIXED : 0), m->fd, offset);
  if (p == MAP_FAILED)
    return -errno;
  *out = p;
  return 0;
}

int ugc_memfd_punch_hole(const ugc_memfd *m, off_t offset, size_t len) {
  if (fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, (off_t)len) != 0)
    return -errno;
  return 0;
}

void ugc_memfd_close(ugc_memfd *m) {
  if (m->fd >= 0)
    close(m->fd);
  m->fd = -1;
}
