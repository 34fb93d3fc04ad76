/* SIGSEGV delivery for backends that protect heap pages (the sigsegv backend): the thread
 * that touches a PROT_NONE page of a registered range gets SIGSEGV with si_code
 * SEGV_ACCERR and si_addr = the address, builds the page itself and retries the access
 * when the handler returns. One process-wide handler dispatches to the callbacks of the
 * registered ranges; everything else (SEGV_MAPERR and other si_codes, signals sent with
 * kill(), addresses outside every range, faults a callback declines) goes on to the
 * handler installed before ours, so crash reporters and sanitizers keep working.
 *
 * The table, the handler and its chaining are os/signal_ranges.h's: the handler runs with
 * every asynchronous signal blocked; callbacks must be async-signal-safe and must never
 * touch a protected page of a range themselves (a SIGSEGV inside the handler kills the
 * process). */
#ifndef UGC_BACKEND_SEGV_DISPATCH_H
#define UGC_BACKEND_SEGV_DISPATCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "os/signal_ranges.h"

/* What a callback answers (see os/signal_ranges.h). */
enum {
  UGC_SEGV_HANDLED = UGC_RANGE_HANDLED,
  UGC_SEGV_NOT_MINE = UGC_RANGE_NOT_MINE,
  UGC_SEGV_IDLE = UGC_RANGE_IDLE, /* a stale fault after the work ended */
};

/* Resolves the access fault at addr. Returns one of the values above. */
typedef int (*ugc_segv_fn)(void *ctx, void *addr);

/* Ranges registered at once (one per heap using the sigsegv backend, and one per large object
 * whose references are being updated after the pause). */
#define UGC_SEGV_MAX_RANGES (UGC_RANGE_CHUNK_SLOTS * UGC_RANGE_MAX_CHUNKS)

/* The SIGSEGV table's ugc_signal_ranges_add, _remove, _covers and _keep_first (see there):
 * access faults in [start, start+len) go to fn(ctx, addr). */
int ugc_segv_add_range(void *start, size_t len, ugc_segv_fn fn, void *ctx);
void ugc_segv_remove_range(int id);
bool ugc_segv_covers(const void *addr);
int ugc_segv_keep_first(void);

/* The dispatcher without the chaining, for an embedder's SIGSEGV handler that runs before
 * ours: true if the signal was an access fault in a registered range and is resolved.
 * Async-signal-safe. */
bool ugc_segv_claim(int sig, siginfo_t *info, void *ucontext);

#endif
