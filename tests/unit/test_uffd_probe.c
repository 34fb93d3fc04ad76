/* The probe agrees with a raw UFFDIO_API, caches, reports register masks, and UFFDGC_DISABLE
 * masks features and ioctls (child processes: the variable is read once per process). */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/availability.h"
#include "os/reserve.h"
#include "uffd/uffd.h"
#include "uffdgc.h"
#include "test.h"

#define BIT(nr) UGC_UFFD_IOCTL_BIT(nr)

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

static bool kernel_at_least(int major, int minor) {
  struct utsname u;
  int ma = 0, mi = 0;
  if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
    return false;
  return ma > major || (ma == major && mi >= minor);
}

static int child_main(const char *mode) {
  /* Set before the first probe: it is what valgrind's launcher puts there. */
  if (strcmp(mode, "valgrind") == 0)
    setenv("LD_PRELOAD", "/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so", 1);
  ugc_uffd_caps c;
  int rc = ugc_uffd_probe(&c);
  if (strcmp(mode, "mask") == 0) { /* UFFDGC_DISABLE=move,minor,sigbus */
    REQUIRE(rc == 0);
    CHECK(!(c.features & UFFD_FEATURE_MOVE) && (c.masked_features & UFFD_FEATURE_MOVE));
    CHECK(!(c.features & (UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_MINOR_HUGETLBFS)));
    CHECK(!(c.features & UFFD_FEATURE_SIGBUS));
    CHECK(c.kernel_features & UFFD_FEATURE_MOVE); /* the raw answer is kept */
    CHECK(!(c.anon_missing_ioctls & BIT(_UFFDIO_MOVE)));
    CHECK(c.masked_ioctls & BIT(_UFFDIO_MOVE));
    CHECK(c.shmem_minor_ioctls == 0);
    CHECK(c.anon_missing_ioctls & BIT(_UFFDIO_COPY));
    char why[256];
    CHECK(ugc_backend_availability("move", why, sizeof why) == 0);
    CHECK(strstr(why, "UFFDGC_DISABLE") != NULL);
    CHECK(ugc_backend_availability("minor", why, sizeof why) == 0);
    CHECK(ugc_backend_availability("copy", why, sizeof why) == 1);
    /* A handshake asking for MOVE gets what is allowed only; MINOR registration refused. */
    ugc_uffd u;
    REQUIRE(ugc_uffd_create(&u, UFFD_FEATURE_MOVE | UFFD_FEATURE_THREAD_ID,
                            UGC_UFFD_ALLOW_USER_MODE_ONLY) == 0);
    CHECK(u.features == UFFD_FEATURE_THREAD_ID);
    size_t page = ugc_page_size();
    char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    CHECK(ugc_uffd_register(&u, p, page, UGC_UFFD_REG_MINOR, 0, NULL) == -EOPNOTSUPP);
    CHECK(ugc_uffd_register(&u, p, page, UGC_UFFD_REG_MISSING, BIT(_UFFDIO_MOVE), NULL) ==
          -EOPNOTSUPP);
    CHECK(ugc_uffd_register(&u, p, page, UGC_UFFD_REG_MISSING, 0, NULL) == 0);
    ugc_uffd_close(&u);
  } else if (strcmp(mode, "off") == 0) { /* UFFDGC_DISABLE=uffd */
    CHECK(rc != 0 && !c.available);
    CHECK(strstr(c.reason, "UFFDGC_DISABLE") != NULL);
    ugc_uffd u;
    CHECK(ugc_uffd_create(&u, 0, 0) != 0 && u.fd == -1);
    char why[256];
    CHECK(ugc_backend_availability("copy", why, sizeof why) == 0);
    CHECK(strstr(why, "userfaultfd unavailable") != NULL);
    CHECK(ugc_backend_availability("stw", why, sizeof why) == 1);
  } else if (strcmp(mode, "paths") == 0) { /* UFFDGC_DISABLE=dev,syscall */
    CHECK(rc != 0 && !c.available);
    CHECK(c.dev.state == UGC_ATTEMPT_DISABLED && c.syscall.state == UGC_ATTEMPT_DISABLED);
    CHECK(strstr(c.reason, "disabled by UFFDGC_DISABLE") != NULL);
  } else if (strcmp(mode, "minor") == 0 || strcmp(mode, "shmem") == 0) {
    /* UFFDGC_DISABLE=minor (MINOR_SHMEM masked) or shmem (userfaultfd on shmem masked): the
     * minor backend is unavailable and says why; auto never picks it; copy is unaffected. */
    REQUIRE(rc == 0);
    CHECK(!(c.features & UFFD_FEATURE_MINOR_SHMEM) &&
          (c.masked_features & UFFD_FEATURE_MINOR_SHMEM));
    char why[256];
    CHECK(ugc_backend_availability("minor", why, sizeof why) == 0);
    printf("minor with UFFDGC_DISABLE=%s: %s\n", mode, why);
    CHECK(strstr(why, "MINOR_SHMEM") != NULL && strstr(why, "masked by UFFDGC_DISABLE") != NULL);
    CHECK(ugc_backend_availability("copy", why, sizeof why) == 1);
    ugc_config config;
    ugc_config_init(&config);
    config.heap_max = (size_t)64 << 20;
    config.backend = "minor";
    ugc_error error;
    ugc_heap *heap = ugc_heap_create(&config, &error);
    CHECK(heap == NULL && error.code == UGC_ERR_UNAVAILABLE);
    CHECK(heap == NULL && strstr(error.message, "MINOR_SHMEM") != NULL);
    config.backend = "auto";
    heap = ugc_heap_create(&config, &error);
    REQUIRE(heap != NULL);
    CHECK(strcmp(ugc_heap_backend(heap), "minor") != 0);
    ugc_heap_destroy(heap);
  } else if (strcmp(mode, "valgrind") == 0) { /* LD_PRELOAD names vgpreload */
    CHECK(rc != 0 && strstr(c.reason, "valgrind") != NULL);
  }
  TEST_DONE();
}

int main(int argc, char **argv) {
  if (argc > 1)
    return child_main(argv[1]);
  ugc_uffd_caps c;
  int rc = ugc_uffd_probe(&c);
  /* Masking must work even where userfaultfd is missing. */
  CHECK(run_child(argv[0], "off", "uffd") == 0);
  CHECK(run_child(argv[0], "paths", "dev,syscall") == 0);
  if (rc != 0)
    SKIP("userfaultfd unavailable: %s", c.reason);

  CHECK(c.available && c.reason[0] == 0);
  CHECK(c.features == (c.kernel_features & ~ugc_uffd_disabled_features()));
  CHECK(c.masked_features == (c.kernel_features & ugc_uffd_disabled_features()));
  printf("features 0x%llx via %s\n", (unsigned long long)c.kernel_features,
         ugc_uffd_path_name(c.open.path));

  /* Same answer as a raw handshake on our own descriptor. */
  int fd = ugc_uffd_open(UGC_UFFD_ALLOW_USER_MODE_ONLY, NULL);
  REQUIRE(fd >= 0);
  struct uffdio_api api = {.api = UFFD_API, .features = 0};
  REQUIRE(ioctl(fd, UFFDIO_API, &api) == 0);
  CHECK_EQ_U64(api.features, c.kernel_features);
  CHECK_EQ_U64(api.ioctls, c.api_ioctls);
  /* A second handshake is refused. It asks for no feature: the first answer lists
   * EVENT_FORK, which an unprivileged caller is refused (EPERM) before the state check. */
  api.features = 0;
  CHECK(ioctl(fd, UFFDIO_API, &api) == -1 && errno == EINVAL);
  close(fd);

  if (kernel_at_least(6, 8))
    CHECK_EQ_U64(c.kernel_features & 0x1ffff, 0x1ffff);
  CHECK(c.api_ioctls & BIT(_UFFDIO_REGISTER));
  CHECK((c.anon_missing_ioctls & (BIT(_UFFDIO_COPY) | BIT(_UFFDIO_ZEROPAGE) | BIT(_UFFDIO_WAKE))) ==
        (BIT(_UFFDIO_COPY) | BIT(_UFFDIO_ZEROPAGE) | BIT(_UFFDIO_WAKE)));
  CHECK(!(c.anon_missing_ioctls & BIT(_UFFDIO_CONTINUE))); /* only with MODE_MINOR */
  if (c.features & UFFD_FEATURE_MOVE)
    CHECK(c.anon_missing_ioctls & BIT(_UFFDIO_MOVE));
  if (c.features & UFFD_FEATURE_MINOR_SHMEM)
    CHECK(c.shmem_minor_ioctls & BIT(_UFFDIO_CONTINUE));
  if (c.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)
    CHECK(c.anon_wp_ioctls & BIT(_UFFDIO_WRITEPROTECT));

  CHECK(ugc_uffd_caps_get() == ugc_uffd_caps_get()); /* cached */
  CHECK(strcmp(ugc_uffd_feature_name(16), "MOVE") == 0 && ugc_uffd_feature_name(40) == NULL);
  CHECK(strcmp(ugc_uffd_ioctl_name(_UFFDIO_MOVE), "MOVE") == 0);

  CHECK(run_child(argv[0], "mask", "move,minor,sigbus") == 0);
  char reason[256];
  if (ugc_backend_availability("minor", reason, sizeof reason) == 1) {
    CHECK(run_child(argv[0], "minor", "minor") == 0);
    CHECK(run_child(argv[0], "shmem", "shmem") == 0);
  } else {
    printf("minor backend unavailable here (%s): its masking is not checked\n", reason);
  }
  /* valgrind is recognised from its preload library. */
  CHECK(run_child(argv[0], "valgrind", "") == 0);
  TEST_DONE();
}
