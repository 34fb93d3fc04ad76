/* The SIGSEGV dispatcher (see segv_dispatch.h). The range table is a fixed array; each slot
 * has a state word and a count of handlers inside it: a handler announces itself (users++)
 * before re-checking the state, and removal marks the slot dying before waiting for the
 * users to drain (both sequentially consistent: one of them sees the other). The chaining
 * follows uffd/sigbus.c: a handler that replaced ours and chains back to us gets what was
 * there before us next, then the default action, never a loop. */
#include "backend/segv_dispatch.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "os/signals.h"

enum { SLOT_FREE = 0, SLOT_CLAIMED, SLOT_LIVE, SLOT_DYING };

typedef struct segv_slot {
  int state;
  int users;
  uintptr_t start, end;
  ugc_segv_fn fn;
  void *ctx;
} segv_slot;

static segv_slot slots[UGC_SEGV_MAX_RANGES];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction original_previous;
static struct sigaction *chain_target = &original_previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_err;
static bool installed;

static __thread __attribute__((tls_model("initial-exec"))) const siginfo_t *chaining_info;
static __thread __attribute__((tls_model("initial-exec"))) int chaining_hops;

#define LOAD(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define RELAXED(p) __atomic_load_n(p, __ATOMIC_RELAXED)
#define SEQ_ADD(p, v) __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST)

/* Whether a read of addr succeeds now, asked of the kernel (no fault here). */
static bool readable_now(uintptr_t addr) {
  char byte;
  struct iovec local = {&byte, 1}, remote = {(void *)addr, 1};
  if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 1)
    return true;
  return errno != EFAULT;
}

static int dispatch(uintptr_t addr) {
  for (int i = 0; i < UGC_SEGV_MAX_RANGES; i++) {
    segv_slot *s = &slots[i];
    if (LOAD(&s->state) != SLOT_LIVE || addr < RELAXED(&s->start) || addr >= RELAXED(&s->end))
      continue;
    SEQ_ADD(&s->users, 1);
    bool mine = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST) == SLOT_LIVE &&
                addr >= RELAXED(&s->start) && addr < RELAXED(&s->end);
    int rc = mine ? s->fn(s->ctx, (void *)addr) : UGC_SEGV_NOT_MINE;
    SEQ_ADD(&s->users, -1);
    if (mine)
      return rc;
  }
  return UGC_SEGV_NOT_MINE;
}

bool ugc_segv_claim(int sig, siginfo_t *info, void *ucontext) {
  (void)ucontext;
  /* A protected page raises SEGV_ACCERR; SEGV_MAPERR (nothing mapped), the protection-key
   * and other codes, and sent signals are somebody else's, whatever the address. */
  if (sig != SIGSEGV || !info || info->si_code != SEGV_ACCERR)
    return false;
  uintptr_t addr = (uintptr_t)info->si_addr;
  int rc = dispatch(addr);
  if (rc == UGC_SEGV_IDLE)
    rc = readable_now(addr) ? UGC_SEGV_HANDLED : UGC_SEGV_NOT_MINE;
  return rc == UGC_SEGV_HANDLED;
}

static void on_sigsegv(int sig, siginfo_t *info, void *ucontext);

static void chain_on(int sig, siginfo_t *info, void *ucontext) {
  int hops = chaining_info == info ? chaining_hops + 1 : 0;
  struct sigaction *replaced = LOAD(&chain_target);
  const struct sigaction *target = NULL;
  if (hops == 0)
    target = replaced;
  else if (hops == 1 && replaced != &original_previous)
    target = &original_previous;
  if (!target || ugc_signal_is_handler(target, on_sigsegv)) {
    ugc_signal_default_action(sig, info);
    return;
  }
  const siginfo_t *outer_info = chaining_info;
  int outer_hops = chaining_hops;
  chaining_info = info;
  chaining_hops = hops;
  ugc_signal_chain(sig, info, ucontext, target);
  chaining_info = outer_info;
  chaining_hops = outer_hops;
}

static void on_sigsegv(int sig, siginfo_t *info, void *ucontext) {
  int saved_errno = errno;
  if (!ugc_segv_claim(sig, info, ucontext))
    chain_on(sig, info, ucontext);
  errno = saved_errno;
}

static void install(void) {
  install_err = ugc_signal_install(SIGSEGV, on_sigsegv, &original_previous);
  __atomic_store_n(&installed, install_err == 0, __ATOMIC_RELEASE);
}

int ugc_segv_keep_first(void) {
  struct sigaction current;
  if (sigaction(SIGSEGV, NULL, &current) != 0)
    return -errno;
  if (ugc_signal_is_handler(&current, on_sigsegv) || !__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
    return 0;
  /* Never freed: a handler on another thread may be chaining through the one it replaces. */
  struct sigaction *replaced = malloc(sizeof *replaced);
  if (!replaced)
    return -ENOMEM;
  pthread_mutex_lock(&table_lock);
  int rc = ugc_signal_install(SIGSEGV, on_sigsegv, replaced);
  if (rc == 0 && !ugc_signal_is_handler(replaced, on_sigsegv)) {
    __atomic_store_n(&chain_target, replaced, __ATOMIC_RELEASE);
    rc = 1;
  } else {
    free(replaced);
  }
  pthread_mutex_unlock(&table_lock);
  return rc;
}

int ugc_segv_add_range(void *start, size_t len, ugc_segv_fn fn, void *ctx) {
  if (!fn || len == 0 || (uintptr_t)start + len < (uintptr_t)start)
    return -EINVAL;
  pthread_once(&install_once, install);
  if (install_err)
    return install_err;
  for (int i = 0; i < UGC_SEGV_MAX_RANGES; i++) {
    segv_slot *s = &slots[i];
    int expected = SLOT_FREE;
    if (!__atomic_compare_exchange_n(&s->state, &expected, SLOT_CLAIMED, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
      continue;
    __atomic_store_n(&s->start, (uintptr_t)start, __ATOMIC_RELAXED);
    __atomic_store_n(&s->end, (uintptr_t)start + len, __ATOMIC_RELAXED);
    s->fn = fn;
    s->ctx = ctx;
    __atomic_store_n(&s->state, SLOT_LIVE, __ATOMIC_SEQ_CST);
    return i;
  }
  return -ENOSPC;
}

void ugc_segv_remove_range(int id) {
  if (id < 0 || id >= UGC_SEGV_MAX_RANGES)
    return;
  segv_slot *s = &slots[id];
  int expected = SLOT_LIVE;
  if (!__atomic_compare_exchange_n(&s->state, &expected, SLOT_DYING, false, __ATOMIC_SEQ_CST,
                                   __ATOMIC_SEQ_CST))
    return;
  while (__atomic_load_n(&s->users, __ATOMIC_SEQ_CST) != 0)
    sched_yield();
  __atomic_store_n(&s->state, SLOT_FREE, __ATOMIC_RELEASE);
}

bool ugc_segv_covers(const void *addr) {
  uintptr_t a = (uintptr_t)addr;
  for (int i = 0; i < UGC_SEGV_MAX_RANGES; i++)
    if (LOAD(&slots[i].state) == SLOT_LIVE && a >= RELAXED(&slots[i].start) &&
        a < RELAXED(&slots[i].end))
      return true;
  return false;
}
