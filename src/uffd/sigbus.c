/* The SIGBUS dispatcher. The range table is made of chunks that are allocated when needed
 * and never freed, so a handler never reads freed memory. Each slot has a state word and a
 * count of handlers inside it: a handler announces itself (users++) before re-checking the
 * state, and removal marks the slot dying before waiting for users to drain (both
 * sequentially consistent: one of them sees the other).
 *
 * Per-thread state lives in initial-exec TLS (a plain load from the thread pointer, safe in
 * a signal handler): the thread's page buffer, and which signal it is passing on, so that a
 * handler that replaced ours and chains back to us does not make a loop. */
#include "uffd/sigbus.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "os/disable.h"
#include "os/signals.h"

enum { SLOT_FREE = 0, SLOT_CLAIMED, SLOT_LIVE, SLOT_DYING };
#define CHUNK_SLOTS 64
#define MAX_CHUNKS (UGC_SIGBUS_MAX_RANGES / CHUNK_SLOTS)

typedef struct sigbus_slot {
  int state;
  int users;
  uintptr_t start, end; /* atomic: a handler may read them while the slot is reused */
  ugc_sigbus_fn fn;
  void *ctx;
} sigbus_slot;

static sigbus_slot *chunks[MAX_CHUNKS];
static unsigned chunk_count;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER; /* growth, keep_first */

static struct sigaction original_previous;                  /* before our first install */
static struct sigaction *chain_target = &original_previous; /* gets what is not ours */
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_err;
static bool installed;
static unsigned long dispatched_count, chained_count;

#define THREAD_LOCAL __thread __attribute__((tls_model("initial-exec")))
static THREAD_LOCAL void *thread_buffer;
static THREAD_LOCAL const siginfo_t *chaining_info;
static THREAD_LOCAL int chaining_hops;

/* For threads without a buffer of their own (not attached): one shared page. A holder
 * never waits for a thread that needs it (a page owner got its buffer before claiming). */
static char shared_buffer[UGC_SIGBUS_BUFFER_BYTES] __attribute__((aligned(64)));
static int shared_buffer_busy;

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t buffer_key;
static int key_err;

#define LOAD(p) __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define RELAXED(p) __atomic_load_n(p, __ATOMIC_RELAXED)
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
static int dispatch(uintptr_t addr, int is_write) {
  unsigned count = LOAD(&chunk_count);
  for (unsigned c = 0; c < count; c++) {
    sigbus_slot *chunk = LOAD(&chunks[c]);
    for (int i = 0; i < CHUNK_SLOTS; i++) {
      sigbus_slot *s = &chunk[i];
      /* The range test first, without announcing ourselves: a fault should not write to
       * the slots of every other heap. */
      if (LOAD(&s->state) != SLOT_LIVE || addr < RELAXED(&s->start) || addr >= RELAXED(&s->end))
        continue;
      SEQ_ADD(&s->users, 1);
      /* Re-check after announcing ourselves: removal cannot finish while users > 0. */
      bool mine = __atomic_load_n(&s->state, __ATOMIC_SEQ_CST) == SLOT_LIVE &&
                  addr >= RELAXED(&s->start) && addr < RELAXED(&s->end);
      int rc = UGC_SIGBUS_NOT_MINE;
      if (mine) {
        void *buffer = take_buffer();
        rc = s->fn(s->ctx, (void *)addr, is_write, buffer);
        give_back_buffer(buffer);
      }
      SEQ_ADD(&s->users, -1);
      if (mine)
        return rc;
    }
  }
  return UGC_SIGBUS_NOT_MINE;
}

bool ugc_sigbus_claim(int sig, siginfo_t *info, void *ucontext) {
  /* userfaultfd raises BUS_ADRERR; BUS_MCEERR_* (hardware poison), BUS_OBJERR and sent
   * signals are somebody else's, whatever the address. */
  if (sig != SIGBUS || !info || info->si_code != BUS_ADRERR)
    return false;
  uintptr_t addr = (uintptr_t)info->si_addr;
  int rc = dispatch(addr, ucontext ? fault_is_write(ucontext) : -1);
  if (rc == UGC_SIGBUS_IDLE)
    rc = readable_now(addr) ? UGC_SIGBUS_HANDLED : UGC_SIGBUS_NOT_MINE;
  return rc == UGC_SIGBUS_HANDLED;
}

static void on_sigbus(int sig, siginfo_t *info, void *ucontext);

/* Passes a signal that is not ours on. A handler that replaced ours (see keep_first) and
 * chains to what it replaced calls us again with the same siginfo: the next in line is
 * then what was there before us, and after that the default action. */
static void chain_on(int sig, siginfo_t *info, void *ucontext) {
  int hops = chaining_info == info ? chaining_hops + 1 : 0;
  struct sigaction *replaced = LOAD(&chain_target);
  const struct sigaction *target = NULL;
  if (hops == 0)
    target = replaced;
  else if (hops == 1 && replaced != &original_previous)
    target = &original_previous;
  if (!target || ugc_signal_is_handler(target, on_sigbus)) {
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

static void on_sigbus(int sig, siginfo_t *info, void *ucontext) {
  int saved_errno = errno;
  if (ugc_sigbus_claim(sig, info, ucontext)) {
    __atomic_add_fetch(&dispatched_count, 1, __ATOMIC_RELAXED);
  } else {
    __atomic_add_fetch(&chained_count, 1, __ATOMIC_RELAXED);
    chain_on(sig, info, ucontext);
  }
  errno = saved_errno;
}

static void install(void) {
  install_err = ugc_signal_install(SIGBUS, on_sigbus, &original_previous);
  __atomic_store_n(&installed, install_err == 0, __ATOMIC_RELEASE);
}

int ugc_sigbus_install(void) {
  if (ugc_feature_disabled("sigbus"))
    return -EOPNOTSUPP;
  pthread_once(&install_once, install);
  return install_err;
}

int ugc_sigbus_keep_first(void) {
  struct sigaction current;
  if (sigaction(SIGBUS, NULL, &current) != 0)
    return -errno;
  if (ugc_signal_is_handler(&current, on_sigbus) || !__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
    return 0;
  /* Never freed: a handler on another thread may be chaining through the one it replaces. */
  struct sigaction *replaced = malloc(sizeof *replaced);
  if (!replaced)
    return -ENOMEM;
  pthread_mutex_lock(&table_lock);
  int rc = ugc_signal_install(SIGBUS, on_sigbus, replaced);
  if (rc == 0 && !ugc_signal_is_handler(replaced, on_sigbus)) {
    __atomic_store_n(&chain_target, replaced, __ATOMIC_RELEASE);
    rc = 1;
  } else {
    free(replaced); /* failed, or another thread put us back meanwhile */
  }
  pthread_mutex_unlock(&table_lock);
  return rc;
}

/* A slot of the table, allocating the chunk it lives in if needed (table_lock held). */
static sigbus_slot *slot_at(unsigned chunk) {
  if (chunk < LOAD(&chunk_count))
    return LOAD(&chunks[chunk]);
  sigbus_slot *fresh = calloc(CHUNK_SLOTS, sizeof *fresh);
  if (!fresh)
    return NULL;
  __atomic_store_n(&chunks[chunk], fresh, __ATOMIC_RELEASE);
  __atomic_store_n(&chunk_count, chunk + 1, __ATOMIC_RELEASE);
  return fresh;
}

int ugc_sigbus_add_range(void *start, size_t len, ugc_sigbus_fn fn, void *ctx) {
  if (!fn || len == 0 || (uintptr_t)start + len < (uintptr_t)start)
    return -EINVAL;
  int rc = ugc_sigbus_install();
  if (rc != 0)
    return rc;
  int id = -ENOSPC;
  pthread_mutex_lock(&table_lock);
  for (unsigned c = 0; c < MAX_CHUNKS && id < 0; c++) {
    sigbus_slot *chunk = slot_at(c);
    if (!chunk) {
      id = -ENOMEM;
      break;
    }
    for (int i = 0; i < CHUNK_SLOTS; i++) {
      sigbus_slot *s = &chunk[i];
      int expected = SLOT_FREE;
      if (!__atomic_compare_exchange_n(&s->state, &expected, SLOT_CLAIMED, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED))
        continue;
      __atomic_store_n(&s->start, (uintptr_t)start, __ATOMIC_RELAXED);
      __atomic_store_n(&s->end, (uintptr_t)start + len, __ATOMIC_RELAXED);
      s->fn = fn;
      s->ctx = ctx;
      __atomic_store_n(&s->state, SLOT_LIVE, __ATOMIC_SEQ_CST); /* publishes the fields */
      id = (int)(c * CHUNK_SLOTS) + i;
      break;
    }
  }
  pthread_mutex_unlock(&table_lock);
  return id;
}

void ugc_sigbus_remove_range(int id) {
  if (id < 0 || (unsigned)id >= LOAD(&chunk_count) * CHUNK_SLOTS)
    return;
  sigbus_slot *s = &LOAD(&chunks[id / CHUNK_SLOTS])[id % CHUNK_SLOTS];
  int expected = SLOT_LIVE;
  if (!__atomic_compare_exchange_n(&s->state, &expected, SLOT_DYING, false, __ATOMIC_SEQ_CST,
                                   __ATOMIC_SEQ_CST))
    return;
  while (__atomic_load_n(&s->users, __ATOMIC_SEQ_CST) != 0)
    sched_yield();
  __atomic_store_n(&s->state, SLOT_FREE, __ATOMIC_RELEASE);
}

bool ugc_sigbus_covers(const void *addr) {
  uintptr_t a = (uintptr_t)addr;
  unsigned count = LOAD(&chunk_count);
  for (unsigned c = 0; c < count; c++) {
    sigbus_slot *chunk = LOAD(&chunks[c]);
    for (int i = 0; i < CHUNK_SLOTS; i++)
      if (LOAD(&chunk[i].state) == SLOT_LIVE && a >= RELAXED(&chunk[i].start) &&
          a < RELAXED(&chunk[i].end))
        return true;
  }
  return false;
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
  if (dispatched)
    *dispatched = __atomic_load_n(&dispatched_count, __ATOMIC_RELAXED);
  if (chained)
    *chained = __atomic_load_n(&chained_count, __ATOMIC_RELAXED);
}
