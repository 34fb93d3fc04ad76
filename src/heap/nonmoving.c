#include "heap/nonmoving.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heap/vm.h"

/* Classes: multiples of 16 bytes up to 1 KiB, then four steps per power of two. */
static size_t class_size_at(size_t index) {
  if (index < 64)
    return 16 * (index + 1);
  size_t step = index - 64;
  size_t power = (size_t)1024 << (step / 4);
  return power + (power / 4) * (step % 4 + 1);
}

static size_t class_of(const ugc_nonmoving_space *space, size_t total) {
  if (total <= 1024)
    return total ? (total - 1) / 16 : 0;
  size_t lo = 64, hi = space->class_count - 1; /* first class whose size fits */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (space->class_bytes[mid] >= total)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

int ugc_nonmoving_init(ugc_nonmoving_space *space, uintptr_t base, size_t bytes, size_t max_total) {
  memset(space, 0, sizeof *space);
  space->base = space->top = base;
  space->end = base + bytes;
  size_t count = 0;
  while (class_size_at(count) < max_total)
    count++;
  space->class_count = count + 1;
  space->class_bytes = calloc(space->class_count, sizeof(uint32_t));
  space->free_lists = calloc(space->class_count, sizeof(uintptr_t));
  space->unit_spans = calloc(bytes >> UGC_NM_UNIT_SHIFT, sizeof(ugc_nm_span *));
  if (!space->class_bytes || !space->free_lists || !space->unit_spans) {
    ugc_nonmoving_destroy(space);
    errno = ENOMEM;
    return -1;
  }
  for (size_t i = 0; i < space->class_count; i++)
    space->class_bytes[i] = (uint32_t)class_size_at(i);
  if (bytes && ugc_vm_map_fixed((void *)base, bytes, true) != 0) {
    ugc_nonmoving_destroy(space);
    return -1;
  }
  return 0;
}

void ugc_nonmoving_destroy(ugc_nonmoving_space *space) {
  for (size_t i = 0; i < space->span_count; i++) {
    free(space->spans[i]->alloc_bits);
    free((void *)space->spans[i]->mark_bits);
    free(space->spans[i]);
  }
  free(space->spans);
  free(space->unit_spans);
  free(space->class_bytes);
  free(space->free_lists);
  memset(space, 0, sizeof *space);
}

/* Cuts a new span for class `cls` from the reservation and threads its cells onto the
 * class's free list (in address order, so allocation fills the span front to back). */
static bool add_span(ugc_nonmoving_space *space, size_t cls) {
  size_t cell = space->class_bytes[cls];
  size_t bytes = ugc_round_up(cell > UGC_NM_UNIT ? cell : UGC_NM_UNIT, UGC_NM_UNIT);
  if (bytes > space->end - space->top)
    return false;
  if (space->span_count == space->span_capacity) {
    size_t capacity = space->span_capacity ? 2 * space->span_capacity : 16;
    ugc_nm_span **spans = realloc(space->spans, capacity * sizeof *spans);
    if (!spans)
      return false;
    space->spans = spans;
    space->span_capacity = capacity;
  }
  ugc_nm_span *span = calloc(1, sizeof *span);
  if (!span)
    return false;
  span->start = space->top;
  span->bytes = bytes;
  span->cell_bytes = (uint32_t)cell;
  span->cell_count = (uint32_t)(bytes / cell);
  span->class_index = (uint32_t)cls;
  size_t bit_words = (span->cell_count + 63) / 64;
  span->alloc_bits = calloc(bit_words, sizeof(uint64_t));
  span->mark_bits = calloc(bit_words, sizeof(uint64_t));
  if (!span->alloc_bits || !span->mark_bits) {
    free(span->alloc_bits);
    free((void *)span->mark_bits);
    free(span);
    return false;
  }
  space->spans[space->span_count++] = span;
  for (size_t unit = 0; unit < bytes / UGC_NM_UNIT; unit++)
    space->unit_spans[((span->start - space->base) >> UGC_NM_UNIT_SHIFT) + unit] = span;
  space->top += bytes;
  uintptr_t head = space->free_lists[cls];
  for (size_t i = span->cell_count; i-- > 0;) {
    uintptr_t c = span->start + i * cell;
    *(uintptr_t *)c = head;
    head = c;
  }
  space->free_lists[cls] = head;
  return true;
}

uintptr_t ugc_nonmoving_alloc(ugc_nonmoving_space *space, size_t total) {
  size_t cls = class_of(space, total);
  if (cls >= space->class_count)
    return 0;
  if (!space->free_lists[cls] && !add_span(space, cls))
    return 0;
  uintptr_t cell = space->free_lists[cls];
  space->free_lists[cls] = *(uintptr_t *)cell;
  ugc_nm_span *span = ugc_nonmoving_span_of(space, cell);
  size_t index = (cell - span->start) / span->cell_bytes;
  span->alloc_bits[index >> 6] |= UINT64_C(1) << (index & 63);
  /* Free cells hold a link and old contents: objects must start zeroed. */
  memset((void *)cell, 0, span->cell_bytes);
  space->used_bytes += span->cell_bytes;
  return cell;
}

size_t ugc_nonmoving_sweep(ugc_nonmoving_space *space) {
  size_t freed = 0;
  for (size_t s = 0; s < space->span_count; s++) {
    ugc_nm_span *span = space->spans[s];
    size_t bit_words = (span->cell_count + 63) / 64;
    for (size_t w = 0; w < bit_words; w++) {
      uint64_t marks = atomic_load_explicit(&span->mark_bits[w], memory_order_relaxed);
      uint64_t dead = span->alloc_bits[w] & ~marks;
      span->alloc_bits[w] &= marks;
      atomic_store_explicit(&span->mark_bits[w], 0, memory_order_relaxed);
      while (dead) {
        size_t index = w * 64 + (size_t)__builtin_ctzll(dead);
        dead &= dead - 1;
        uintptr_t cell = span->start + index * span->cell_bytes;
        *(uintptr_t *)cell = space->free_lists[span->class_index];
        space->free_lists[span->class_index] = cell;
        freed += span->cell_bytes;
      }
    }
  }
  space->used_bytes -= freed;
  return freed;
}

void ugc_nonmoving_for_each(const ugc_nonmoving_space *space, ugc_cell_fn fn, void *data) {
  for (size_t s = 0; s < space->span_count; s++) {
    const ugc_nm_span *span = space->spans[s];
    for (size_t index = 0; index < span->cell_count; index++)
      if ((span->alloc_bits[index >> 6] >> (index & 63)) & 1u)
        if (!fn(span->start + index * span->cell_bytes, data))
          return;
  }
}
