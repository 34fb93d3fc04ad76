/* Global roots, root enumerators and weak slots (registration only; scanning is in
 * src/mark/ and src/runtime/collect.c). All under the heap lock, which the collector holds
 * for the whole pause, so the lists never change under its feet. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/heap.h"

#define NO_ENTRY SIZE_MAX

static void slot_add(ugc_slot_list *list, void **slot, const char *call) {
  if (list->count == list->capacity) {
    size_t capacity = list->capacity ? 2 * list->capacity : 16;
    void ***slots = realloc(list->slots, capacity * sizeof *slots);
    if (slots)
      list->slots = slots;
    ugc_slot_links *links = realloc(list->links, capacity * sizeof *links);
    if (links)
      list->links = links;
    if (!slots || !links)
      ugc_misuse(call, "out of memory");
    list->capacity = capacity;
  }
  size_t index = list->count;
  bool inserted = false;
  uint64_t *where = ugc_addrmap_put(&list->where, (uintptr_t)slot, index, &inserted);
  if (!where)
    ugc_misuse(call, "out of memory");
  list->links[index] = (ugc_slot_links){NO_ENTRY, NO_ENTRY};
  if (!inserted) { /* registered before: the new entry heads its chain */
    list->links[index].next = *where;
    list->links[*where].prev = index;
    *where = index;
  }
  list->slots[list->count++] = slot;
}

/* Removes one registration of `slot` in O(1): its chain's head is unlinked and the last
 * entry takes its place, so the order of the others changes (nothing depends on it). */
static bool slot_remove(ugc_slot_list *list, void **slot) {
  uint64_t *where = ugc_addrmap_get(&list->where, (uintptr_t)slot);
  if (!where)
    return false;
  size_t index = *where, next = list->links[index].next;
  if (next == NO_ENTRY) {
    ugc_addrmap_remove(&list->where, (uintptr_t)slot);
  } else {
    list->links[next].prev = NO_ENTRY;
    *where = next;
  }
  size_t last = --list->count;
  if (index == last)
    return true;
  void **moved = list->slots[last];
  ugc_slot_links links = list->links[last];
  list->slots[index] = moved;
  list->links[index] = links;
  if (links.prev == NO_ENTRY)
    *ugc_addrmap_get(&list->where, (uintptr_t)moved) = index;
  else
    list->links[links.prev].next = index;
  if (links.next != NO_ENTRY)
    list->links[links.next].prev = index;
  return true;
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

const ugc_tag_rule ugc_untagged_rule = {0, 0, 0, 0};

void ugc_trace_slot(ugc_tracer *tracer, void **slot) {
  tracer->visit(tracer, slot, &ugc_untagged_rule);
}

void ugc_trace_tagged(ugc_tracer *tracer, uintptr_t *slot, uintptr_t tag_mask) {
  ugc_tag_rule rule = {tag_mask, 0, 0, 0};
  tracer->visit(tracer, slot, &rule);
}

void ugc_trace_value(ugc_tracer *tracer, uintptr_t *slot, const ugc_tag_rule *rule) {
  if (!rule || (rule->pointer_tag & ~rule->pointer_tag_mask) ||
      (rule->reference_offset & rule->tag_mask))
    ugc_misuse("ugc_trace_value", "rule is NULL, its pointer_tag has bits outside "
                                  "pointer_tag_mask or its reference_offset bits inside "
                                  "tag_mask");
  tracer->visit(tracer, slot, rule);
}

void ugc_roots_visit(ugc_heap *heap, ugc_tracer *tracer) {
  const ugc_tag_rule *rule = &heap->root_rule;
  /* After fork() a GONE mutator has no roots (heap.c: its stack is reused in the child). */
  for (ugc_mutator *m = heap->mutators_head; m; m = m->next) {
    for (uint32_t i = 0; i < m->fast.root_count; i++)
      tracer->visit(tracer, m->fast.root_slots[i], rule);
  }
  for (size_t i = 0; i < heap->globals.count; i++)
    tracer->visit(tracer, heap->globals.slots[i], rule);
  for (size_t i = 0; i < heap->enumerator_count; i++)
    heap->enumerators[i].fn(tracer, heap->enumerators[i].data);
  ugc_finalize_visit_queue(heap, tracer);
}
