/* The SIGBUS dispatcher. The range table is a fixed static array, so a handler never reads
 * freed memory. Each slot has a state word and a count of handlers inside it: a handler
 * announces itself (users++) before re-checking the state, and removal marks the slot dying
 * before waiting for users to drain (both sequentially consistent: one of them sees the
 * other). */
#include "uffd/sigbus.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <ucontext.h>

#include "os/disable.h"
#include "os/signals.h"

enum { SLOT_FREE = 0, SLOT_CLAIMED, SLOT_LIVE, SLOT_DYING };

typedef struct sigbus_slot {
  int state;
  int users;
  uintptr_t start, end;
  ugc_sigbus_fn fn;
  void *ctx;
} sigbus_slot;

static sigbus_slot slots[UGC_SIGBUS_MAX_RANGES];
static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_err;
static unsigned long dispatched_count, chained_count;

#define LOAD(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define SEQ_ADD(p, v) __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST)

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

/* Runs the callback of the slot covering addr, if any. 0 when handled. */
static int dispatch(uintptr_t addr, int is_write) {
  for (int i = 0; i < UGC_SIGBUS_MAX_RANGES; i++) {
    sigbus_slot *s = &slots[i];
    if (LOAD(&s->state) != SLOT_LIVE)
      continue;
    SEQ_ADD(&s->users, 1);
    /* Re-check after announcing ourselves: removal cannot finish while users > 0. */
    bool mine = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST) == SLOT_LIVE && addr >= s->start &&
                addr < s->end;
    int rc = mine ? s->fn(s->ctx, (void *)addr, is_write) : 1;
    SEQ_ADD(&s->users, -1);
    if (mine)
      return rc;
  }
  return 1;
}

static void on_sigbus(int sig, siginfo_t *info, void *ucontext) {
  int saved_errno = errno;
  int rc = 1;
  /* Only kernel-raised faults carry a meaningful si_addr. */
  if (ugc_signal_is_hardware_fault(info))
    rc = dispatch((uintptr_t)info->si_addr, fault_is_write(ucontext));
  if (rc == 0) {
    __atomic_add_fetch(&dispatched_count, 1, __ATOMIC_RELAXED);
  } else {
    __atomic_add_fetch(&chained_count, 1, __ATOMIC_RELAXED);
    ugc_signal_chain(sig, info, ucontext, &previous);
  }
  errno = saved_errno;
}

static void install(void) {
  install_err = ugc_signal_install(SIGBUS, on_sigbus, &previous);
}

int ugc_sigbus_install(void) {
  if (ugc_feature_disabled("sigbus"))
    return -EOPNOTSUPP;
  pthread_once(&install_once, install);
  return install_err;
}

int ugc_sigbus_add_range(void *start, size_t len, ugc_sigbus_fn fn, void *ctx) {
  if (!fn || len == 0 || (uintptr_t)start + len < (uintptr_t)start)
    return -EINVAL;
  int rc = ugc_sigbus_install();
  if (rc != 0)
    return rc;
  for (int i = 0; i < UGC_SIGBUS_MAX_RANGES; i++) {
    sigbus_slot *s = &slots[i];
    int expected = SLOT_FREE;
    if (!__atomic_compare_exchange_n(&s->state, &expected, SLOT_CLAIMED, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
      continue;
    s->start = (uintptr_t)start;
    s->end = (uintptr_t)start + len;
    s->fn = fn;
    s->ctx = ctx;
    __atomic_store_n(&s->state, SLOT_LIVE, __ATOMIC_SEQ_CST); /* publishes the fields */
    return i;
  }
  return -ENOSPC;
}

void ugc_sigbus_remove_range(int id) {
  if (id < 0 || id >= UGC_SIGBUS_MAX_RANGES)
    return;
  sigbus_slot *s = &slots[id];
  int expected = SLOT_LIVE;
  if (!__atomic_compare_exchange_n(&s->state, &expected, SLOT_DYING, false, __ATOMIC_SEQ_CST,
                                   __ATOMIC_SEQ_CST))
    return;
  while (__atomic_load_n(&s->users, __ATOMIC_SEQ_CST) != 0)
    sched_yield();
  __atomic_store_n(&s->state, SLOT_FREE, __ATOMIC_RELEASE);
}

void ugc_sigbus_get_stats(unsigned long *dispatched, unsigned long *chained) {
  if (dispatched)
    *dispatched = __atomic_load_n(&dispatched_count, __ATOMIC_RELAXED);
  if (chained)
    *chained = __atomic_load_n(&chained_count, __ATOMIC_RELAXED);
}
