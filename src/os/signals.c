#include "os/signals.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* Signals the kernel forces on the thread that caused them: blocking one does not defer
 * it, it kills the process without running any handler. */
static const int synchronous_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};

static void fill_but_synchronous(sigset_t *mask, int keep_blocked) {
  sigfillset(mask);
  for (size_t i = 0; i < sizeof synchronous_signals / sizeof synchronous_signals[0]; i++)
    if (synchronous_signals[i] != keep_blocked)
      sigdelset(mask, synchronous_signals[i]);
}

int ugc_signal_install(int sig, ugc_siginfo_handler handler, struct sigaction *prev) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  /* No SA_ONSTACK: an embedder's alternate signal stack may be sized for a crash report
   * only; the thread's own stack holds our small frame (the page buffer is elsewhere). */
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  fill_but_synchronous(&sa.sa_mask, sig);
  return sigaction(sig, &sa, prev) == 0 ? 0 : -errno;
}

bool ugc_signal_is_handler(const struct sigaction *action, ugc_siginfo_handler handler) {
  return (action->sa_flags & SA_SIGINFO) && action->sa_sigaction == handler;
}

void ugc_signal_default_action(int sig, siginfo_t *info) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  /* Send it again, with its siginfo (a core dump then names the faulting address). It is
   * blocked while we run, so it is delivered right after the handler returns: before a
   * hardware fault could repeat, and also for a signal that was only sent and would not. */
  if (syscall(SYS_rt_tgsigqueueinfo, getpid(), (pid_t)syscall(SYS_gettid), sig, info) != 0)
    raise(sig);
}

void ugc_signal_chain(int sig, siginfo_t *info, void *ucontext, const struct sigaction *prev) {
  int saved_errno = errno;
  if (prev->sa_handler == SIG_IGN && !(prev->sa_flags & SA_SIGINFO)) {
    if (ugc_signal_is_hardware_fault(info))
      ugc_signal_default_action(sig, info);
  } else if (prev->sa_handler == SIG_DFL && !(prev->sa_flags & SA_SIGINFO)) {
    ugc_signal_default_action(sig, info);
  } else {
    /* Run the previous handler with the mask the kernel would have given it: the
     * interrupted code's mask plus its sa_mask (ours blocks nearly everything). */
    sigset_t mask, old;
    if (ucontext)
      memcpy(&mask, &((ucontext_t *)ucontext)->uc_sigmask, sizeof mask);
    else
      pthread_sigmask(SIG_BLOCK, NULL, &mask);
    for (int s = 1; s < NSIG; s++)
      if (sigismember(&prev->sa_mask, s) == 1)
        sigaddset(&mask, s);
    if (!(prev->sa_flags & SA_NODEFER))
      sigaddset(&mask, sig);
    pthread_sigmask(SIG_SETMASK, &mask, &old);
    if (prev->sa_flags & SA_SIGINFO)
      prev->sa_sigaction(sig, info, ucontext);
    else
      prev->sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  errno = saved_errno;
}

int ugc_signal_unblock_here(int sig) {
  sigset_t current;
  if (pthread_sigmask(SIG_BLOCK, NULL, &current) != 0 || sigismember(&current, sig) != 1)
    return 0;
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  pthread_sigmask(SIG_UNBLOCK, &one, NULL);
  return 1;
}

int ugc_thread_create_quiet(pthread_t *thread, void *(*fn)(void *), void *arg, const char *name) {
  sigset_t quiet, old;
  fill_but_synchronous(&quiet, 0);
  pthread_sigmask(SIG_SETMASK, &quiet, &old);
  int rc = pthread_create(thread, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == 0 && name)
    pthread_setname_np(*thread, name);
  return rc;
}
