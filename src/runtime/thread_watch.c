/* Threads that leave without saying so, and threads that do not come to a safepoint.
 *
 * A thread that exits while attached would stay RUNNING forever, and every later pause
 * would wait for it. Each thread's attached mutators are kept on a list behind a
 * thread-specific key, whose destructor detaches whatever is still attached when the thread
 * exits (it leaves a blocking region first, which waits out a pause in progress).
 *
 * A pause that has waited config.safepoint_timeout_ms for some thread says which one: its
 * kernel thread id and name, and whether it still exists (a thread that is gone without its
 * key destructor having run -- killed by a raw clone, say -- can never be waited out: fatal)
 * and what it last did in the library. A call through a detached mutator says who detached
 * it and how (or that nothing did: memory never attached, or overwritten). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os/log.h"
#include "os/time.h"
#include "runtime/heap.h"

static pthread_key_t thread_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void detach_at_exit(void *head) {
  for (ugc_mutator *m = head; m;) {
    ugc_mutator *next = m->thread_next;
    m->thread_next = NULL;
    /* Detached meanwhile by another thread, perhaps reused by one: not ours any more. */
    if (!m->fast.attached || !pthread_equal(m->thread, pthread_self())) {
      m = next;
      continue;
    }
    ugc_warn("a thread (tid %d) exited while attached to a heap: detached automatically (call "
             "ugc_thread_detach before the thread ends)",
             (int)m->tid);
    if (m->state == UGC_MUTATOR_BLOCKING)
      ugc_blocking_leave(m);
    ugc_thread_detach_as(m, "the thread-exit handler (its thread ended attached)");
    m = next;
  }
  pthread_setspecific(thread_key, NULL);
}

static void make_key(void) {
  if (pthread_key_create(&thread_key, detach_at_exit) != 0)
    ugc_fatal("pthread_key_create failed: threads that exit attached cannot be detached");
}

/* Unlinks mutator from the list at *head (a mutator detached by another thread may still
 * be on this one's list when its memory is reused). */
static void unlink_from(ugc_mutator **head, ugc_mutator *mutator) {
  for (ugc_mutator **link = head; *link; link = &(*link)->thread_next)
    if (*link == mutator) {
      *link = mutator->thread_next;
      break;
    }
}

void ugc_thread_watch_add(ugc_mutator *mutator) {
  pthread_once(&key_once, make_key);
  ugc_mutator *head = pthread_getspecific(thread_key);
  unlink_from(&head, mutator);
  mutator->tid = (pid_t)syscall(SYS_gettid);
  mutator->thread_next = head;
  pthread_setspecific(thread_key, mutator);
}

void ugc_thread_watch_remove(ugc_mutator *mutator) {
  pthread_once(&key_once, make_key);
  ugc_mutator *head = pthread_getspecific(thread_key);
  unlink_from(&head, mutator);
  pthread_setspecific(thread_key, head);
}

static bool thread_exists(pid_t tid) {
  return syscall(SYS_tgkill, getpid(), tid, 0) == 0 || errno != ESRCH;
}

void ugc_mutator_note(ugc_mutator *mutator, const char *call) {
  mutator->last_call = call;
  mutator->last_call_ns = ugc_now_ns();
}

void ugc_world_stop_report_late(ugc_heap *heap, ugc_mutator *self, uint64_t waited_ms) {
  uint64_t now = ugc_now_ns();
  for (ugc_mutator *m = heap->mutators_head; m; m = m->next) {
    if (m == self || m->state != UGC_MUTATOR_RUNNING)
      continue;
    char name[32] = "?";
    bool alive = thread_exists(m->tid);
    if (alive)
      pthread_getname_np(m->thread, name, sizeof name);
    if (!alive)
      ugc_fatal("a collection waits for thread tid %d, which has exited while attached to the "
                "heap without its thread-exit handler running: the collection can never proceed",
                (int)m->tid);
    ugc_warn("a collection has waited %llu ms for thread tid %d (\"%s\") to reach a safepoint: it "
             "must poll ugc_safepoint regularly or mark long stretches with "
             "ugc_blocking_enter/leave. It runs outside the library since %s, %llu ms ago (then "
             "no safepoint poll that found a pause)",
             (unsigned long long)waited_ms, (int)m->tid, name,
             m->last_call ? m->last_call : "its attach",
             (unsigned long long)((now - m->last_call_ns) / 1000000));
  }
}

void ugc_mutator_describe_unusable(const ugc_mutator *mutator, char *text, size_t size) {
  char name[32] = "?";
  pthread_getname_np(pthread_self(), name, sizeof name);
  int tid = (int)syscall(SYS_gettid);
  if (!mutator) {
    snprintf(text, size, "the mutator is NULL (called on thread tid %d \"%s\")", tid, name);
    return;
  }
  if (mutator->detached_tid) {
    snprintf(text, size,
             "the mutator is detached (called on thread tid %d \"%s\"; attached by tid %d, "
             "detached by tid %d%s in %s; its last call before: %s)",
             tid, name, (int)mutator->tid, (int)mutator->detached_tid,
             mutator->detached_tid == tid ? " (this thread)" : "", mutator->detached_how,
             mutator->last_call ? mutator->last_call : "none");
    return;
  }
  /* What overwrote it may show in the words around the flag (the TLAB bounds come first). */
  const ugc_mutator_fast *fast = &mutator->fast;
  snprintf(text, size,
           "the mutator is detached (called on thread tid %d \"%s\"; no detach recorded: "
           "never attached, or its memory was overwritten: heap %p, state %d, attached by tid "
           "%d, TLAB %#lx-%#lx, small_limit %#zx, roots %u/%u, types %u)",
           tid, name, (const void *)mutator->heap, mutator->state, (int)mutator->tid,
           (unsigned long)fast->tlab_cursor, (unsigned long)fast->tlab_limit, fast->small_limit,
           fast->root_count, fast->root_capacity, fast->type_count);
}
