/* Installing a process-wide fault handler (SIGBUS, SIGSEGV) in front of whatever handler
 * was there before, and passing on the signals that are not ours. */
#ifndef UGC_OS_SIGNALS_H
#define UGC_OS_SIGNALS_H

#include <signal.h>

typedef void (*ugc_siginfo_handler)(int sig, siginfo_t *info, void *ucontext);

/* Installs `handler` for `sig` with SA_SIGINFO|SA_ONSTACK|SA_RESTART (no SA_NODEFER: a
 * second fault of the same kind inside the handler kills the process, by design) and saves
 * the previous disposition in *prev. 0 or -errno. */
int ugc_signal_install(int sig, ugc_siginfo_handler handler, struct sigaction *prev);

/* Hands a signal we do not own to the previous disposition, as the kernel would have:
 * SA_SIGINFO or plain handler called with its sa_mask applied; SIG_DFL restores the default
 * action and re-raises it (a hardware fault re-faults when the handler returns); SIG_IGN
 * ignores signals sent by kill() but treats a hardware fault like SIG_DFL, as the kernel
 * does for a forced signal. Async-signal-safe. */
void ugc_signal_chain(int sig, siginfo_t *info, void *ucontext, const struct sigaction *prev);

/* True if `info` describes a fault raised by the kernel (not kill()/sigqueue()). */
static inline int ugc_signal_is_hardware_fault(const siginfo_t *info) {
  return info->si_code > 0;
}

#endif
