/* ugc_pin and ugc_unpin: a count per object in a table on the side, keyed by payload
 * address. Keys never need updating: a pinned object never moves. The compaction plan gets
 * a sorted snapshot of the pinned moving-space headers (ugc_pins_snapshot, compact/plan.c
 * turns them into fixed ranges). A pin made after the snapshot but before the compaction
 * pause makes the pause recompute the plan (ugc_pins_changed). A pin made while a
 * compaction is in flight touches the object's pages: each is built and mapped before the
 * call returns, and stays mapped until the next compaction, which keeps it in place. */
#include "runtime/pins.h"

#include <stdlib.h>

#include "os/log.h"
#include "runtime/heap.h"
#include "uffdgc.h"

/* Reads one word of every page of the object: a page not built yet is built now (by the
 * fault path), so a system call on the object right after ugc_pin finds it mapped. */
static void touch_pages(uintptr_t hdr) {
  size_t total = ugc_header_total(ugc_header_load(hdr));
  for (uintptr_t page = hdr & ~(uintptr_t)(UGC_PAGE_SIZE - 1); page < hdr + total;
       page += UGC_PAGE_SIZE) {
    uintptr_t word = page < hdr ? hdr : page;
    (void)*(volatile const uint64_t *)word;
  }
}

void ugc_pin(ugc_mutator *mutator, void *obj) {
  ugc_check_attached(mutator, "ugc_pin");
  ugc_heap *heap = mutator->heap;
  uintptr_t ref = (uintptr_t)obj;
  pthread_mutex_lock(&heap->lock);
  ugc_ref_kind kind = ugc_heap_lookup(heap, ref);
  if (kind != UGC_REF_MOVING && kind != UGC_REF_NONMOVING && kind != UGC_REF_LARGE) {
    pthread_mutex_unlock(&heap->lock);
    ugc_misuse("ugc_pin", "obj is not an object of this heap");
  }
  bool inserted = false;
  uint64_t *count = ugc_addrmap_put(&heap->pins.counts, ref, 0, &inserted);
  if (!count)
    ugc_fatal("ugc_pin: out of memory for the pin table");
  if (*count == UINT32_MAX) {
    pthread_mutex_unlock(&heap->lock);
    ugc_misuse("ugc_pin", "obj is pinned 2^32 - 1 times already (unbalanced ugc_pin?)");
  }
  if (++*count == 1)
    heap->pins.generation++;
  pthread_mutex_unlock(&heap->lock);
  if (kind == UGC_REF_MOVING || kind == UGC_REF_LARGE) /* large: its references may be being
                                                         updated (compact/update_pages.h) */
    touch_pages(ref - UGC_HEADER_BYTES);
}

void ugc_unpin(ugc_mutator *mutator, void *obj) {
  ugc_check_attached(mutator, "ugc_unpin");
  ugc_heap *heap = mutator->heap;
  pthread_mutex_lock(&heap->lock);
  uint64_t *count = ugc_addrmap_get(&heap->pins.counts, (uintptr_t)obj);
  if (!count) {
    pthread_mutex_unlock(&heap->lock);
    ugc_misuse("ugc_unpin", "obj is not pinned (more ugc_unpin than ugc_pin calls, or not an "
                            "object pinned with ugc_pin)");
  }
  if (--*count == 0)
    ugc_addrmap_remove(&heap->pins.counts, (uintptr_t)obj);
  pthread_mutex_unlock(&heap->lock);
}

size_t ugc_pin_count(ugc_mutator *mutator, const void *obj) {
  ugc_check_attached(mutator, "ugc_pin_count");
  ugc_heap *heap = mutator->heap;
  pthread_mutex_lock(&heap->lock);
  uint64_t *count = ugc_addrmap_get(&heap->pins.counts, (uintptr_t)obj);
  size_t result = count ? (size_t)*count : 0;
  pthread_mutex_unlock(&heap->lock);
  return result;
}

static int compare_addresses(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return (x > y) - (x < y);
}

void ugc_pins_snapshot(ugc_heap *heap, uintptr_t final_below) {
  ugc_pin_table *pins = &heap->pins;
  const ugc_moving_space *space = &heap->moving;
  pins->header_count = 0;
  pins->snapshot_generation = pins->generation;
  if (!pins->counts.count)
    return;
  if (pins->counts.count > pins->header_capacity) {
    size_t capacity = 2 * pins->counts.count;
    uintptr_t *headers = realloc(pins->headers, capacity * sizeof *headers);
    if (!headers)
      ugc_fatal("out of memory for the pinned objects' snapshot");
    pins->headers = headers;
    pins->header_capacity = capacity;
  }
  size_t count = 0, dead = 0; /* live headers from the front, dead ones from the back */
  for (size_t i = 0; pins->counts.mask && i <= pins->counts.mask; i++) {
    uintptr_t ref = pins->counts.keys[i];
    if (!ref || ref - space->base - UGC_HEADER_BYTES >= space->reserved_bytes)
      continue;
    uintptr_t hdr = ref - UGC_HEADER_BYTES;
    size_t bit = (hdr - space->base) / 8;
    if (hdr < final_below && !((space->start_words[bit / 64] >> (bit % 64)) & 1))
      pins->headers[pins->header_capacity - ++dead] = ref;
    else
      pins->headers[count++] = hdr;
  }
  for (size_t i = 0; i < dead; i++) /* after the scan: removal shifts entries */
    ugc_addrmap_remove(&pins->counts, pins->headers[pins->header_capacity - 1 - i]);
  pins->header_count = count;
  qsort(pins->headers, pins->header_count, sizeof *pins->headers, compare_addresses);
}

int ugc_pins_changed(const ugc_heap *heap) {
  return heap->pins.generation != heap->pins.snapshot_generation;
}

int ugc_pins_at_or_above(const ugc_heap *heap, uintptr_t top) {
  const ugc_pin_table *pins = &heap->pins;
  return pins->header_count && pins->headers[pins->header_count - 1] >= top;
}

void ugc_pins_free(ugc_pin_table *pins) {
  ugc_addrmap_free(&pins->counts);
  free(pins->headers);
  pins->headers = NULL;
  pins->header_count = pins->header_capacity = 0;
}
