/* SIGSEGV delivery for backends that protect heap pages (the sigsegv backend): the thread
 * that touches a PROT_NONE page of a registered range gets SIGSEGV with si_code
 * SEGV_ACCERR and si_addr = the address, builds the page itself and retries the access
 * when the handler returns. One process-wide handler dispatches to the callbacks of the
 * registered ranges; everything else (SEGV_MAPERR and other si_codes, signals sent with
 * kill(), addresses outside every range, faults a callback declines) goes on to the
 * handler installed before ours, so crash reporters and sanitizers keep working.
 *
 * The handler runs with every asynchronous signal blocked (os/signals.h). Callbacks must
 * be async-signal-safe and must never touch a protected page of a range themselves: a
 * SIGSEGV inside the handler kills the process. */
#ifndef UGC_BACKEND_SEGV_DISPATCH_H
#define UGC_BACKEND_SEGV_DISPATCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* What a callback answers. */
enum {
  UGC_SEGV_HANDLED = 0,  /* resolved: the access is retried */
  UGC_SEGV_NOT_MINE = 1, /* pass the signal on to the previous handler */
  /* No fault of the range is being resolved now (a stale fault after the work ended): the
   * access is retried only if the page can be read now, else the signal is passed on. */
  UGC_SEGV_IDLE = 2,
};

/* Resolves the access fault at addr. Returns one of the values above. */
typedef int (*ugc_segv_fn)(void *ctx, void *addr);

/* Ranges registered at once (one per heap using the sigsegv backend). */
#define UGC_SEGV_MAX_RANGES 256

/* Routes access faults in [start, start+len) to fn(ctx, addr), installing the handler the
 * first time. Safe while other threads fault. A slot id >= 0, or -errno (-ENOSPC: full). */
int ugc_segv_add_range(void *start, size_t len, ugc_segv_fn fn, void *ctx);

/* Removes a range and waits until no handler still runs its callback. */
void ugc_segv_remove_range(int id);

/* True if a registered range contains addr. */
bool ugc_segv_covers(const void *addr);

/* Puts our handler back in front if somebody replaced it since (the replacement then gets
 * the signals that are not ours). 1 if it had to, 0 if not, -errno. Not signal-safe. */
int ugc_segv_keep_first(void);

/* The dispatcher without the chaining, for an embedder's SIGSEGV handler that runs before
 * ours: true if the signal was an access fault in a registered range and is resolved.
 * Async-signal-safe. */
bool ugc_segv_claim(int sig, siginfo_t *info, void *ucontext);

#endif
