/* The machinery both fault dispatchers share (uffd/sigbus.c for SIGBUS, backend/
 * segv_dispatch.c for SIGSEGV): a table of address ranges that a signal handler reads
 * without locks, one process-wide handler per signal kept first in the chain, and the
 * passing on of every signal that is not ours to the handler installed before ours.
 *
 * A table is parametrised by its signal and the one si_code it claims; everything else
 * (other si_codes, signals sent with kill(), addresses outside every range, faults a
 * callback declines) is passed on. A dispatcher stores its own callback type in the table
 * and gives a `call` function that runs it; the table runs `call` only while the range is
 * registered, and removal waits until no handler is still inside it.
 *
 * The handler runs with every asynchronous signal blocked (os/signals.h). Callbacks must be
 * async-signal-safe and must never fault on a page of their own range: a second fault of the
 * same signal inside the handler kills the process. */
#ifndef UGC_OS_SIGNAL_RANGES_H
#define UGC_OS_SIGNAL_RANGES_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* What a callback answers. */
enum {
  UGC_RANGE_HANDLED = 0,  /* resolved: the access is retried */
  UGC_RANGE_NOT_MINE = 1, /* pass the signal on to the previous handler */
  /* No fault of the range is being resolved now (a fault raced with the end of the work, or
   * the signal has another cause): the access is retried only if the page can be read now,
   * and the signal is passed on otherwise, so no fault can loop. */
  UGC_RANGE_IDLE = 2,
};

/* A dispatcher's callback, stored as the generic function pointer type; `call` converts it
 * back to the dispatcher's own type before calling it. */
typedef void (*ugc_range_callback)(void);

/* Runs the callback fn(ctx, ...) of the range containing addr for the fault described by
 * ucontext (may be NULL). Returns one of the values above. Async-signal-safe. */
typedef int (*ugc_range_call)(ugc_range_callback fn, void *ctx, void *addr, void *ucontext);

/* The table grows in chunks of this many slots, allocated when needed and never freed, so
 * a handler never reads freed memory. */
#define UGC_RANGE_CHUNK_SLOTS 64
#define UGC_RANGE_MAX_CHUNKS 256

struct ugc_range_slot;

/* One per signal, defined by its dispatcher with UGC_SIGNAL_RANGES_INIT; the fields after
 * `call` belong to os/signal_ranges.c. */
typedef struct ugc_signal_ranges {
  int sig;             /* SIGBUS, SIGSEGV */
  int si_code;         /* the only si_code claimed (BUS_ADRERR, SEGV_ACCERR) */
  unsigned max_ranges; /* at most UGC_RANGE_CHUNK_SLOTS * UGC_RANGE_MAX_CHUNKS */
  ugc_range_call call;
  const char *disable_name; /* the UFFDGC_DISABLE word that refuses install, or NULL */
  struct ugc_range_slot *chunks[UGC_RANGE_MAX_CHUNKS];
  unsigned chunk_count;
  pthread_mutex_t lock; /* growth, install, keep_first */
  bool install_tried, installed;
  int install_err;
  struct sigaction original_previous; /* before our first install */
  struct sigaction *replaced;         /* NULL, or what keep_first put us in front of */
  unsigned long dispatched, chained;
} ugc_signal_ranges;

#define UGC_SIGNAL_RANGES_INIT(signal, code, max, call_fn, disable)                                \
  {                                                                                                \
    .sig = (signal), .si_code = (code), .max_ranges = (max), .call = (call_fn),                    \
    .disable_name = (disable), .lock = PTHREAD_MUTEX_INITIALIZER                                   \
  }

/* Installs the process-wide handler of table->sig once (idempotent, thread-safe; a failure
 * stays). -EOPNOTSUPP when UFFDGC_DISABLE names table->disable_name, -EBUSY if another
 * table already has this signal. 0 or -errno. */
int ugc_signal_ranges_install(ugc_signal_ranges *table);

/* Routes faults in [start, start+len) to call(fn, ctx, ...), installing the handler if
 * needed. Safe while other threads fault. A slot id >= 0, or -errno (-ENOSPC: full). */
int ugc_signal_ranges_add(ugc_signal_ranges *table, void *start, size_t len, ugc_range_callback fn,
                          void *ctx);

/* Removes a range and waits until no handler is still running its callback, so ctx may be
 * freed afterwards. Never call it from the range's own callback. */
void ugc_signal_ranges_remove(ugc_signal_ranges *table, int id);

/* True if a registered range contains addr. */
bool ugc_signal_ranges_covers(ugc_signal_ranges *table, const void *addr);

/* Puts our handler back in front if somebody replaced it (sigaction) since it was
 * installed; the replacement then gets the signals that are not ours. 1 if it had to, 0 if
 * it was in place (or never installed), -errno. Not async-signal-safe. */
int ugc_signal_ranges_keep_first(ugc_signal_ranges *table);

/* The dispatcher without the chaining: true if `sig` is the table's signal with its si_code
 * at an address of a registered range, and the fault is resolved (the access may be
 * retried). Async-signal-safe. */
bool ugc_signal_ranges_claim(ugc_signal_ranges *table, int sig, siginfo_t *info, void *ucontext);

/* Signals dispatched to callbacks and passed on to the previous handler by the handler. */
void ugc_signal_ranges_get_stats(ugc_signal_ranges *table, unsigned long *dispatched,
                                 unsigned long *chained);

#endif
