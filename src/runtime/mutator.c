/* Mutator threads: attach/detach, safepoints, blocking regions, stopping the world.
 *
 * Every state change happens under heap->sp_lock, which makes the protocol easy to check:
 * a pause begins (gc_in_progress and safepoint_requested set) only under the lock, and the
 * collector proceeds only once, under the lock, it has seen every other mutator PARKED or
 * BLOCKING. A mutator leaves those states only under the lock and only when no pause is in
 * progress. The inline poll reads safepoint_requested without the lock; a stale read only
 * delays parking until the next poll. */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "os/cancel.h"
#include "os/log.h"
#include "runtime/concurrent_mark.h"
#include "runtime/heap.h"
#include "runtime/thread_signals.h"

void ugc_check_attached(const ugc_mutator *mutator, const char *call) {
  if (mutator && mutator->fast.attached)
    return;
  char reason[512];
  ugc_mutator_describe_unusable(mutator, reason, sizeof reason);
  ugc_misuse(call, reason);
}

static bool others_running(ugc_heap *heap, ugc_mutator *self) {
  for (ugc_mutator *m = heap->mutators_head; m; m = m->next)
    if (m != self && m->state == UGC_MUTATOR_RUNNING)
      return true;
  return false;
}

/* A wait for the end of the pause on the thread that runs it (a hook or an event callback
 * that calls back into the library) would never end: a misuse, said instead. sp_lock held. */
static void check_not_pause_thread(const ugc_heap *heap, const char *call) {
  if (heap->gc_in_progress && pthread_equal(heap->pause_thread, pthread_self()))
    ugc_misuse(call, "called by the thread running a pause (from a hook or an event callback?): "
                     "it would wait for the end of its own pause");
}

/* Parks `self` (may be NULL) until the pause in progress is over. sp_lock held. */
static void park_locked(ugc_heap *heap, ugc_mutator *self, const char *call) {
  check_not_pause_thread(heap, call);
  int saved = self ? self->state : 0;
  if (self && saved == UGC_MUTATOR_RUNNING) {
    self->state = UGC_MUTATOR_PARKED;
    pthread_cond_broadcast(&heap->parked_cond);
  }
  int cancel = ugc_cancel_off();
  while (heap->gc_in_progress)
    pthread_cond_wait(&heap->resume_cond, &heap->sp_lock);
  ugc_cancel_restore(cancel);
  if (self)
    self->state = saved;
}

void ugc_wait_pause_end_locked(ugc_heap *heap, const char *call) {
  if (!heap->gc_in_progress)
    return;
  ugc_mutator *self = NULL;
  for (ugc_mutator *m = heap->mutators_head; m; m = m->next)
    if (pthread_equal(m->thread, pthread_self()) && m->state == UGC_MUTATOR_RUNNING)
      self = m;
  park_locked(heap, self, call);
}

/* Waits until no other mutator runs; after config.safepoint_timeout_ms, then after twice as
 * long again, and so on, says which threads are late. sp_lock held. */
static void wait_others_parked(ugc_heap *heap, ugc_mutator *self) {
  uint64_t timeout_ms = heap->config.safepoint_timeout_ms, waited_ms = 0;
  int cancel = ugc_cancel_off(); /* a cancelled collector would leave the pause begun */
  while (others_running(heap, self)) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
    while (others_running(heap, self) &&
           pthread_cond_timedwait(&heap->parked_cond, &heap->sp_lock, &deadline) == 0)
      ;
    if (others_running(heap, self)) {
      waited_ms += timeout_ms;
      ugc_world_stop_report_late(heap, self, waited_ms);
      timeout_ms = waited_ms; /* the next report when the wait has doubled */
    }
  }
  ugc_cancel_restore(cancel);
}

bool ugc_world_stop(ugc_heap *heap, ugc_mutator *self, bool skip_if_collected) {
  pthread_mutex_lock(&heap->sp_lock);
  uint64_t epoch = heap->gc_epoch;
  while (heap->gc_in_progress) {
    park_locked(heap, self, "a collection (or another call that stops the world)");
    if (skip_if_collected && heap->gc_epoch != epoch) {
      pthread_mutex_unlock(&heap->sp_lock);
      return false;
    }
  }
  heap->gc_in_progress = true;
  heap->pause_thread = pthread_self();
  atomic_store(&heap->safepoint_requested, 1);
  int saved = self ? self->state : 0;
  if (self)
    self->state = UGC_MUTATOR_COLLECTING;
  wait_others_parked(heap, self);
  if (self)
    self->state = saved;
  pthread_mutex_unlock(&heap->sp_lock);
  return true;
}

void ugc_world_resume(ugc_heap *heap, ugc_mutator *self, bool collected) {
  pthread_mutex_lock(&heap->sp_lock);
  if (self)
    ugc_mutator_note(self, "a pause it ran (ugc_collect, ugc_verify, ugc_graph_digest, ...)");
  atomic_store(&heap->safepoint_requested, 0);
  heap->gc_in_progress = false;
  heap->pause_epoch++;
  if (collected)
    heap->gc_epoch++;
  pthread_cond_broadcast(&heap->resume_cond);
  pthread_mutex_unlock(&heap->sp_lock);
}

void ugc_safepoint_slow(ugc_mutator *mutator) {
  ugc_check_attached(mutator, "ugc_safepoint");
  ugc_heap *heap = mutator->heap;
  pthread_mutex_lock(&heap->sp_lock);
  park_locked(heap, mutator, "ugc_safepoint");
  ugc_mutator_note(mutator, "ugc_safepoint (parked for a pause)");
  pthread_mutex_unlock(&heap->sp_lock);
}

void ugc_blocking_enter(ugc_mutator *mutator) {
  ugc_check_attached(mutator, "ugc_blocking_enter");
  ugc_heap *heap = mutator->heap;
  pthread_mutex_lock(&heap->sp_lock);
  if (mutator->state != UGC_MUTATOR_RUNNING) {
    pthread_mutex_unlock(&heap->sp_lock);
    ugc_misuse("ugc_blocking_enter", "already inside a blocking region");
  }
  mutator->state = UGC_MUTATOR_BLOCKING;
  mutator->fast.small_limit = 0; /* allocation here reaches the slow path, which refuses it */
  ugc_mutator_note(mutator, "ugc_blocking_enter");
  if (heap->gc_in_progress)
    pthread_cond_broadcast(&heap->parked_cond);
  pthread_mutex_unlock(&heap->sp_lock);
}

void ugc_blocking_leave(ugc_mutator *mutator) {
  ugc_check_attached(mutator, "ugc_blocking_leave");
  ugc_heap *heap = mutator->heap;
  pthread_mutex_lock(&heap->sp_lock);
  if (mutator->state != UGC_MUTATOR_BLOCKING) {
    pthread_mutex_unlock(&heap->sp_lock);
    ugc_misuse("ugc_blocking_leave", "not inside a blocking region");
  }
  check_not_pause_thread(heap, "ugc_blocking_leave");
  int cancel = ugc_cancel_off();
  while (heap->gc_in_progress)
    pthread_cond_wait(&heap->resume_cond, &heap->sp_lock);
  ugc_cancel_restore(cancel);
  mutator->state = UGC_MUTATOR_RUNNING;
  mutator->fast.small_limit = heap->small_limit;
  ugc_mutator_note(mutator, "ugc_blocking_leave");
  pthread_mutex_unlock(&heap->sp_lock);
}

void ugc_heap_for_each_mutator(ugc_heap *heap, void (*fn)(ugc_mutator *, void *), void *data) {
  for (ugc_mutator *m = heap->mutators_head; m; m = m->next)
    fn(m, data);
}

/* ---- TLABs ---- */

void ugc_tlab_retire(ugc_mutator *mutator) {
  ugc_mutator_fast *fast = &mutator->fast;
  if (fast->tlab_limit > fast->tlab_cursor)
    *(uint64_t *)fast->tlab_cursor = ugc_filler_header(fast->tlab_limit - fast->tlab_cursor);
  if (mutator->tlab_start)
    mutator->heap->stats.allocated_bytes += fast->tlab_cursor - mutator->tlab_start;
  /* Unless its thread marked it already (ugc_cmark_mark_own_tlab: up to the cursor, and
   * the rest is the filler). */
  if (mutator->tlab_start && mutator->heap->allocate_black &&
      mutator->tlab_marked_to != fast->tlab_cursor)
    ugc_cmark_tlab_retired(mutator->heap, mutator->tlab_start, fast->tlab_limit);
  fast->tlab_cursor = fast->tlab_limit = 0;
  mutator->tlab_start = mutator->tlab_marked_to = 0;
  mutator->reserved = false;
}

static void retire_one(ugc_mutator *mutator, void *data) {
  ugc_tlab_retire(mutator);
}

void ugc_tlabs_retire_all(ugc_heap *heap) {
  ugc_heap_for_each_mutator(heap, retire_one, NULL);
}

/* ---- attach / detach ---- */

ugc_mutator *ugc_thread_attach(ugc_heap *heap, ugc_error *error) {
  if (!heap) {
    ugc_set_error(error, UGC_ERR_INVALID, "ugc_thread_attach: heap is NULL");
    return NULL;
  }
  pthread_mutex_lock(&heap->sp_lock);
  ugc_mutator *mutator = heap->detached;
  if (mutator)
    heap->detached = mutator->next;
  pthread_mutex_unlock(&heap->sp_lock);
  if (!mutator) {
    mutator = calloc(1, sizeof *mutator);
    if (!mutator) {
      ugc_set_error(error, UGC_ERR_NOMEM, "ugc_thread_attach: out of memory");
      return NULL;
    }
  }
  ugc_mutator_fast *fast = &mutator->fast;
  void ***slots = fast->root_slots;
  uint32_t capacity = fast->root_capacity;
  memset(mutator, 0, sizeof *mutator);
  fast->root_slots = slots;
  fast->root_capacity = capacity;
  fast->small_limit = heap->small_limit;
  fast->safepoint_requested = (const volatile uint32_t *)&heap->safepoint_requested;
  fast->covered_low = heap->moving.covered_low;
  fast->covered_bytes = heap->moving.covered_bytes;
  mutator->heap = heap;
  mutator->thread = pthread_self();
  mutator->state = UGC_MUTATOR_RUNNING;

  /* Joining in the middle of a pause would let the thread run unseen: wait it out. */
  pthread_mutex_lock(&heap->sp_lock);
  ugc_wait_pause_end_locked(heap, "ugc_thread_attach");
  fast->cards = heap->moving.cards; /* a compaction pause swaps the tables (heap/space.h) */
  fast->type_count = ugc_type_count(&heap->types);
  fast->marking = heap->marking; /* joining while concurrent marking runs */
  mutator->assist_debt = 0;
  fast->attached = 1;
  ugc_mutator_note(mutator, "ugc_thread_attach");
  mutator->prev = heap->mutators_tail;
  if (heap->mutators_tail)
    heap->mutators_tail->next = mutator;
  else
    heap->mutators_head = mutator;
  heap->mutators_tail = mutator;
  pthread_mutex_unlock(&heap->sp_lock);
  ugc_heap_signals_attach(heap);
  ugc_thread_watch_add(mutator);
  return mutator;
}

void ugc_thread_detach(ugc_mutator *mutator) {
  ugc_thread_detach_as(mutator, "ugc_thread_detach");
}

void ugc_thread_detach_as(ugc_mutator *mutator, const char *how) {
  ugc_check_attached(mutator, "ugc_thread_detach");
  ugc_heap *heap = mutator->heap;
  if (mutator->state == UGC_MUTATOR_BLOCKING)
    ugc_misuse("ugc_thread_detach", "called inside a blocking region");
  /* The thread's list of mutators (detached at thread exit) is the owner's own. After fork
   * a GONE mutator's thread does not exist: the child may detach it. */
  if (!pthread_equal(mutator->thread, pthread_self()) && mutator->state != UGC_MUTATOR_GONE)
    ugc_misuse("ugc_thread_detach", "called from a thread other than the one that attached");
  if (mutator->fast.root_count != 0)
    ugc_warn("ugc_thread_detach: %u handle-scope root(s) still registered (unbalanced "
             "ugc_scope_open/ugc_scope_close?); they are dropped",
             mutator->fast.root_count);
  ugc_thread_watch_remove(mutator);
  pthread_mutex_lock(&heap->sp_lock);
  park_locked(heap, mutator, "ugc_thread_detach"); /* no pause may see a half-removed mutator */
  /* No pause can start while we hold sp_lock: the TLAB and list are ours to change. */
  pthread_mutex_lock(&heap->lock);
  ugc_tlab_retire(mutator);
  ugc_cmark_mutator_detach(mutator);
  mutator->fast.marking = 0;
  pthread_mutex_unlock(&heap->lock);
  if (mutator->prev)
    mutator->prev->next = mutator->next;
  else
    heap->mutators_head = mutator->next;
  if (mutator->next)
    mutator->next->prev = mutator->prev;
  else
    heap->mutators_tail = mutator->prev;
  pthread_cond_broadcast(&heap->parked_cond);
  mutator->fast.attached = 0;
  mutator->fast.root_count = 0;
  mutator->detached_tid = (pid_t)syscall(SYS_gettid);
  mutator->detached_how = how;
  mutator->prev = NULL;
  mutator->next = heap->detached;
  heap->detached = mutator;
  pthread_mutex_unlock(&heap->sp_lock);
}

void ugc_mutators_free_detached(ugc_heap *heap) {
  while (heap->detached) {
    ugc_mutator *next = heap->detached->next;
    free(heap->detached->fast.root_slots);
    free(heap->detached);
    heap->detached = next;
  }
}

ugc_heap *ugc_mutator_heap(const ugc_mutator *mutator) {
  return mutator->heap;
}

void ugc_root_stack_grow(ugc_mutator *mutator) {
  ugc_mutator_fast *fast = &mutator->fast;
  uint32_t capacity = fast->root_capacity ? 2 * fast->root_capacity : 64;
  if (capacity < fast->root_capacity)
    ugc_misuse("ugc_root", "too many handle-scope roots");
  void ***slots = realloc(fast->root_slots, capacity * sizeof *slots);
  if (!slots)
    ugc_misuse("ugc_root", "out of memory growing the handle-scope root stack");
  fast->root_slots = slots;
  fast->root_capacity = capacity;
}
