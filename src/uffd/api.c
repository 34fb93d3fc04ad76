/* The handshake and the life of one descriptor. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "uffd/internal.h"

int ugc_uffd_api(int fd, uint64_t features, uint64_t *kernel_features, uint64_t *ioctls) {
  struct uffdio_api api = {.api = UFFD_API, .features = features};
  if (ioctl(fd, UFFDIO_API, &api) != 0)
    return -errno;
  if (kernel_features)
    *kernel_features = api.features;
  if (ioctls)
    *ioctls = api.ioctls;
  return 0;
}

int ugc_uffd_create(ugc_uffd *u, uint64_t wanted_features, unsigned flags) {
  memset(u, 0, sizeof *u);
  u->fd = -1;
  const ugc_uffd_caps *caps = ugc_uffd_caps_get();
  if (!caps->available)
    return ugc_uffd_probe(NULL);
  int fd = ugc_uffd_open(flags, &u->how);
  if (fd < 0)
    return fd;
  uint64_t features = wanted_features & caps->features;
  /* The kernel turns WP_UNPOPULATED on with WP_ASYNC: record what is really enabled. */
  if (features & UFFD_FEATURE_WP_ASYNC)
    features |= UFFD_FEATURE_WP_UNPOPULATED & caps->features;
  uint64_t ioctls = 0;
  int rc = ugc_uffd_api(fd, features, NULL, &ioctls);
  if (rc != 0) {
    close(fd);
    return rc;
  }
  u->fd = fd;
  u->flags = flags;
  u->features = features;
  u->ioctls = ioctls & ~ugc_uffd_disabled_ioctls();
  return 0;
}

void ugc_uffd_close(ugc_uffd *u) {
  if (u->fd >= 0)
    close(u->fd);
  u->fd = -1;
}

void ugc_uffd_get_counters(const ugc_uffd *u, ugc_uffd_counters *out) {
  for (int i = 0; i < UGC_UFFD_OP_COUNT; i++) {
    out->calls[i] = __atomic_load_n(&u->counters.calls[i], __ATOMIC_RELAXED);
    out->bytes[i] = __atomic_load_n(&u->counters.bytes[i], __ATOMIC_RELAXED);
  }
  out->already_resolved = __atomic_load_n(&u->counters.already_resolved, __ATOMIC_RELAXED);
  out->pending_event = __atomic_load_n(&u->counters.pending_event, __ATOMIC_RELAXED);
  out->errors = __atomic_load_n(&u->counters.errors, __ATOMIC_RELAXED);
}
