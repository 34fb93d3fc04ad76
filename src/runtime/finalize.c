/* Finalization (docs/api.md "Finalization"): Java's rules, not bdwgc's ordered ones. Once
 * marking is complete, every registered object that is unmarked is queued at once, whatever
 * references it: a cycle of registered objects is finalized, and an object registered and
 * referenced by another registered object is queued in the same cycle as that object (with
 * bdwgc's topological order it would wait for the next cycle). Queued objects are roots, so
 * everything they reference is kept (resurrection) until the embedder drains the queue,
 * outside the pause. Queue order: registration order within one collection. */
#include <stdlib.h>
#include <string.h>

#include "mark/mark.h"
#include "os/log.h"
#include "runtime/finalize.h"
#include "runtime/heap.h"

static void list_push(ugc_finalizer_list *list, ugc_finalizer_entry entry) {
  if (list->count == list->capacity) {
    if (list->head > 0) { /* reuse the room drained entries left at the front */
      memmove(list->entries, list->entries + list->head,
              (list->count - list->head) * sizeof *list->entries);
      list->count -= list->head;
      list->head = 0;
    }
    if (list->count == list->capacity) {
      size_t capacity = list->capacity ? 2 * list->capacity : 16;
      ugc_finalizer_entry *entries = realloc(list->entries, capacity * sizeof *entries);
      if (!entries)
        ugc_fatal("out of memory recording a finalizer");
      list->entries = entries;
      list->capacity = capacity;
    }
  }
  list->entries[list->count++] = entry;
}

/* Removes the last entry for `slot`, keeping the order of the others. */
static bool list_remove(ugc_finalizer_list *list, void **slot) {
  for (size_t i = list->count; i-- > list->head;)
    if (list->entries[i].slot == slot) {
      memmove(&list->entries[i], &list->entries[i + 1],
              (list->count - i - 1) * sizeof *list->entries);
      list->count--;
      return true;
    }
  return false;
}

void ugc_finalizer_add(ugc_heap *heap, void **slot, void *cookie) {
  if (!slot)
    ugc_misuse("ugc_finalizer_add", "slot is NULL");
  if ((uintptr_t)slot - heap->moving.base < heap->moving.reserved_bytes)
    ugc_misuse("ugc_finalizer_add", "the slot is inside a movable heap object (it would go "
                                    "stale when the object moves)");
  pthread_mutex_lock(&heap->lock);
  list_push(&heap->finalize.registered, (ugc_finalizer_entry){slot, cookie});
  pthread_mutex_unlock(&heap->lock);
}

bool ugc_finalizer_remove(ugc_heap *heap, void **slot) {
  pthread_mutex_lock(&heap->lock);
  bool found =
      list_remove(&heap->finalize.registered, slot) || list_remove(&heap->finalize.queued, slot);
  pthread_mutex_unlock(&heap->lock);
  return found;
}

size_t ugc_finalizers_pending(ugc_heap *heap) {
  pthread_mutex_lock(&heap->lock);
  size_t pending = heap->finalize.queued.count - heap->finalize.queued.head;
  pthread_mutex_unlock(&heap->lock);
  return pending;
}

size_t ugc_finalizers_drain(ugc_mutator *mutator, ugc_finalize_fn fn, void *data) {
  ugc_check_attached(mutator, "ugc_finalizers_drain");
  if (mutator->state == UGC_MUTATOR_BLOCKING)
    ugc_misuse("ugc_finalizers_drain", "called inside a blocking region");
  ugc_heap *heap = mutator->heap;
  ugc_finalizer_list *queue = &heap->finalize.queued;
  size_t handed = 0;
  for (;;) {
    /* A pause takes the heap lock only once every running mutator, this one included,
     * has parked: from here to fn's first safepoint the object cannot move. */
    pthread_mutex_lock(&heap->lock);
    if (queue->head == queue->count) {
      queue->head = queue->count = 0;
      pthread_mutex_unlock(&heap->lock);
      return handed;
    }
    ugc_finalizer_entry entry = queue->entries[queue->head++];
    pthread_mutex_unlock(&heap->lock);
    void *obj = (void *)ugc_tag_reference((uintptr_t)*entry.slot, &heap->root_rule);
    fn(mutator, obj, entry.slot, entry.cookie, data);
    handed++;
  }
}

void ugc_finalize_after_mark(ugc_heap *heap, ugc_marker *marker) {
  ugc_finalizer_list *registered = &heap->finalize.registered;
  size_t kept = registered->head, queued = 0;
  uintptr_t values[64];
  size_t pending = 0;
  for (size_t i = registered->head; i < registered->count; i++) {
    ugc_finalizer_entry entry = registered->entries[i];
    uintptr_t ref = ugc_tag_reference((uintptr_t)*entry.slot, &heap->root_rule);
    if (!ref || ugc_mark_is_live_or_new(heap, ref)) {
      registered->entries[kept++] = entry;
      continue;
    }
    list_push(&heap->finalize.queued, entry);
    queued++;
    values[pending++] = ref;
    if (pending == sizeof values / sizeof values[0]) {
      ugc_marker_add_values(marker, values, pending);
      pending = 0;
    }
  }
  registered->count = kept;
  if (!queued)
    return;
  /* Resurrection: the queued objects and all they reference. An object found unreachable
   * above and reachable from another queued one is queued too (Java's rule). */
  ugc_marker_add_values(marker, values, pending);
  ugc_marker_drain(marker);
}

static void visit_list(ugc_finalizer_list *list, ugc_tracer *tracer, const ugc_tag_rule *rule) {
  for (size_t i = list->head; i < list->count; i++)
    tracer->visit(tracer, list->entries[i].slot, rule);
}

void ugc_finalize_visit_queue(ugc_heap *heap, ugc_tracer *tracer) {
  visit_list(&heap->finalize.queued, tracer, &heap->root_rule);
}

void ugc_finalize_visit_registered(ugc_heap *heap, ugc_tracer *tracer) {
  visit_list(&heap->finalize.registered, tracer, &heap->root_rule);
}

void ugc_finalize_free(ugc_heap *heap) {
  free(heap->finalize.registered.entries);
  free(heap->finalize.queued.entries);
  memset(&heap->finalize, 0, sizeof heap->finalize);
}
