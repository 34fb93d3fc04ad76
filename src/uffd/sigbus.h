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

#include "os/signal_ranges.h"

/* What a callback answers (see os/signal_ranges.h). */
enum {
  UGC_SIGBUS_HANDLED = UGC_RANGE_HANDLED,
  UGC_SIGBUS_NOT_MINE = UGC_RANGE_NOT_MINE,
  UGC_SIGBUS_IDLE = UGC_RANGE_IDLE,
};

/* Resolve the fault at addr. is_write: 1 write, 0 read, -1 unknown. `page_buffer` is
 * UGC_SIGBUS_BUFFER_BYTES of scratch memory that belongs to this handler invocation (not on
 * the thread's stack). Returns one of the values above. */
typedef int (*ugc_sigbus_fn)(void *ctx, void *addr, int is_write, void *page_buffer);

#define UGC_SIGBUS_BUFFER_BYTES 4096

/* Ranges registered at once (the table grows in chunks, see os/signal_ranges.h). */
#define UGC_SIGBUS_MAX_RANGES (UGC_RANGE_CHUNK_SLOTS * UGC_RANGE_MAX_CHUNKS)

/* Installs the process-wide handler once (idempotent, thread-safe). -EOPNOTSUPP when
 * UFFDGC_DISABLE has "sigbus". 0 or -errno. */
int ugc_sigbus_install(void);

/* The SIGBUS table's ugc_signal_ranges_add, _remove, _covers and _keep_first (see there):
 * faults in [start, start+len) go to fn(ctx, ...). */
int ugc_sigbus_add_range(void *start, size_t len, ugc_sigbus_fn fn, void *ctx);
void ugc_sigbus_remove_range(int id);
bool ugc_sigbus_covers(const void *addr);
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
