/* The write barrier's slow path while concurrent marking runs (see satb.h). */
#include "mark/satb.h"

#include <stdlib.h>
#include <string.h>

#include "os/log.h"
#include "runtime/heap.h"

void ugc_satb_init(ugc_satb_queue *queue) {
  memset(queue, 0, sizeof *queue);
  pthread_mutex_init(&queue->lock, NULL);
}

static void free_list(ugc_satb_buffer *buffer) {
  while (buffer) {
    ugc_satb_buffer *next = buffer->next;
    free(buffer);
    buffer = next;
  }
}

void ugc_satb_destroy(ugc_satb_queue *queue) {
  free_list(queue->full);
  free_list(queue->spare);
  pthread_mutex_destroy(&queue->lock);
}

ugc_satb_buffer *ugc_satb_take_full(ugc_satb_queue *queue) {
  pthread_mutex_lock(&queue->lock);
  ugc_satb_buffer *list = queue->full;
  queue->full = NULL;
  queue->full_count = 0;
  pthread_mutex_unlock(&queue->lock);
  return list;
}

size_t ugc_satb_full_count(ugc_satb_queue *queue) {
  return __atomic_load_n(&queue->full_count, __ATOMIC_RELAXED);
}

void ugc_satb_recycle(ugc_satb_queue *queue, ugc_satb_buffer *list) {
  if (!list)
    return;
  ugc_satb_buffer *last = list;
  while (last->next)
    last = last->next;
  pthread_mutex_lock(&queue->lock);
  last->next = queue->spare;
  queue->spare = list;
  pthread_mutex_unlock(&queue->lock);
}

/* Hands the mutator's buffer over (if it holds anything) and gives it an empty one. */
static ugc_satb_buffer *swap_buffer(ugc_mutator *mutator) {
  ugc_satb_queue *queue = &mutator->heap->satb;
  ugc_satb_buffer *old = mutator->satb;
  pthread_mutex_lock(&queue->lock);
  if (old && old->count) {
    old->next = queue->full;
    queue->full = old;
    __atomic_store_n(&queue->full_count, queue->full_count + 1, __ATOMIC_RELAXED);
    old = NULL;
  }
  ugc_satb_buffer *fresh = old;
  if (!fresh && (fresh = queue->spare))
    queue->spare = fresh->next;
  pthread_mutex_unlock(&queue->lock);
  if (!fresh && !(fresh = malloc(sizeof *fresh)))
    ugc_fatal("out of memory for a write-barrier buffer");
  fresh->next = NULL;
  fresh->count = 0;
  mutator->satb = fresh;
  return fresh;
}

static inline void record(ugc_mutator *mutator, uintptr_t value) {
  const ugc_satb_queue *queue = &mutator->heap->satb;
  if (!value || value - queue->black_low < queue->black_bytes)
    return; /* NULL, or an object allocated during marking (already live) */
  ugc_satb_buffer *buffer = mutator->satb;
  if (__builtin_expect(!buffer || buffer->count == UGC_SATB_ENTRIES, 0))
    buffer = swap_buffer(mutator);
  buffer->values[buffer->count++] = value;
  mutator->satb_recorded++;
}

/* The overwritten value keeps the snapshot intact; the stored one covers a value that
 * reached the mutator through a weak slot (not in the snapshot) and is now stored into an
 * object. Both run on the storing thread before the store. */
void ugc_write_marking(ugc_mutator *mutator, void **slot, void *value) {
  record(mutator, (uintptr_t)__atomic_load_n(slot, __ATOMIC_RELAXED));
  record(mutator, (uintptr_t)value);
}

void ugc_write_tagged_marking(ugc_mutator *mutator, const void *obj, uintptr_t *slot,
                              uintptr_t value) {
  ugc_heap *heap = mutator->heap;
  uint64_t header = ugc_header_load((uintptr_t)obj - UGC_HEADER_BYTES);
  ugc_type_id type = ugc_header_type(header);
  const ugc_tag_rule *rule = type && type < ugc_type_count(&heap->types)
                                 ? &ugc_type_get(&heap->types, type)->tags
                                 : &heap->root_rule;
  record(mutator, ugc_tag_reference(__atomic_load_n(slot, __ATOMIC_RELAXED), rule));
  record(mutator, ugc_tag_reference(value, rule));
}
