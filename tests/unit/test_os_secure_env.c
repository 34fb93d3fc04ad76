/* A setuid embedder's caller must not configure the library through the environment:
 * under secure execution (AT_SECURE) the UFFDGC_* variables are ignored and fault injection
 * (UFFDGC_INJECT) is off. The test runs a setuid copy of itself (owner: nobody), which
 * makes the kernel set AT_SECURE; it needs root for the chown and a filesystem without
 * nosuid. Without secure execution, the same variables do take effect. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/disable.h"
#include "os/inject.h"
#include "test.h"
#include "uffdgc.h"

/* Exit status: 0 when the environment was ignored, 10 + n when the n-th variable acted. */
static int child_main(void) {
  if (!getauxval(AT_SECURE))
    return 2;
  ugc_error error;
  ugc_heap *heap = ugc_heap_create(NULL, &error);
  if (!heap) {
    fprintf(stderr, "%s\n", error.message);
    return 11; /* UFFDGC_HEAP_MAX=bogus was read */
  }
  ugc_heap_destroy(heap);
  if (ugc_inject("copy.mremap"))
    return 12;
  if (ugc_feature_disabled("thp"))
    return 13;
  return 0;
}

static int run(const char *path, bool expect_secure) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setenv("UFFDGC_HEAP_MAX", "bogus", 1);
    setenv("UFFDGC_INJECT", "copy.mremap", 1);
    setenv("UFFDGC_DISABLE", "thp", 1);
    execl(path, path, expect_secure ? "secure" : "plain", (char *)NULL);
    _exit(127);
  }
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool copy_file(const char *from, const char *to) {
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (in < 0 || out < 0)
    return false;
  char buffer[65536];
  ssize_t got;
  bool ok = true;
  while ((got = read(in, buffer, sizeof buffer)) > 0)
    ok = ok && write(out, buffer, (size_t)got) == got;
  close(in);
  return close(out) == 0 && ok && got == 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "secure") == 0)
    return child_main();
  if (argc > 1 && strcmp(argv[1], "plain") == 0) {
    ugc_error error;
    ugc_heap *heap = ugc_heap_create(NULL, &error);
    return heap ? 3 : strstr(error.message, "UFFDGC_HEAP_MAX") ? 0 : 4;
  }
  /* Not secure: the variables are read (a bogus value is refused, naming it). */
  CHECK_EQ_U64(run("/proc/self/exe", false), 0);

  if (geteuid() != 0)
    SKIP("making a setuid copy of the test needs root (the plain case passed)");
#if defined(UGC_UNDER_SANITIZER)
  SKIP("the sanitizer runtime (LeakSanitizer) cannot run a setuid copy (the plain case passed)");
#endif
  char dir[] = "/tmp/ugc-secure.XXXXXX";
  REQUIRE(mkdtemp(dir));
  char path[sizeof dir + 16];
  snprintf(path, sizeof path, "%s/secure", dir);
  REQUIRE(chmod(dir, 0755) == 0);
  char self[4096];
  ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
  REQUIRE(length > 0);
  self[length] = 0;
  REQUIRE(copy_file(self, path));
  bool made = chown(path, 65534, 65534) == 0 && chmod(path, 04755) == 0;
  int status = made ? run(path, true) : -1;
  unlink(path);
  rmdir(dir);
  if (!made)
    SKIP("cannot make a setuid copy: %s", strerror(errno));
  if (status == 2)
    SKIP("the setuid copy did not run in secure execution (nosuid filesystem?)");
  printf("setuid copy: status %d (0 = every UFFDGC_* variable ignored)\n", status);
  CHECK_EQ_U64(status, 0);
  TEST_DONE();
}
