#include "os/signals.h"

#include <errno.h>
#include <string.h>

int ugc_signal_install(int sig, ugc_siginfo_handler handler, struct sigaction *prev) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  /* No SA_ONSTACK: the handlers build a page in a 4 KiB buffer on the faulting thread's
   * stack, which an embedder's small alternate signal stack might not hold. */
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  return sigaction(sig, &sa, prev) == 0 ? 0 : -errno;
}

/* Default action: reset and let the signal happen again. */
static void chain_to_default(int sig, const siginfo_t *info) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  /* A hardware fault repeats when we return; a sent signal must be raised again. It is
   * blocked while we run, so it is delivered (and kills) right after the return. */
  if (!ugc_signal_is_hardware_fault(info))
    raise(sig);
}

void ugc_signal_chain(int sig, siginfo_t *info, void *ucontext, const struct sigaction *prev) {
  int saved_errno = errno;
  if (prev->sa_handler == SIG_IGN && !(prev->sa_flags & SA_SIGINFO)) {
    if (ugc_signal_is_hardware_fault(info))
      chain_to_default(sig, info);
  } else if (prev->sa_handler == SIG_DFL && !(prev->sa_flags & SA_SIGINFO)) {
    chain_to_default(sig, info);
  } else {
    /* Run the previous handler with the mask it asked for, as the kernel would. */
    sigset_t mask, old;
    memcpy(&mask, &prev->sa_mask, sizeof mask);
    if (!(prev->sa_flags & SA_NODEFER))
      sigaddset(&mask, sig);
    pthread_sigmask(SIG_BLOCK, &mask, &old);
    if (prev->sa_flags & SA_SIGINFO)
      prev->sa_sigaction(sig, info, ucontext);
    else
      prev->sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  errno = saved_errno;
}
