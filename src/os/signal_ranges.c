/* The shared fault dispatcher (see signal_ranges.h). Each slot of a table has a state word
 * and a count of handlers inside it: a handler announces itself (users++) before re-checking
 * the state, and removal marks the slot dying before waiting for users to drain (both
 * sequentially consistent: one of them sees the other).
 *
 * One handler function serves every table; it finds its table by signal number. Which
 * signal a thread is passing on lives in initial-exec TLS (a plain load from the thread
 * pointer, safe in a signal handler), so that a handler that replaced ours and chains back
 * to us does not make a loop. */
#include "os/signal_ranges.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "os/disable.h"
#include "os/signals.h"

enum { SLOT_FREE = 0, SLOT_CLAIMED, SLOT_LIVE, SLOT_DYING };

struct ugc_range_slot {
  int state;
  int users;
  uintptr_t start, end; /* atomic: a handler may read them while the slot is reused */
  ugc_range_callback fn;
  void *ctx;
};
typedef struct ugc_range_slot range_slot;

/* The table of each signal whose handler is installed; set before the handler. */
static ugc_signal_ranges *table_of_signal[NSIG];

#define THREAD_LOCAL __thread __attribute__((tls_model("initial-exec")))
static THREAD_LOCAL const siginfo_t *chaining_info;
static THREAD_LOCAL int chaining_sig;
static THREAD_LOCAL int chaining_hops;

#define LOAD(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define RELAXED(p) __atomic_load_n(p, __ATOMIC_RELAXED)
#define SEQ_ADD(p, v) __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST)

/* Whether a read of addr succeeds now, asked of the kernel (no fault here). A failure
 * other than EFAULT (a sandbox refusing the call) cannot tell: then yes. */
static bool readable_now(uintptr_t addr) {
  char byte;
  struct iovec local = {&byte, 1}, remote = {(void *)addr, 1};
  if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 1)
    return true;
  return errno != EFAULT;
}

/* Runs the callback of the slot covering addr, if any. */
static int dispatch(ugc_signal_ranges *table, uintptr_t addr, void *ucontext) {
  unsigned count = LOAD(&table->chunk_count);
  for (unsigned c = 0; c < count; c++) {
    range_slot *chunk = LOAD(&table->chunks[c]);
    for (int i = 0; i < UGC_RANGE_CHUNK_SLOTS; i++) {
      range_slot *s = &chunk[i];
      /* The range test first, without announcing ourselves: a fault should not write to
       * the slots of every other heap. */
      if (LOAD(&s->state) != SLOT_LIVE || addr < RELAXED(&s->start) || addr >= RELAXED(&s->end))
        continue;
      SEQ_ADD(&s->users, 1);
      /* Re-check after announcing ourselves: removal cannot finish while users > 0. */
      bool mine = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST) == SLOT_LIVE &&
                  addr >= RELAXED(&s->start) && addr < RELAXED(&s->end);
      int rc = mine ? table->call(s->fn, s->ctx, (void *)addr, ucontext) : UGC_RANGE_NOT_MINE;
      SEQ_ADD(&s->users, -1);
      if (mine)
        return rc;
    }
  }
  return UGC_RANGE_NOT_MINE;
}

bool ugc_signal_ranges_claim(ugc_signal_ranges *table, int sig, siginfo_t *info, void *ucontext) {
  /* Other si_codes (hardware poison, SEGV_MAPERR, protection keys...) and sent signals are
   * somebody else's, whatever the address. */
  if (sig != table->sig || !info || info->si_code != table->si_code)
    return false;
  uintptr_t addr = (uintptr_t)info->si_addr;
  int rc = dispatch(table, addr, ucontext);
  if (rc == UGC_RANGE_IDLE)
    rc = readable_now(addr) ? UGC_RANGE_HANDLED : UGC_RANGE_NOT_MINE;
  return rc == UGC_RANGE_HANDLED;
}

static void on_fault(int sig, siginfo_t *info, void *ucontext);

/* Passes a signal that is not ours on. A handler that replaced ours (see keep_first) and
 * chains to what it replaced calls us again with the same siginfo: the next in line is
 * then what was there before us, and after that the default action. */
static void chain_on(ugc_signal_ranges *table, int sig, siginfo_t *info, void *ucontext) {
  int hops = chaining_info == info && chaining_sig == sig ? chaining_hops + 1 : 0;
  struct sigaction *replaced = LOAD(&table->replaced);
  const struct sigaction *target = NULL;
  if (hops == 0)
    target = replaced ? replaced : &table->original_previous;
  else if (hops == 1 && replaced)
    target = &table->original_previous;
  if (!target || ugc_signal_is_handler(target, on_fault)) {
    ugc_signal_default_action(sig, info);
    return;
  }
  const siginfo_t *outer_info = chaining_info;
  int outer_sig = chaining_sig, outer_hops = chaining_hops;
  chaining_info = info;
  chaining_sig = sig;
  chaining_hops = hops;
  ugc_signal_chain(sig, info, ucontext, target);
  chaining_info = outer_info;
  chaining_sig = outer_sig;
  chaining_hops = outer_hops;
}

static void on_fault(int sig, siginfo_t *info, void *ucontext) {
  int saved_errno = errno;
  ugc_signal_ranges *table = sig > 0 && sig < NSIG ? LOAD(&table_of_signal[sig]) : NULL;
  if (!table) {
    ugc_signal_default_action(sig, info);
  } else if (ugc_signal_ranges_claim(table, sig, info, ucontext)) {
    __atomic_add_fetch(&table->dispatched, 1, __ATOMIC_RELAXED);
  } else {
    __atomic_add_fetch(&table->chained, 1, __ATOMIC_RELAXED);
    chain_on(table, sig, info, ucontext);
  }
  errno = saved_errno;
}

int ugc_signal_ranges_install(ugc_signal_ranges *table) {
  if (table->disable_name && ugc_feature_disabled(table->disable_name))
    return -EOPNOTSUPP;
  if (table->sig <= 0 || table->sig >= NSIG)
    return -EINVAL;
  pthread_mutex_lock(&table->lock);
  if (!table->install_tried) {
    table->install_tried = true;
    ugc_signal_ranges *owner = NULL;
    if (__atomic_compare_exchange_n(&table_of_signal[table->sig], &owner, table, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
      table->install_err = ugc_signal_install(table->sig, on_fault, &table->original_previous);
    else
      table->install_err = -EBUSY;
    __atomic_store_n(&table->installed, table->install_err == 0, __ATOMIC_RELEASE);
  }
  int rc = table->install_err;
  pthread_mutex_unlock(&table->lock);
  return rc;
}

int ugc_signal_ranges_keep_first(ugc_signal_ranges *table) {
  struct sigaction current;
  if (sigaction(table->sig, NULL, &current) != 0)
    return -errno;
  if (ugc_signal_is_handler(&current, on_fault) || !LOAD(&table->installed))
    return 0;
  /* Never freed: a handler on another thread may be chaining through the one it replaces. */
  struct sigaction *replaced = malloc(sizeof *replaced);
  if (!replaced)
    return -ENOMEM;
  pthread_mutex_lock(&table->lock);
  int rc = ugc_signal_install(table->sig, on_fault, replaced);
  if (rc == 0 && !ugc_signal_is_handler(replaced, on_fault)) {
    __atomic_store_n(&table->replaced, replaced, __ATOMIC_RELEASE);
    rc = 1;
  } else {
    free(replaced); /* failed, or another thread put us back meanwhile */
  }
  pthread_mutex_unlock(&table->lock);
  return rc;
}

/* The chunk `chunk` of the table, allocating it if needed (table->lock held). */
static range_slot *chunk_at(ugc_signal_ranges *table, unsigned chunk) {
  if (chunk < LOAD(&table->chunk_count))
    return LOAD(&table->chunks[chunk]);
  range_slot *fresh = calloc(UGC_RANGE_CHUNK_SLOTS, sizeof *fresh);
  if (!fresh)
    return NULL;
  __atomic_store_n(&table->chunks[chunk], fresh, __ATOMIC_RELEASE);
  __atomic_store_n(&table->chunk_count, chunk + 1, __ATOMIC_RELEASE);
  return fresh;
}

int ugc_signal_ranges_add(ugc_signal_ranges *table, void *start, size_t len, ugc_range_callback fn,
                          void *ctx) {
  if (!fn || len == 0 || (uintptr_t)start + len < (uintptr_t)start)
    return -EINVAL;
  int rc = ugc_signal_ranges_install(table);
  if (rc != 0)
    return rc;
  unsigned max_chunks = (table->max_ranges + UGC_RANGE_CHUNK_SLOTS - 1) / UGC_RANGE_CHUNK_SLOTS;
  if (max_chunks > UGC_RANGE_MAX_CHUNKS)
    max_chunks = UGC_RANGE_MAX_CHUNKS;
  int id = -ENOSPC;
  pthread_mutex_lock(&table->lock);
  for (unsigned c = 0; c < max_chunks && id < 0; c++) {
    range_slot *chunk = chunk_at(table, c);
    if (!chunk) {
      id = -ENOMEM;
      break;
    }
    for (unsigned i = 0;
         i < UGC_RANGE_CHUNK_SLOTS && c * UGC_RANGE_CHUNK_SLOTS + i < table->max_ranges; i++) {
      range_slot *s = &chunk[i];
      int expected = SLOT_FREE;
      if (!__atomic_compare_exchange_n(&s->state, &expected, SLOT_CLAIMED, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED))
        continue;
      __atomic_store_n(&s->start, (uintptr_t)start, __ATOMIC_RELAXED);
      __atomic_store_n(&s->end, (uintptr_t)start + len, __ATOMIC_RELAXED);
      s->fn = fn;
      s->ctx = ctx;
      __atomic_store_n(&s->state, SLOT_LIVE, __ATOMIC_SEQ_CST); /* publishes the fields */
      id = (int)(c * UGC_RANGE_CHUNK_SLOTS + i);
      break;
    }
  }
  pthread_mutex_unlock(&table->lock);
  return id;
}

void ugc_signal_ranges_remove(ugc_signal_ranges *table, int id) {
  if (id < 0 || (unsigned)id >= LOAD(&table->chunk_count) * UGC_RANGE_CHUNK_SLOTS)
    return;
  range_slot *s = &LOAD(&table->chunks[id / UGC_RANGE_CHUNK_SLOTS])[id % UGC_RANGE_CHUNK_SLOTS];
  int expected = SLOT_LIVE;
  if (!__atomic_compare_exchange_n(&s->state, &expected, SLOT_DYING, false, __ATOMIC_SEQ_CST,
                                   __ATOMIC_SEQ_CST))
    return;
  while (__atomic_load_n(&s->users, __ATOMIC_SEQ_CST) != 0)
    sched_yield();
  __atomic_store_n(&s->state, SLOT_FREE, __ATOMIC_RELEASE);
}

bool ugc_signal_ranges_covers(ugc_signal_ranges *table, const void *addr) {
  uintptr_t a = (uintptr_t)addr;
  unsigned count = LOAD(&table->chunk_count);
  for (unsigned c = 0; c < count; c++) {
    range_slot *chunk = LOAD(&table->chunks[c]);
    for (int i = 0; i < UGC_RANGE_CHUNK_SLOTS; i++)
      if (LOAD(&chunk[i].state) == SLOT_LIVE && a >= RELAXED(&chunk[i].start) &&
          a < RELAXED(&chunk[i].end))
        return true;
  }
  return false;
}

void ugc_signal_ranges_get_stats(ugc_signal_ranges *table, unsigned long *dispatched,
                                 unsigned long *chained) {
  if (dispatched)
    *dispatched = __atomic_load_n(&table->dispatched, __ATOMIC_RELAXED);
  if (chained)
    *chained = __atomic_load_n(&table->chained, __ATOMIC_RELAXED);
}
