/* Mutator-assisted marking, paced by allocation (docs/design.md, "Mutator assists").
 *
 * While a concurrent marking drains, every byte a mutator allocates in a slow path adds
 * `work_per_byte` bytes of scan work to its debt. A mutator in debt first takes the scan
 * work the GC threads have done and no mutator has claimed yet (credit); what is still
 * owed it marks itself, a bounded amount per slow-path call. work_per_byte is chosen in
 * the initial pause so that the marking is done when half of the room left below heap_max
 * is allocated: mutators that outrun the GC threads then mark instead of running out of
 * heap and waiting for the cycle. The inline allocation path never gets here. */
#ifndef UGC_RUNTIME_ASSIST_H
#define UGC_RUNTIME_ASSIST_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "uffdgc.h"

struct ugc_marker;

typedef struct ugc_assist {
  pthread_mutex_t lock;
  pthread_cond_t idle;       /* in_flight fell to 0 */
  struct ugc_marker *marker; /* set while marking runs concurrently, else NULL */
  unsigned in_flight;        /* mutators inside an assist of this marker */
  double work_per_byte;      /* scan work owed per allocated byte, this cycle */
  /* This cycle's assists, added to the statistics when marking ends. */
  uint64_t calls, bytes, ns;
} ugc_assist;

void ugc_assist_init(ugc_assist *assist);
void ugc_assist_destroy(ugc_assist *assist);
/* fork(): the child's lock may have been held by a vanished thread. */
void ugc_assist_fork_child(ugc_assist *assist);

/* Initial pause (world stopped, heap lock held): mutators may assist `marker` from now on,
 * owing `expected_work` bytes of scan work (the last cycle's live bytes) over half of the
 * room left below heap_max. Does nothing when config.mark_assist is 0. */
void ugc_assist_begin(ugc_heap *heap, struct ugc_marker *marker, size_t expected_work);
/* The collector, once the concurrent drains are over, before the remark pause (no lock
 * held): no assist may start any more; waits for those in flight, adds the statistics. */
void ugc_assist_end(ugc_heap *heap);
/* A slow-path allocation of `bytes` (no lock held): pays the mutator's marking debt. */
void ugc_assist_alloc(ugc_mutator *mutator, size_t bytes);
/* A mutator that waits for a cycle (ugc_collect, a full heap; RUNNING, no lock held) marks
 * while the concurrent drains run, whatever its debt, until no work is left to take; it
 * reaches safepoints between steps. Returns the scan work it did, in bytes. */
size_t ugc_assist_while_waiting(ugc_mutator *mutator);

#endif
