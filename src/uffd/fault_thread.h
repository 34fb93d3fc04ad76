/* Handler-thread fault delivery: a thread poll()s a non-blocking userfaultfd and an eventfd
 * (for shutdown), reads several struct uffd_msg at a time and calls a callback for each
 * page fault. The faulting threads sleep until the page is resolved and woken. */
#ifndef UGC_UFFD_FAULT_THREAD_H
#define UGC_UFFD_FAULT_THREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "uffd/uffd.h"

typedef struct ugc_uffd_fault {
  void *addr;     /* faulting address (page-aligned unless EXACT_ADDRESS is enabled) */
  unsigned flags; /* UFFD_PAGEFAULT_FLAG_WRITE | _WP | _MINOR (neither WP nor MINOR: missing) */
  uint32_t tid;   /* faulting thread id when UFFD_FEATURE_THREAD_ID is enabled, else 0 */
} ugc_uffd_fault;

/* Called on the handler thread for each page-fault message; must resolve (or wake) it. */
typedef void (*ugc_uffd_fault_fn)(void *ctx, const ugc_uffd_fault *fault);

typedef struct ugc_fault_thread {
  pthread_t thread;
  int uffd;    /* not owned */
  int stop_fd; /* eventfd written by stop */
  bool running;
  ugc_uffd_fault_fn fn;
  void *ctx;
  /* statistics, updated by the handler thread with relaxed atomics */
  uint64_t faults; /* page-fault messages handled */
  uint64_t events; /* other messages (fork, remap, remove, unmap): counted and ignored */
  uint64_t reads;  /* read() calls that returned messages */
  uint64_t eagain; /* POLLIN then EAGAIN: another reader or a resolved fault */
  uint64_t errors; /* poll/read failures */
} ugc_fault_thread;

/* Starts the handler thread on u (which must be UGC_UFFD_NONBLOCK: poll() needs it). All
 * signals are blocked on that thread. -EOPNOTSUPP when UFFDGC_DISABLE has "thread".
 * 0 or -errno. */
int ugc_fault_thread_start(ugc_fault_thread *t, const ugc_uffd *u, ugc_uffd_fault_fn fn, void *ctx);

/* Signals the thread to stop and joins it. Messages not yet read stay in the descriptor.
 * 0 or -errno. */
int ugc_fault_thread_stop(ugc_fault_thread *t);

/* In a fork child, where the thread does not exist: closes the inherited eventfd and marks
 * the thread stopped, without joining. */
void ugc_fault_thread_forget(ugc_fault_thread *t);

#endif
