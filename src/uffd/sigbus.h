/* SIGBUS-mode fault delivery (UFFD_FEATURE_SIGBUS): the faulting thread gets SIGBUS with
 * si_code BUS_ADRERR and si_addr = the address, resolves the page itself (e.g. UFFDIO_COPY)
 * and retries the access when the handler returns. One process-wide handler dispatches to
 * the callbacks of registered address ranges; everything else (other si_codes such as the
 * hardware-poison BUS_MCEERR_*, signals sent with kill(), addresses outside every range,
 * faults a callback declines) goes to the handler installed before ours.
 *
 * The handler runs with every asynchronous signal blocked, SIGBUS included: a callback
 * must never touch an unresolved page of a SIGBUS-mode range itself, because a fault with
 * SIGBUS blocked kills the process. Callbacks must be async-signal-safe. */
#ifndef UGC_UFFD_SIGBUS_H
#define UGC_UFFD_SIGBUS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* What a callback answers. */
enum {
  UGC_SIGBUS_HANDLED = 0,  /* resolved: the access is retried */
  UGC_SIGBUS_NOT_MINE = 1, /* pass the signal on to the previous handler */
  /* No fault of the range is being resolved now (a fault raced with the end of the work,
   * or the signal has another cause). The dispatcher retries the access only if the page
   * can be read now, and passes the signal on otherwise: never a retry loop. */
  UGC_SIGBUS_IDLE = 2,
};

/* Resolve the fault at addr. is_write: 1 write, 0 read, -1 unknown. `page_buffer` is
 * UGC_SIGBUS_BUFFER_BYTES of scratch memory that belongs to this handler invocation (not on
 * the thread's stack). Returns one of the values above. */
typedef int (*ugc_sigbus_fn)(void *ctx, void *addr, int is_write, void *page_buffer);

#define UGC_SIGBUS_BUFFER_BYTES 4096

/* Ranges registered at once: the table grows in chunks that are never freed, so the
 * handler reads it without locks. */
#define UGC_SIGBUS_MAX_RANGES 16384

/* Installs the process-wide handler once (idempotent, thread-safe). -EOPNOTSUPP when
 * UFFDGC_DISABLE has "sigbus". 0 or -errno. */
int ugc_sigbus_install(void);

/* Routes faults in [start, start+len) to fn(ctx, ...), installing the handler if needed.
 * Safe while other threads fault. Returns a slot id >= 0, or -errno (-ENOSPC: table full). */
int ugc_sigbus_add_range(void *start, size_t len, ugc_sigbus_fn fn, void *ctx);

/* Removes a range and waits until no handler is still running its callback, so ctx may be
 * freed afterwards. Never call it from the range's own callback. */
void ugc_sigbus_remove_range(int id);

/* True if a registered range contains addr. */
bool ugc_sigbus_covers(const void *addr);

/* Puts our handler back in front if somebody replaced it (sigaction) since it was
 * installed; the replacement then gets the signals that are not ours. 1 if it had to,
 * 0 if it was in place, -errno. Not async-signal-safe; cheap (one sigaction call). */
int ugc_sigbus_keep_first(void);

/* Prepares the calling thread to resolve faults in its handler: gives it its page buffer
 * (freed at thread exit) and unblocks SIGBUS if the thread blocks it. Returns a mask of
 * what it did (UGC_SIGBUS_THREAD_*), or -errno if the buffer could not be allocated (the
 * thread then shares one buffer with other such threads). */
#define UGC_SIGBUS_THREAD_UNBLOCKED 1
int ugc_sigbus_prepare_thread(void);

/* The dispatcher without the chaining, for embedders whose own SIGBUS handler runs before
 * ours: true if the signal was a fault in a registered range and is resolved (the access
 * may be retried). Async-signal-safe. */
bool ugc_sigbus_claim(int sig, siginfo_t *info, void *ucontext);

/* Number of SIGBUS signals dispatched to callbacks and chained to the previous handler. */
void ugc_sigbus_get_stats(unsigned long *dispatched, unsigned long *chained);

#endif
