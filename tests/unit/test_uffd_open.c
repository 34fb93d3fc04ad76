/* Each open path on its own, the fallback order, and masking of paths by UFFDGC_DISABLE
 * (checked in child processes: the variable is read once per process). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/disable.h"
#include "uffd/uffd.h"
#include "test.h"

static int run_child(const char *self, const char *mode, const char *disable) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setenv("UFFDGC_DISABLE", disable, 1);
    execl(self, self, mode, (char *)NULL);
    _exit(127);
  }
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void check_fd(int fd, bool nonblock) {
  REQUIRE(fd >= 0);
  CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  CHECK(!!(fcntl(fd, F_GETFL) & O_NONBLOCK) == nonblock);
  close(fd);
}

static int child_main(const char *mode) {
  ugc_uffd_open_info how;
  int fd = ugc_uffd_open(UGC_UFFD_ALLOW_USER_MODE_ONLY, &how);
  if (strcmp(mode, "no-dev") == 0) {
    CHECK(how.dev.state == UGC_ATTEMPT_DISABLED);
    CHECK(how.path == UGC_UFFD_PATH_SYSCALL);
    check_fd(fd, false);
  } else if (strcmp(mode, "umo-only") == 0) {
    CHECK(how.dev.state == UGC_ATTEMPT_DISABLED && how.syscall.state == UGC_ATTEMPT_DISABLED);
    /* "syscall" masks the user-mode-only syscall too */
    CHECK(how.syscall_user_mode_only.state == UGC_ATTEMPT_DISABLED);
    CHECK(fd == -EOPNOTSUPP);
  } else if (strcmp(mode, "none") == 0) {
    CHECK(fd == -EOPNOTSUPP && how.path == UGC_UFFD_PATH_NONE);
    CHECK(ugc_uffd_open_path(UGC_UFFD_PATH_DEV, 0) == -EOPNOTSUPP);
  }
  TEST_DONE();
}

int main(int argc, char **argv) {
  if (argc > 1)
    return child_main(argv[1]);
  if (ugc_uffd_probe(NULL) != 0)
    SKIP("userfaultfd unavailable: %s", ugc_uffd_caps_get()->reason);
  const ugc_uffd_caps *caps = ugc_uffd_caps_get();

  /* Every path that the probe found working opens on its own. */
  static const ugc_uffd_path paths[] = {UGC_UFFD_PATH_DEV, UGC_UFFD_PATH_SYSCALL,
                                        UGC_UFFD_PATH_SYSCALL_USER_MODE_ONLY};
  const ugc_uffd_attempt *found[] = {&caps->dev, &caps->syscall, &caps->user_mode_only};
  for (int i = 0; i < 3; i++) {
    int fd = ugc_uffd_open_path(paths[i], UGC_UFFD_NONBLOCK);
    printf("%-24s %s\n", ugc_uffd_path_name(paths[i]), fd >= 0 ? "ok" : strerror(-fd));
    if (found[i]->state == UGC_ATTEMPT_OK)
      check_fd(fd, true);
    else
      CHECK(fd < 0 && -fd == found[i]->err);
  }
  CHECK(ugc_uffd_open_path(UGC_UFFD_PATH_NONE, 0) == -EINVAL);

  /* The default order prefers the dev node, and records every attempt made. */
  ugc_uffd_open_info how;
  int fd = ugc_uffd_open(0, &how);
  if (caps->dev.state != UGC_ATTEMPT_OK && caps->syscall.state != UGC_ATTEMPT_OK) {
    /* Unprivileged under vm.unprivileged_userfaultfd=0: only the user-mode-only path works,
     * and it was not allowed here. */
    printf("without UGC_UFFD_ALLOW_USER_MODE_ONLY: %s\n", strerror(-fd));
    CHECK(fd < 0 && how.path == UGC_UFFD_PATH_NONE);
  } else {
    check_fd(fd, false);
  }
  if (caps->dev.state == UGC_ATTEMPT_OK) {
    CHECK(how.path == UGC_UFFD_PATH_DEV);
    CHECK(how.syscall.state == UGC_ATTEMPT_NOT_TRIED);
  }
  CHECK(how.syscall_user_mode_only.state == UGC_ATTEMPT_NOT_TRIED ||
        how.path != UGC_UFFD_PATH_SYSCALL_USER_MODE_ONLY);

  if (caps->syscall.state == UGC_ATTEMPT_OK)
    CHECK(run_child(argv[0], "no-dev", "dev") == 0);
  CHECK(run_child(argv[0], "umo-only", "dev,syscall") == 0);
  CHECK(run_child(argv[0], "none", "uffd") == 0);
  TEST_DONE();
}
