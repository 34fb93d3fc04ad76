/* Global roots, root enumerators and weak slots (registration only; scanning is in
 * src/mark/ and src/runtime/collect.c). All under the heap lock, which the collector holds
 * for the whole pause, so the lists never change under its feet. */
#include <stdlib.h>
#include <string.h>

#include "runtime/heap.h"

static void slot_add(ugc_slot_list *list, void **slot, const char *call) {
  if (list->count == list->capacity) {
    size_t capacity = list->capacity ? 2 * list->capacity : 16;
    void ***slots = realloc(list->slots, capacity * sizeof *slots);
    if (!slots)
      ugc_misuse(call, "out of memory");
    list->slots = slots;
    list->capacity = capacity;
  }
  list->slots[list->count++] = slot;
}

/* Removes the last registration of `slot`, keeping the order of the others (the digest
 * visits roots in registration order). */
static bool slot_remove(ugc_slot_list *list, void **slot) {
  for (size_t i = list->count; i-- > 0;)
    if (list->slots[i] == slot) {
      memmove(&list->slots[i], &list->slots[i + 1], (list->count - i - 1) * sizeof(void **));
      list->count--;
      return true;
    }
  return false;
}

/* A slot inside the moving space is a field of an object that moves: the registration
 * would keep its old address, and a later cycle would write into whatever lands there. */
static void check_slot_stays(const ugc_heap *heap, void **slot, const char *call) {
  if (!slot)
    ugc_misuse(call, "slot is NULL");
  if ((uintptr_t)slot - heap->moving.base < heap->moving.reserved_bytes)
    ugc_misuse(call, "the slot is inside a movable heap object (it would go stale when the "
                     "object moves): use a global, malloc'd memory or a pinned object "
                     "(ugc_alloc_pinned)");
}

void ugc_global_root_add(ugc_heap *heap, void **slot) {
  check_slot_stays(heap, slot, "ugc_global_root_add");
  pthread_mutex_lock(&heap->lock);
  slot_add(&heap->globals, slot, "ugc_global_root_add");
  pthread_mutex_unlock(&heap->lock);
}

void ugc_global_root_remove(ugc_heap *heap, void **slot) {
  pthread_mutex_lock(&heap->lock);
  bool found = slot_remove(&heap->globals, slot);
  pthread_mutex_unlock(&heap->lock);
  if (!found)
    ugc_misuse("ugc_global_root_remove", "the slot is not a registered global root");
}

void ugc_weak_add(ugc_heap *heap, void **slot) {
  check_slot_stays(heap, slot, "ugc_weak_add");
  pthread_mutex_lock(&heap->lock);
  slot_add(&heap->weaks, slot, "ugc_weak_add");
  pthread_mutex_unlock(&heap->lock);
}

void ugc_weak_remove(ugc_heap *heap, void **slot) {
  pthread_mutex_lock(&heap->lock);
  bool found = slot_remove(&heap->weaks, slot);
  pthread_mutex_unlock(&heap->lock);
  if (!found)
    ugc_misuse("ugc_weak_remove", "the slot is not a registered weak slot");
}

void ugc_root_enumerator_add(ugc_heap *heap, ugc_root_enumerator fn, void *data) {
  if (!fn)
    ugc_misuse("ugc_root_enumerator_add", "fn is NULL");
  pthread_mutex_lock(&heap->lock);
  if (heap->enumerator_count == heap->enumerator_capacity) {
    size_t capacity = heap->enumerator_capacity ? 2 * heap->enumerator_capacity : 8;
    ugc_enumerator *list = realloc(heap->enumerators, capacity * sizeof *list);
    if (!list)
      ugc_misuse("ugc_root_enumerator_add", "out of memory");
    heap->enumerators = list;
    heap->enumerator_capacity = capacity;
  }
  heap->enumerators[heap->enumerator_count++] = (ugc_enumerator){fn, data};
  pthread_mutex_unlock(&heap->lock);
}

void ugc_root_enumerator_remove(ugc_heap *heap, ugc_root_enumerator fn, void *data) {
  pthread_mutex_lock(&heap->lock);
  bool found = false;
  for (size_t i = heap->enumerator_count; i-- > 0;)
    if (heap->enumerators[i].fn == fn && heap->enumerators[i].data == data) {
      memmove(&heap->enumerators[i], &heap->enumerators[i + 1],
              (heap->enumerator_count - i - 1) * sizeof *heap->enumerators);
      heap->enumerator_count--;
      found = true;
      break;
    }
  pthread_mutex_unlock(&heap->lock);
  if (!found)
    ugc_misuse("ugc_root_enumerator_remove", "no enumerator registered with this fn and data");
}

void ugc_trace_slot(ugc_tracer *tracer, void **slot) {
  tracer->visit(tracer, slot, 0);
}

void ugc_trace_tagged(ugc_tracer *tracer, uintptr_t *slot, uintptr_t tag_mask) {
  tracer->visit(tracer, slot, tag_mask);
}

void ugc_roots_visit(ugc_heap *heap, ugc_tracer *tracer) {
  uintptr_t mask = heap->config.root_tag_mask;
  /* After fork() a GONE mutator has no roots (heap.c: its stack is reused in the child). */
  for (ugc_mutator *m = heap->mutators_head; m; m = m->next) {
    for (uint32_t i = 0; i < m->fast.root_count; i++)
      tracer->visit(tracer, m->fast.root_slots[i], mask);
  }
  for (size_t i = 0; i < heap->globals.count; i++)
    tracer->visit(tracer, heap->globals.slots[i], mask);
  for (size_t i = 0; i < heap->enumerator_count; i++)
    heap->enumerators[i].fn(tracer, heap->enumerators[i].data);
  ugc_finalize_visit_queue(heap, tracer);
}
