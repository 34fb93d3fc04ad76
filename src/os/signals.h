/* Installing a process-wide fault handler (SIGBUS, SIGSEGV) in front of whatever handler
 * was there before, passing on the signals that are not ours, and the signal masks of the
 * library's own threads. */
#ifndef UGC_OS_SIGNALS_H
#define UGC_OS_SIGNALS_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

typedef void (*ugc_siginfo_handler)(int sig, siginfo_t *info, void *ucontext);

/* Installs `handler` for `sig` with SA_SIGINFO|SA_RESTART and saves the previous
 * disposition in *prev (may be NULL). The handler runs with every signal blocked except the
 * synchronous fault signals (SIGSEGV, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGBUS) other than
 * `sig` itself: no profiler or interrupt handler may run inside it (it might touch a page
 * only this handler can build), while a crash inside it still reaches crash reporters. A
 * second `sig` inside the handler kills the process, by design. 0 or -errno. */
int ugc_signal_install(int sig, ugc_siginfo_handler handler, struct sigaction *prev);

/* True if the disposition `action` is `handler` (installed by ugc_signal_install). */
bool ugc_signal_is_handler(const struct sigaction *action, ugc_siginfo_handler handler);

/* Hands a signal we do not own to the disposition `prev`, as the kernel would have:
 * SA_SIGINFO or plain handler called with the mask of the interrupted code plus its
 * sa_mask; SIG_DFL restores the default action and sends the signal again with the same
 * siginfo, so it takes effect when the handler returns; SIG_IGN ignores signals sent by
 * kill() but treats a hardware fault like SIG_DFL, as the kernel does for a forced signal.
 * Async-signal-safe. */
void ugc_signal_chain(int sig, siginfo_t *info, void *ucontext, const struct sigaction *prev);

/* Runs the default action of `sig` for this signal (see ugc_signal_chain). */
void ugc_signal_default_action(int sig, siginfo_t *info);

/* True if `info` describes a fault raised by the kernel (not kill()/sigqueue()). */
static inline int ugc_signal_is_hardware_fault(const siginfo_t *info) {
  return info->si_code > 0;
}

/* Unblocks `sig` for the calling thread if it was blocked. 1 if it was, 0 if not. */
int ugc_signal_unblock_here(int sig);

/* Creates a thread for the library's own work with every asynchronous signal blocked, so
 * the process's signals (timers, SIGINT, an interpreter's interrupts) never run the
 * embedder's handlers there; the synchronous fault signals stay open, as in
 * ugc_signal_install. Names it `name` (at most 15 characters, shown in /proc). 0 or an
 * error number, like pthread_create. */
int ugc_thread_create_quiet(pthread_t *thread, void *(*fn)(void *), void *arg, const char *name);

#endif
