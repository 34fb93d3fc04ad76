/* Mutator-assisted marking (see assist.h). */
#include "runtime/assist.h"

#include "mark/mark.h"
#include "os/time.h"
#include "runtime/heap.h"

/* Marking is meant to be over when this share of the room below heap_max is allocated:
 * the rest covers the remark, the sweep, the plan and the compaction pause. */
#define ASSIST_ROOM_SHARE 0.5
/* A mutator marks at least this much when it assists (a pool visit costs a lock and a
 * chunk copy; Go's runtime rounds up likewise) and at most this much per slow-path call
 * (about half a millisecond here: the latency an allocation may pay). */
#define ASSIST_MIN_BYTES ((size_t)64 * 1024)
#define ASSIST_MAX_BYTES ((size_t)512 * 1024)
/* Debt beyond this is forgiven: a mutator that found no work for a while must not pay for
 * it in one long stretch later (its allocations would wait at heap_max instead). */
#define ASSIST_MAX_DEBT ((int64_t)8 * 1024 * 1024)
/* How long an assist waits for a GC thread to hand it work. */
#define ASSIST_WAIT_NS 20000u
/* Above this ratio the heap is as good as full: mutators mark as much as they can. */
#define ASSIST_MAX_WORK_PER_BYTE 64.0
/* Empty takes in a row after which a thread waiting for the cycle stops assisting. */
#define WAITING_EMPTY_TRIES 3

void ugc_assist_init(ugc_assist *assist) {
  pthread_mutex_init(&assist->lock, NULL);
  pthread_cond_init(&assist->idle, NULL);
  assist->marker = NULL;
  assist->in_flight = 0;
}

void ugc_assist_destroy(ugc_assist *assist) {
  pthread_mutex_destroy(&assist->lock);
  pthread_cond_destroy(&assist->idle);
}

void ugc_assist_fork_child(ugc_assist *assist) {
  ugc_assist_init(assist);
}

static void reset_debt(ugc_mutator *mutator, void *data) {
  (void)data;
  mutator->assist_debt = 0;
}

void ugc_assist_begin(ugc_heap *heap, struct ugc_marker *marker, size_t expected_work) {
  ugc_assist *assist = &heap->assist;
  if (!heap->config.mark_assist)
    return;
  size_t used =
      (heap->moving.top - heap->moving.base) + heap->nonmoving.used_bytes + heap->large.used_bytes;
  size_t room = used < heap->config.heap_max ? heap->config.heap_max - used : 0;
  double allowed = ASSIST_ROOM_SHARE * (double)room;
  double ratio = allowed > 0 ? (double)expected_work / allowed : ASSIST_MAX_WORK_PER_BYTE;
  ugc_heap_for_each_mutator(heap, reset_debt, NULL);
  ugc_marker_open_for_assists(marker);
  pthread_mutex_lock(&assist->lock);
  assist->work_per_byte = ratio < ASSIST_MAX_WORK_PER_BYTE ? ratio : ASSIST_MAX_WORK_PER_BYTE;
  assist->marker = marker;
  assist->calls = assist->bytes = assist->ns = 0;
  pthread_mutex_unlock(&assist->lock);
}

void ugc_assist_end(ugc_heap *heap) {
  ugc_assist *assist = &heap->assist;
  pthread_mutex_lock(&assist->lock);
  assist->marker = NULL;
  while (assist->in_flight)
    pthread_cond_wait(&assist->idle, &assist->lock);
  uint64_t calls = assist->calls, bytes = assist->bytes, ns = assist->ns;
  pthread_mutex_unlock(&assist->lock);
  pthread_mutex_lock(&heap->lock);
  heap->stats.mark_assists += calls;
  heap->stats.mark_assist_bytes += bytes;
  heap->stats.mark_assist_ns += ns;
  pthread_mutex_unlock(&heap->lock);
}

/* Enters an assist of the marker running now: NULL when none may start. */
static struct ugc_marker *assist_enter(ugc_assist *assist, double *work_per_byte) {
  pthread_mutex_lock(&assist->lock);
  struct ugc_marker *marker = assist->marker;
  if (marker)
    assist->in_flight++;
  if (work_per_byte)
    *work_per_byte = assist->work_per_byte;
  pthread_mutex_unlock(&assist->lock);
  return marker;
}

/* Leaves it, with the scan work done and the time it took. */
static void assist_leave(ugc_assist *assist, size_t done, uint64_t ns) {
  pthread_mutex_lock(&assist->lock);
  if (done) {
    assist->calls++;
    assist->bytes += done;
    assist->ns += ns;
  }
  if (--assist->in_flight == 0 && !assist->marker)
    pthread_cond_broadcast(&assist->idle);
  pthread_mutex_unlock(&assist->lock);
}

size_t ugc_assist_while_waiting(ugc_mutator *mutator) {
  ugc_assist *assist = &mutator->heap->assist;
  size_t total = 0;
  /* An empty take may only mean that the GC thread has not shared its stack yet (it does
   * when an assist found the pool empty): a few tries before giving up. */
  for (unsigned empty = 0; empty < WAITING_EMPTY_TRIES;) {
    ugc_safepoint(mutator);
    struct ugc_marker *marker = assist_enter(assist, NULL);
    if (!marker)
      break;
    uint64_t start = ugc_now_ns();
    size_t done = ugc_marker_assist(marker, ASSIST_MAX_BYTES, ASSIST_WAIT_NS);
    assist_leave(assist, done, ugc_now_ns() - start);
    total += done;
    empty = done ? 0 : empty + 1;
  }
  return total;
}

void ugc_assist_alloc(ugc_mutator *mutator, size_t bytes) {
  if (!mutator->fast.marking)
    return;
  ugc_assist *assist = &mutator->heap->assist;
  double ratio;
  struct ugc_marker *marker = assist_enter(assist, &ratio);
  if (!marker)
    return;
  mutator->assist_debt += (int64_t)(ratio * (double)bytes);
  if (mutator->assist_debt > 0)
    mutator->assist_debt -= (int64_t)ugc_marker_take_credit(marker, (size_t)mutator->assist_debt);
  size_t done = 0;
  uint64_t start = 0, end = 0;
  if (mutator->assist_debt > 0) {
    size_t budget = (size_t)mutator->assist_debt;
    budget = budget < ASSIST_MIN_BYTES   ? ASSIST_MIN_BYTES
             : budget > ASSIST_MAX_BYTES ? ASSIST_MAX_BYTES
                                         : budget;
    start = ugc_now_ns();
    done = ugc_marker_assist(marker, budget, ASSIST_WAIT_NS);
    end = ugc_now_ns();
    mutator->assist_debt -= (int64_t)done;
    if (mutator->assist_debt > ASSIST_MAX_DEBT)
      mutator->assist_debt = ASSIST_MAX_DEBT;
  }
  assist_leave(assist, done, end - start);
}
