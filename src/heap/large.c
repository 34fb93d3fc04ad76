#include "heap/large.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "heap/object.h"
#include "heap/vm.h"

void ugc_large_destroy(ugc_large_space *space) {
  for (size_t i = 0; i < space->count; i++)
    munmap((void *)space->objects[i].hdr, space->objects[i].map_bytes);
  free(space->objects);
  memset(space, 0, sizeof *space);
}

static void recompute_bounds(ugc_large_space *space) {
  if (!space->count) {
    space->low = space->high = 0;
    return;
  }
  space->low = space->objects[0].hdr;
  ugc_large_object *last = &space->objects[space->count - 1];
  space->high = last->hdr + last->map_bytes;
}

/* Objects of 2 MiB or more start on a 2 MiB boundary: moving one away for its references
 * to be updated after the pause (compact/update_pages.c) then moves whole page-table pages
 * (a 64 MiB array: about 0.3 ms one PTE at a time, 20 us this way). */
#define LARGE_ALIGN ((size_t)2 << 20)

static void *map_object(size_t bytes) {
  if (bytes < LARGE_ALIGN)
    return mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *map =
      mmap(NULL, bytes + LARGE_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED)
    return MAP_FAILED;
  char *start = (char *)ugc_round_up((uintptr_t)map, LARGE_ALIGN);
  if (start > map)
    munmap(map, (size_t)(start - map));
  if (start + bytes < map + bytes + LARGE_ALIGN)
    munmap(start + bytes, (size_t)(map + bytes + LARGE_ALIGN - (start + bytes)));
  return start;
}

uintptr_t ugc_large_alloc(ugc_large_space *space, size_t total) {
  if (space->count == space->capacity) {
    size_t capacity = space->capacity ? 2 * space->capacity : 16;
    ugc_large_object *objects = realloc(space->objects, capacity * sizeof *objects);
    if (!objects)
      return 0;
    space->objects = objects;
    space->capacity = capacity;
  }
  size_t bytes = ugc_round_up(total, 4096);
  void *map = map_object(bytes);
  if (map == MAP_FAILED)
    return 0;
  uintptr_t hdr = (uintptr_t)map;
  size_t at = space->count;
  while (at > 0 && space->objects[at - 1].hdr > hdr)
    at--;
  memmove(&space->objects[at + 1], &space->objects[at],
          (space->count - at) * sizeof *space->objects);
  space->objects[at].hdr = hdr;
  space->objects[at].map_bytes = bytes;
  atomic_init(&space->objects[at].marked, 0);
  space->objects[at].allocated_pinned = false;
  space->count++;
  space->used_bytes += bytes;
  recompute_bounds(space);
  return hdr;
}

size_t ugc_large_sweep(ugc_large_space *space) {
  size_t freed = 0, kept = 0;
  for (size_t i = 0; i < space->count; i++) {
    ugc_large_object *object = &space->objects[i];
    if (atomic_load_explicit(&object->marked, memory_order_relaxed)) {
      atomic_store_explicit(&object->marked, 0, memory_order_relaxed);
      if (kept != i) {
        space->objects[kept].hdr = object->hdr;
        space->objects[kept].map_bytes = object->map_bytes;
        atomic_init(&space->objects[kept].marked, 0);
      }
      kept++;
      continue;
    }
    freed += ugc_header_total(ugc_header_load(object->hdr));
    space->used_bytes -= object->map_bytes;
    munmap((void *)object->hdr, object->map_bytes);
  }
  space->count = kept;
  recompute_bounds(space);
  return freed;
}
