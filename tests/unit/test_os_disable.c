/* UFFDGC_DISABLE is parsed once; unknown names get one warning naming the token; the thp
 * name turns MADV_HUGEPAGE into MADV_NOHUGEPAGE. Each case runs in a child process because
 * the variable is read only once per process. */
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/disable.h"
#include "os/madvise.h"
#include "os/reserve.h"
#include "test.h"

/* Runs this program with argv[1] = mode and UFFDGC_DISABLE = value; captures stderr. */
static int run_child(const char *self, const char *mode, const char *value, char *err,
                     size_t errlen) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    if (value)
      setenv("UFFDGC_DISABLE", value, 1);
    else
      unsetenv("UFFDGC_DISABLE");
    execl(self, self, mode, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  size_t got = 0;
  ssize_t n;
  while (got < errlen - 1 && (n = read(fds[0], err + got, errlen - 1 - got)) > 0)
    got += (size_t)n;
  err[got] = 0;
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int child_main(const char *mode) {
  if (strcmp(mode, "parse") == 0) {
    CHECK(ugc_feature_disabled("move"));
    CHECK(ugc_feature_disabled("thp"));
    CHECK(ugc_feature_disabled("user_mode_only"));
    CHECK(!ugc_feature_disabled("wp"));
    CHECK(!ugc_feature_disabled("bogus"));
    CHECK(!ugc_feature_disabled("mov")); /* whole tokens only */
    CHECK(ugc_feature_disabled("move")); /* asking again does not warn again */
    CHECK(strcmp(ugc_disable_list(), " move, bogus,,thp ,user_mode_only") == 0);
    /* thp: hugepage advice becomes nohugepage. */
    size_t len = 4 * UGC_MiB;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    ugc_madvise_stats st;
    CHECK(ugc_madv_hugepage(p, len) == 0);
    ugc_madvise_get_stats(&st);
    CHECK_EQ_U64(st.hugepage_calls, 0);
    CHECK_EQ_U64(st.nohugepage_calls, 1);
    munmap(p, len);
  } else if (strcmp(mode, "unset") == 0) {
    CHECK(!ugc_feature_disabled("move"));
    CHECK(strcmp(ugc_disable_list(), "") == 0);
  }
  TEST_DONE();
}

int main(int argc, char **argv) {
  if (argc > 1)
    return child_main(argv[1]);

  char err[4096];
  CHECK(run_child(argv[0], "parse", " move, bogus,,thp ,user_mode_only", err, sizeof err) == 0);
  fputs(err, stderr);
  CHECK(strstr(err, "uffdgc: warning: UFFDGC_DISABLE: unknown name 'bogus'") != NULL);
  char *first = strstr(err, "'bogus'");
  CHECK(first && !strstr(first + 1, "'bogus'")); /* warned once */
  CHECK(run_child(argv[0], "unset", NULL, err, sizeof err) == 0);
  CHECK(err[0] == 0);

  /* Known names. */
  CHECK(ugc_feature_name_known("dontunmap") && ugc_feature_name_known("sigsegv"));
  CHECK(!ugc_feature_name_known("all"));

  /* Counters of the madvise helpers (this process: no UFFDGC_DISABLE expected). */
  if (!ugc_feature_disabled("thp")) {
    size_t len = 4 * UGC_MiB;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    memset(p, 3, len);
    CHECK(ugc_madv_dontneed(p, len) == 0);
    CHECK(p[0] == 0 && p[len - 1] == 0);
    CHECK(ugc_madv_dontfork(p, len) == 0);
    CHECK(ugc_madv_hugepage(p, len) == 0);
    CHECK(ugc_madv_nohugepage(p, len) == 0);
    CHECK(ugc_madv_dontneed((void *)1, len) != 0); /* unaligned: EINVAL */
    ugc_madvise_stats st;
    ugc_madvise_get_stats(&st);
    CHECK_EQ_U64(st.dontneed_calls, 2);
    CHECK_EQ_U64(st.dontneed_bytes, 2 * len);
    CHECK_EQ_U64(st.dontfork_calls, 1);
    CHECK_EQ_U64(st.hugepage_calls, 1);
    CHECK_EQ_U64(st.nohugepage_calls, 1);
    CHECK_EQ_U64(st.failures, 1);
    munmap(p, len);
  }
  TEST_DONE();
}
