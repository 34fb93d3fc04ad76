/* Snapshot-at-the-beginning buffers: while concurrent marking runs, ugc_write records the
 * value a store overwrites (and the value it stores) into a per-mutator buffer; full
 * buffers go to a queue that the marker empties. See docs/design.md, "Concurrent marking". */
#ifndef UGC_MARK_SATB_H
#define UGC_MARK_SATB_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define UGC_SATB_ENTRIES 510u /* a buffer is 4 KiB */

typedef struct ugc_satb_buffer {
  struct ugc_satb_buffer *next;
  size_t count;
  uintptr_t values[UGC_SATB_ENTRIES];
} ugc_satb_buffer;

typedef struct ugc_satb_queue {
  pthread_mutex_t lock;
  ugc_satb_buffer *full;  /* handed over by mutators, not yet marked */
  ugc_satb_buffer *spare; /* emptied, for mutators to take */
  size_t full_count;
  /* Moving-space values in [black_low, black_low + black_bytes) are objects allocated
   * during marking: not worth recording. Set in the initial pause. */
  uintptr_t black_low;
  size_t black_bytes;
} ugc_satb_queue;

void ugc_satb_init(ugc_satb_queue *queue);
void ugc_satb_destroy(ugc_satb_queue *queue);

/* Takes every full buffer (a list linked by next); NULL if none. */
ugc_satb_buffer *ugc_satb_take_full(ugc_satb_queue *queue);
/* How many full buffers wait (a hint: read without the lock). */
size_t ugc_satb_full_count(ugc_satb_queue *queue);
/* Gives emptied buffers back. */
void ugc_satb_recycle(ugc_satb_queue *queue, ugc_satb_buffer *list);

#endif
