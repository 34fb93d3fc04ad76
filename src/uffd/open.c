/* Opening a userfaultfd: the dev node skips the capability check (it relies on the node's
 * permissions), the syscall needs CAP_SYS_PTRACE or vm.unprivileged_userfaultfd, and
 * UFFD_USER_MODE_ONLY works unprivileged but makes kernel-mode accesses fail with EFAULT. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os/disable.h"
#include "uffd/uffd.h"

#ifndef SYS_userfaultfd
#define SYS_userfaultfd 323 /* x86_64 */
#endif

static int open_dev(int fd_flags) {
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev < 0)
    return -errno;
  int fd = ioctl(dev, USERFAULTFD_IOC_NEW, fd_flags);
  int err = errno;
  close(dev);
  return fd >= 0 ? fd : -err;
}

static int open_syscall(int fd_flags) {
  long fd = syscall(SYS_userfaultfd, fd_flags);
  return fd >= 0 ? (int)fd : -errno;
}

int ugc_uffd_open_path(ugc_uffd_path path, unsigned flags) {
  int fd_flags = O_CLOEXEC | ((flags & UGC_UFFD_NONBLOCK) ? O_NONBLOCK : 0);
  if (ugc_feature_disabled("uffd"))
    return -EOPNOTSUPP;
  switch (path) {
  case UGC_UFFD_PATH_DEV:
    return ugc_feature_disabled("dev") ? -EOPNOTSUPP : open_dev(fd_flags);
  case UGC_UFFD_PATH_SYSCALL:
    return ugc_feature_disabled("syscall") ? -EOPNOTSUPP : open_syscall(fd_flags);
  case UGC_UFFD_PATH_SYSCALL_USER_MODE_ONLY:
    /* A syscall too: "syscall" masks it as well as "user_mode_only". */
    if (ugc_feature_disabled("syscall") || ugc_feature_disabled("user_mode_only"))
      return -EOPNOTSUPP;
    return open_syscall(fd_flags | UFFD_USER_MODE_ONLY);
  default:
    return -EINVAL;
  }
}

/* Runs one attempt and records its outcome. */
static int attempt(ugc_uffd_attempt *a, ugc_uffd_path path, unsigned flags) {
  int fd = ugc_uffd_open_path(path, flags);
  if (fd >= 0)
    a->state = UGC_ATTEMPT_OK;
  else if (fd == -EOPNOTSUPP)
    a->state = UGC_ATTEMPT_DISABLED;
  else
    a->state = UGC_ATTEMPT_FAILED;
  a->err = fd >= 0 ? 0 : -fd;
  return fd;
}

int ugc_uffd_open(unsigned flags, ugc_uffd_open_info *how) {
  ugc_uffd_open_info local;
  if (!how)
    how = &local;
  memset(how, 0, sizeof *how);
  static const ugc_uffd_path order[] = {UGC_UFFD_PATH_DEV, UGC_UFFD_PATH_SYSCALL,
                                        UGC_UFFD_PATH_SYSCALL_USER_MODE_ONLY};
  ugc_uffd_attempt *records[] = {&how->dev, &how->syscall, &how->syscall_user_mode_only};
  int last = -EOPNOTSUPP;
  for (int i = 0; i < 3; i++) {
    if (order[i] == UGC_UFFD_PATH_SYSCALL_USER_MODE_ONLY &&
        !(flags & UGC_UFFD_ALLOW_USER_MODE_ONLY))
      break;
    int fd = attempt(records[i], order[i], flags);
    if (fd >= 0) {
      how->path = order[i];
      return fd;
    }
    if (records[i]->state == UGC_ATTEMPT_FAILED)
      last = fd;
  }
  return last;
}
