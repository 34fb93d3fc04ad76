/* SIGBUS-mode fault delivery (UFFD_FEATURE_SIGBUS): the faulting thread gets SIGBUS with
 * si_addr = the address, resolves the page itself (e.g. UFFDIO_COPY) and retries the access
 * when the handler returns. One process-wide handler dispatches to the callbacks of
 * registered address ranges; everything else goes to the previously installed handler.
 *
 * The handler runs with SIGBUS blocked (no SA_NODEFER): a callback must never touch an
 * unresolved page of a SIGBUS-mode range itself, because a fault with SIGBUS blocked kills
 * the process. Callbacks must be async-signal-safe. */
#ifndef UGC_UFFD_SIGBUS_H
#define UGC_UFFD_SIGBUS_H

#include <stddef.h>

/* Resolve the fault at addr. is_write: 1 write, 0 read, -1 unknown. Return 0 when handled
 * (the access is retried), nonzero to pass the signal on to the previous handler. */
typedef int (*ugc_sigbus_fn)(void *ctx, void *addr, int is_write);

/* Maximum number of ranges registered at once. */
#define UGC_SIGBUS_MAX_RANGES 64

/* Installs the process-wide handler once (idempotent, thread-safe). -EOPNOTSUPP when
 * UFFDGC_DISABLE has "sigbus". 0 or -errno. */
int ugc_sigbus_install(void);

/* Routes faults in [start, start+len) to fn(ctx, ...), installing the handler if needed.
 * Safe while other threads fault. Returns a slot id >= 0, or -errno (-ENOSPC: table full). */
int ugc_sigbus_add_range(void *start, size_t len, ugc_sigbus_fn fn, void *ctx);

/* Removes a range and waits until no handler is still running its callback, so ctx may be
 * freed afterwards. Never call it from the range's own callback. */
void ugc_sigbus_remove_range(int id);

/* Number of SIGBUS signals dispatched to callbacks and chained to the previous handler. */
void ugc_sigbus_get_stats(unsigned long *dispatched, unsigned long *chained);

#endif
