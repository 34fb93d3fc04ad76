/* The SIGBUS dispatcher: the range table, the handler and its chaining are
 * os/signal_ranges.c's; this file adds what SIGBUS-mode userfaultfd needs: BUS_ADRERR
 * only, whether the fault was a write, and a page buffer for the callback.
 *
 * The page buffer of a thread lives in initial-exec TLS (a plain load from the thread
 * pointer, safe in a signal handler). */
#include "uffd/sigbus.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <ucontext.h>

#include "os/signal_ranges.h"
#include "os/signals.h"

static int call_sigbus_fn(ugc_range_callback fn, void *ctx, void *addr, void *ucontext);

static ugc_signal_ranges table =
    UGC_SIGNAL_RANGES_INIT(SIGBUS, BUS_ADRERR, UGC_SIGBUS_MAX_RANGES, call_sigbus_fn, "sigbus");

#define THREAD_LOCAL __thread __attribute__((tls_model("initial-exec")))
static THREAD_LOCAL void *thread_buffer;

/* For threads without a buffer of their own (not attached): one shared page. A holder
 * never waits for a thread that needs it (a page owner got its buffer before claiming). */
static char shared_buffer[UGC_SIGBUS_BUFFER_BYTES] __attribute__((aligned(64)));
static int shared_buffer_busy;

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t buffer_key;
static int key_err;

/* x86 page-fault error code bit 1 = write; other architectures: unknown. */
static int fault_is_write(void *ucontext) {
#if defined(__x86_64__)
  const ucontext_t *uc = ucontext;
  return (uc->uc_mcontext.gregs[REG_ERR] & 2) ? 1 : 0;
#else
  (void)ucontext;
  return -1;
#endif
}

static void *take_buffer(void) {
  void *own = thread_buffer;
  if (own)
    return own;
  while (__atomic_exchange_n(&shared_buffer_busy, 1, __ATOMIC_ACQUIRE))
    sched_yield();
  return shared_buffer;
}

static void give_back_buffer(void *buffer) {
  if (buffer == shared_buffer)
    __atomic_store_n(&shared_buffer_busy, 0, __ATOMIC_RELEASE);
}

static int call_sigbus_fn(ugc_range_callback fn, void *ctx, void *addr, void *ucontext) {
  void *buffer = take_buffer();
  int rc = ((ugc_sigbus_fn)fn)(ctx, addr, ucontext ? fault_is_write(ucontext) : -1, buffer);
  give_back_buffer(buffer);
  return rc;
}

bool ugc_sigbus_claim(int sig, siginfo_t *info, void *ucontext) {
  /* userfaultfd raises BUS_ADRERR; BUS_MCEERR_* (hardware poison), BUS_OBJERR and sent
   * signals are somebody else's, whatever the address. */
  return ugc_signal_ranges_claim(&table, sig, info, ucontext);
}

int ugc_sigbus_install(void) {
  return ugc_signal_ranges_install(&table);
}

int ugc_sigbus_keep_first(void) {
  return ugc_signal_ranges_keep_first(&table);
}

int ugc_sigbus_add_range(void *start, size_t len, ugc_sigbus_fn fn, void *ctx) {
  return ugc_signal_ranges_add(&table, start, len, (ugc_range_callback)fn, ctx);
}

void ugc_sigbus_remove_range(int id) {
  ugc_signal_ranges_remove(&table, id);
}

bool ugc_sigbus_covers(const void *addr) {
  return ugc_signal_ranges_covers(&table, addr);
}

static void free_thread_buffer(void *buffer) {
  thread_buffer = NULL;
  __atomic_signal_fence(__ATOMIC_SEQ_CST); /* a handler here must not see it freed */
  free(buffer);
}

static void make_key(void) {
  key_err = pthread_key_create(&buffer_key, free_thread_buffer);
}

int ugc_sigbus_prepare_thread(void) {
  int done = ugc_signal_unblock_here(SIGBUS) ? UGC_SIGBUS_THREAD_UNBLOCKED : 0;
  if (thread_buffer)
    return done;
  pthread_once(&key_once, make_key);
  if (key_err)
    return -key_err;
  void *buffer = aligned_alloc(64, UGC_SIGBUS_BUFFER_BYTES);
  if (!buffer)
    return -ENOMEM;
  if (pthread_setspecific(buffer_key, buffer) != 0) {
    free(buffer);
    return -ENOMEM;
  }
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  thread_buffer = buffer;
  return done;
}

void ugc_sigbus_get_stats(unsigned long *dispatched, unsigned long *chained) {
  ugc_signal_ranges_get_stats(&table, dispatched, chained);
}
