/* Waits of the library that an embedder's thread runs are not cancellation points.
 *
 * pthread_cond_wait is one: a thread cancelled there wakes holding the wait's mutex and runs
 * its exit handlers with it held. For the safepoint lock that stops every later pause (and
 * the thread's own detach at exit waits for the lock it holds); for a marking cycle's lock
 * it stops the marker. With cancellation off for the wait, a pending cancellation acts at
 * the thread's next cancellation point outside the library, where the thread-exit handler
 * detaches it like any thread that exits attached. */
#ifndef UGC_OS_CANCEL_H
#define UGC_OS_CANCEL_H

#include <pthread.h>

/* Turns cancellation off for the calling thread; returns the state to restore. */
static inline int ugc_cancel_off(void) {
  int old = PTHREAD_CANCEL_ENABLE;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
  return old;
}

static inline void ugc_cancel_restore(int old) {
  int ignored;
  pthread_setcancelstate(old, &ignored);
}

#endif
