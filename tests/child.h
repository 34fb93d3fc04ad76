/* Running a piece of a test in a child process and reading what it wrote to stderr: for
 * misuse that must abort with a message, and for limits (rlimits) that must not leak into
 * the rest of the test. */
#ifndef UGC_TEST_CHILD_H
#define UGC_TEST_CHILD_H
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

/* Runs fn(data) in a child (exit status 0 when it returns), its stderr into text[size];
 * returns the wait status. */
static inline int child_run(void (*fn)(void *), void *data, char *text, size_t size) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    fn(data);
    _exit(0);
  }
  close(fds[1]);
  memset(text, 0, size);
  size_t got = 0;
  ssize_t r;
  char drain[512];
  while ((r = got + 1 < size ? read(fds[0], text + got, size - 1 - got)
                             : read(fds[0], drain, sizeof drain)) > 0)
    if (got + 1 < size)
      got += (size_t)r;
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  return status;
}

/* fn must abort with a message containing `fragment`. */
static inline void expect_abort_with(void (*fn)(void *), void *data, const char *fragment) {
  char text[2048];
  int status = child_run(fn, data, text, sizeof text);
  if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) || !strstr(text, fragment)) {
    fprintf(stderr, "expected an abort saying \"%s\"; status 0x%x, stderr: %s\n", fragment, status,
            text);
    ugc_test_failures++;
  }
}

#endif
