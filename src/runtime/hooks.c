/* After-marking and relocation hooks: registration (under the heap lock, like root
 * enumerators) and the relocation call. The after-marking rounds run in mark/mark.c, at
 * the end of marking. */
#include "runtime/hooks.h"

#include <stdlib.h>
#include <string.h>

#include "os/log.h"

struct ugc_relocation {
  const ugc_compact_plan *plan; /* NULL: this collection moves nothing */
};

static void hook_add(ugc_heap *heap, ugc_hook_list *list, void (*fn)(void), void *data,
                     const char *call) {
  if (!fn)
    ugc_misuse(call, "fn is NULL");
  pthread_mutex_lock(&heap->lock);
  if (list->count == list->capacity) {
    size_t capacity = list->capacity ? 2 * list->capacity : 4;
    ugc_hook *hooks = realloc(list->hooks, capacity * sizeof *hooks);
    if (!hooks)
      ugc_misuse(call, "out of memory");
    list->hooks = hooks;
    list->capacity = capacity;
  }
  list->hooks[list->count++] = (ugc_hook){fn, data};
  pthread_mutex_unlock(&heap->lock);
}

static void hook_remove(ugc_heap *heap, ugc_hook_list *list, void (*fn)(void), void *data,
                        const char *call) {
  pthread_mutex_lock(&heap->lock);
  bool found = false;
  for (size_t i = list->count; i-- > 0;)
    if (list->hooks[i].fn == fn && list->hooks[i].data == data) {
      memmove(&list->hooks[i], &list->hooks[i + 1], (list->count - i - 1) * sizeof *list->hooks);
      list->count--;
      found = true;
      break;
    }
  pthread_mutex_unlock(&heap->lock);
  if (!found)
    ugc_misuse(call, "no hook registered with this fn and data");
}

void ugc_after_mark_add(ugc_heap *heap, ugc_after_mark_fn fn, void *data) {
  hook_add(heap, &heap->after_mark, (void (*)(void))fn, data, "ugc_after_mark_add");
}

void ugc_after_mark_remove(ugc_heap *heap, ugc_after_mark_fn fn, void *data) {
  hook_remove(heap, &heap->after_mark, (void (*)(void))fn, data, "ugc_after_mark_remove");
}

void ugc_relocation_hook_add(ugc_heap *heap, ugc_relocation_fn fn, void *data) {
  hook_add(heap, &heap->relocation, (void (*)(void))fn, data, "ugc_relocation_hook_add");
}

void ugc_relocation_hook_remove(ugc_heap *heap, ugc_relocation_fn fn, void *data) {
  hook_remove(heap, &heap->relocation, (void (*)(void))fn, data, "ugc_relocation_hook_remove");
}

void *ugc_new_address(const ugc_relocation *relocation, const void *obj) {
  if (!relocation->plan)
    return (void *)obj;
  return (void *)ugc_compact_forward_ref(relocation->plan, (uintptr_t)obj);
}

void ugc_hooks_relocation(ugc_heap *heap, const ugc_compact_plan *plan) {
  ugc_relocation relocation = {plan};
  for (size_t i = 0; i < heap->relocation.count; i++)
    ((ugc_relocation_fn)heap->relocation.hooks[i].fn)(heap, &relocation,
                                                      heap->relocation.hooks[i].data);
}
