/* A small FIFO of references waiting to be marked (the prefetch queue of Boehm's and
 * Whippet's markers).
 *
 * Marking a moving-space reference touches two cold cache lines: the live-words bitmap
 * word (test-and-set of the mark bit) and, if this thread wins, the object's header. Going
 * through the references one by one, every miss stalls the marker. Instead, a reference is
 * first put into this queue and both lines are prefetched; it is marked only when
 * UGC_PREFETCH_QUEUE_SIZE later references have been queued, by which time the lines have
 * usually arrived. The order in which objects get marked changes; what gets marked does
 * not. */
#ifndef UGC_MARK_PREFETCH_QUEUE_H
#define UGC_MARK_PREFETCH_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

/* A power of two, about as many misses as a core keeps in flight. Measured (copy backend,
 * mark pause p50 against a queue of 1): latency (random graph) 0.68x, frag 0.77x, gcbench
 * (allocation-ordered trees, which the hardware prefetcher already serves) 1.1x; 8 and 32
 * were no better than 16, 4 was worse. Overridable with -D for such measurements. */
#ifndef UGC_PREFETCH_QUEUE_SIZE
#define UGC_PREFETCH_QUEUE_SIZE 16u
#endif

typedef struct ugc_prefetch_queue {
  uintptr_t items[UGC_PREFETCH_QUEUE_SIZE];
  unsigned head; /* oldest item */
  unsigned count;
} ugc_prefetch_queue;

static inline bool ugc_prefetch_queue_empty(const ugc_prefetch_queue *queue) {
  return queue->count == 0;
}

static inline bool ugc_prefetch_queue_full(const ugc_prefetch_queue *queue) {
  return queue->count == UGC_PREFETCH_QUEUE_SIZE;
}

/* Appends `item`; the queue must not be full. */
static inline void ugc_prefetch_queue_put(ugc_prefetch_queue *queue, uintptr_t item) {
  queue->items[(queue->head + queue->count) & (UGC_PREFETCH_QUEUE_SIZE - 1)] = item;
  queue->count++;
}

/* Removes and returns the oldest item; the queue must not be empty. */
static inline uintptr_t ugc_prefetch_queue_take(ugc_prefetch_queue *queue) {
  uintptr_t item = queue->items[queue->head];
  queue->head = (queue->head + 1) & (UGC_PREFETCH_QUEUE_SIZE - 1);
  queue->count--;
  return item;
}

#endif
