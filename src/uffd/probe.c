/* The process-wide probe: which open paths work, UFFDIO_API's feature and ioctl masks on a
 * throw-away descriptor (a second UFFDIO_API on one fd is EINVAL), and the register ioctl
 * masks on scratch mappings. Computed once, then read-only. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os/disable.h"
#include "os/memfd.h"
#include "os/reserve.h"
#include "uffd/internal.h"

/* Events make the thread that causes them wait until the event is read: never ask for them
 * on the scratch descriptor. */
#define EVENT_FEATURES                                                                             \
  (UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |                \
   UFFD_FEATURE_EVENT_UNMAP)

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static ugc_uffd_caps cached;
static int cached_err; /* what ugc_uffd_probe returns */

/* valgrind and rr do not emulate userfaultfd; the library must pick a non-uffd path. */
static const char *unsupported_tool(void) {
  const char *preload = getenv("LD_PRELOAD");
  if (preload && strstr(preload, "vgpreload"))
    return "valgrind";
  if (getenv("RUNNING_UNDER_RR"))
    return "rr";
  return NULL;
}

static const char *errno_hint(int err) {
  switch (err) {
  case EPERM:
    return " (seccomp filter, or no CAP_SYS_PTRACE and vm.unprivileged_userfaultfd=0)";
  case EACCES:
    return " (no permission on the node)";
  case ENOENT:
    return " (no such node: kernel < 6.1 or no CONFIG_USERFAULTFD)";
  case ENOSYS:
    return " (not implemented: valgrind, gVisor, or no CONFIG_USERFAULTFD)";
  default:
    return "";
  }
}

static void record(ugc_uffd_attempt *a, ugc_uffd_path path) {
  int fd = ugc_uffd_open_path(path, 0);
  a->state = fd >= 0             ? UGC_ATTEMPT_OK
             : fd == -EOPNOTSUPP ? UGC_ATTEMPT_DISABLED
                                 : UGC_ATTEMPT_FAILED;
  a->err = fd >= 0 ? 0 : -fd;
  if (fd >= 0)
    close(fd);
}

static void describe(char *buf, size_t len, const char *what, const ugc_uffd_attempt *a) {
  size_t used = strlen(buf);
  if (used >= len - 1)
    return;
  if (a->state == UGC_ATTEMPT_DISABLED)
    snprintf(buf + used, len - used, "%s%s: disabled by UFFDGC_DISABLE", used ? "; " : "", what);
  else if (a->state == UGC_ATTEMPT_FAILED)
    snprintf(buf + used, len - used, "%s%s: %s%s", used ? "; " : "", what, strerror(a->err),
             errno_hint(a->err));
}

/* Registers one fresh page of `addr` with `mode` on fd; returns the ioctl mask or 0. */
static uint64_t register_mask(int fd, void *addr, size_t len, uint64_t mode) {
  struct uffdio_register reg = {.range = {.start = (uintptr_t)addr, .len = len}, .mode = mode};
  if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0)
    return 0;
  struct uffdio_range range = {.start = (uintptr_t)addr, .len = len};
  ioctl(fd, UFFDIO_UNREGISTER, &range);
  return reg.ioctls;
}

static void probe_register_masks(ugc_uffd_caps *c) {
  int fd = ugc_uffd_open_path(c->open.path, 0);
  if (fd < 0)
    return;
  uint64_t want = c->kernel_features & ~(uint64_t)EVENT_FEATURES & ~(uint64_t)UFFD_FEATURE_WP_ASYNC;
  if (ugc_uffd_api(fd, want, NULL, NULL) != 0) {
    close(fd);
    return;
  }
  size_t page = ugc_page_size();
  char *anon = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (anon != MAP_FAILED) {
    c->anon_missing_ioctls = register_mask(fd, anon, page, UFFDIO_REGISTER_MODE_MISSING);
    if (c->kernel_features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)
      c->anon_wp_ioctls =
          register_mask(fd, anon, page, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP);
    munmap(anon, page);
  }
  ugc_memfd m;
  void *shm;
  if (ugc_memfd_create(&m, "uffdgc-probe", page) == 0) {
    if (ugc_memfd_map(&m, NULL, 0, page, PROT_READ | PROT_WRITE, &shm) == 0) {
      if (c->kernel_features & UFFD_FEATURE_MISSING_SHMEM)
        c->shmem_missing_ioctls = register_mask(fd, shm, page, UFFDIO_REGISTER_MODE_MISSING);
      if (c->kernel_features & UFFD_FEATURE_MINOR_SHMEM)
        c->shmem_minor_ioctls = register_mask(fd, shm, page, UFFDIO_REGISTER_MODE_MINOR);
      munmap(shm, page);
    }
    ugc_memfd_close(&m);
  }
  close(fd);
}

/* Applies UFFDGC_DISABLE to the kernel's answers. */
static void apply_masks(ugc_uffd_caps *c) {
  uint64_t mf = ugc_uffd_disabled_features(), mi = ugc_uffd_disabled_ioctls();
  c->masked_features = c->kernel_features & mf;
  c->features = c->kernel_features & ~mf;
  c->masked_ioctls = (c->api_ioctls | c->anon_missing_ioctls | c->anon_wp_ioctls |
                      c->shmem_missing_ioctls | c->shmem_minor_ioctls) &
                     mi;
  c->anon_missing_ioctls &= ~mi;
  c->anon_wp_ioctls &= ~mi;
  c->shmem_missing_ioctls &= ~mi;
  c->shmem_minor_ioctls &= ~mi;
  if (ugc_feature_disabled("wp"))
    c->anon_wp_ioctls = 0;
  if (ugc_feature_disabled("minor"))
    c->shmem_minor_ioctls = 0;
  if (ugc_feature_disabled("shmem") || ugc_feature_disabled("memfd"))
    c->shmem_missing_ioctls = c->shmem_minor_ioctls = 0;
}

static void run_probe(void) {
  ugc_uffd_caps *c = &cached;
  memset(c, 0, sizeof *c);
  cached_err = -EOPNOTSUPP;
  if (ugc_feature_disabled("uffd")) {
    c->dev.state = c->syscall.state = c->user_mode_only.state = UGC_ATTEMPT_DISABLED;
    snprintf(c->reason, sizeof c->reason, "userfaultfd disabled by UFFDGC_DISABLE=%s",
             ugc_disable_list());
    return;
  }
  const char *tool = unsupported_tool();
  if (tool) {
    snprintf(c->reason, sizeof c->reason, "running under %s, which does not support userfaultfd",
             tool);
    return;
  }
  record(&c->dev, UGC_UFFD_PATH_DEV);
  record(&c->syscall, UGC_UFFD_PATH_SYSCALL);
  record(&c->user_mode_only, UGC_UFFD_PATH_SYSCALL_USER_MODE_ONLY);

  /* The dev node exists only on kernels with userfaultfd: if the syscall then says ENOSYS,
   * something between us and the kernel (valgrind, gVisor) intercepts system calls. */
  if (c->syscall.state == UGC_ATTEMPT_FAILED && c->syscall.err == ENOSYS &&
      c->dev.state == UGC_ATTEMPT_OK) {
    snprintf(c->reason, sizeof c->reason,
             "the userfaultfd syscall answers ENOSYS although the kernel has /dev/userfaultfd: "
             "running under a system-call emulator (valgrind, gVisor) without userfaultfd");
    cached_err = -ENOSYS;
    return;
  }
  int fd = ugc_uffd_open(UGC_UFFD_ALLOW_USER_MODE_ONLY, &c->open);
  if (fd < 0) {
    strcpy(c->reason, "");
    describe(c->reason, sizeof c->reason, "/dev/userfaultfd", &c->dev);
    describe(c->reason, sizeof c->reason, "userfaultfd syscall", &c->syscall);
    describe(c->reason, sizeof c->reason, "user-mode-only syscall", &c->user_mode_only);
    if (!c->reason[0])
      snprintf(c->reason, sizeof c->reason, "no way to open a userfaultfd");
    cached_err = fd;
    return;
  }
  int rc = ugc_uffd_api(fd, 0, &c->kernel_features, &c->api_ioctls);
  close(fd);
  if (rc != 0) {
    snprintf(c->reason, sizeof c->reason, "UFFDIO_API failed: %s", strerror(-rc));
    cached_err = rc;
    return;
  }
  c->available = true;
  cached_err = 0;
  probe_register_masks(c);
  apply_masks(c);
}

const ugc_uffd_caps *ugc_uffd_caps_get(void) {
  pthread_once(&probe_once, run_probe);
  return &cached;
}

int ugc_uffd_probe(ugc_uffd_caps *out) {
  const ugc_uffd_caps *c = ugc_uffd_caps_get();
  if (out)
    *out = *c;
  return cached_err;
}
