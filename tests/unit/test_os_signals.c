/* The handler mask (asynchronous signals blocked), the library threads' mask, and chaining
 * to the previous disposition: SA_SIGINFO and plain handlers are called, SIG_IGN
 * ignores sent signals, SIG_DFL restores the default action and re-raises. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/signals.h"
#include "test.h"

static struct sigaction prev_usr1;
static volatile sig_atomic_t info_calls, plain_calls, ours;
static volatile sig_atomic_t blocked_during_prev;

static void previous_info(int sig, siginfo_t *info, void *uc) {
  (void)uc;
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  blocked_during_prev = sigismember(&cur, SIGUSR2);
  if (sig == SIGUSR1 && info->si_code <= 0)
    info_calls++; /* raise(): SI_TKILL */
}
static void previous_plain(int sig) {
  if (sig == SIGUSR1)
    plain_calls++;
}
static volatile sig_atomic_t ours_blocked_prof, ours_blocked_segv;
static void ours_handler(int sig, siginfo_t *info, void *uc) {
  ours++;
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  ours_blocked_prof = sigismember(&cur, SIGPROF);
  ours_blocked_segv = sigismember(&cur, SIGSEGV);
  ugc_signal_chain(sig, info, uc, &prev_usr1);
}

static volatile int quiet_go; /* the name is given after pthread_create returns */
static void *quiet_thread(void *arg) {
  (void)arg;
  while (!__atomic_load_n(&quiet_go, __ATOMIC_ACQUIRE))
    sched_yield();
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  char name[16] = "";
  pthread_getname_np(pthread_self(), name, sizeof name);
  bool ok = sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGPROF) && sigismember(&cur, SIGINT) &&
            !sigismember(&cur, SIGSEGV) && !sigismember(&cur, SIGBUS) &&
            strcmp(name, "uffdgc-test") == 0;
  return (void *)(uintptr_t)ok;
}

static void set_previous(void (*h)(int), void (*sa)(int, siginfo_t *, void *)) {
  struct sigaction act;
  memset(&act, 0, sizeof act);
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, SIGUSR2);
  if (sa) {
    act.sa_sigaction = sa;
    act.sa_flags = SA_SIGINFO;
  } else {
    act.sa_handler = h;
  }
  REQUIRE(sigaction(SIGUSR1, &act, NULL) == 0);
  REQUIRE(ugc_signal_install(SIGUSR1, ours_handler, &prev_usr1) == 0);
}

int main(void) {
  set_previous(NULL, previous_info);
  raise(SIGUSR1);
  CHECK(ours == 1 && info_calls == 1);
  CHECK(blocked_during_prev); /* the previous handler's sa_mask was applied */
  /* ours runs with asynchronous signals blocked, synchronous fault signals open */
  CHECK(ours_blocked_prof && !ours_blocked_segv);

  set_previous(previous_plain, NULL);
  raise(SIGUSR1);
  CHECK(ours == 2 && plain_calls == 1);

  set_previous(SIG_IGN, NULL);
  raise(SIGUSR1); /* sent, ignored: we survive */
  CHECK(ours == 3);

  /* SIG_DFL: a sent SIGUSR1 must terminate the process with that signal. */
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    set_previous(SIG_DFL, NULL);
    raise(SIGUSR1);
    _exit(0); /* not reached */
  }
  int status;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1);

  /* The library's threads: asynchronous signals blocked, fault signals open, named. */
  pthread_t quiet;
  REQUIRE(ugc_thread_create_quiet(&quiet, quiet_thread, NULL, "uffdgc-test") == 0);
  __atomic_store_n(&quiet_go, 1, __ATOMIC_RELEASE);
  void *mask_ok;
  pthread_join(quiet, &mask_ok);
  CHECK(mask_ok == (void *)1);

  siginfo_t fake = {.si_code = SEGV_MAPERR};
  CHECK(ugc_signal_is_hardware_fault(&fake));
  fake.si_code = SI_USER;
  CHECK(!ugc_signal_is_hardware_fault(&fake));
  TEST_DONE();
}
