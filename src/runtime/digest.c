/* ugc_graph_digest: a hash of the graph reachable from the roots that does not depend on
 * addresses. Objects get visit numbers in breadth-first order from the roots (handle
 * stacks in attach order, globals, enumerators); each object contributes its type, size,
 * non-reference payload bytes and, per reference slot in offset order, the visit number of
 * the target and the tag bits. Values that are not heap references are hashed raw. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "os/log.h"
#include "runtime/addrmap.h"
#include "runtime/heap.h"

typedef struct digest_slot {
  uintptr_t offset; /* slot address - payload (CUSTOM tracers might report any order) */
  uintptr_t value;
  ugc_tag_rule rule; /* a copy: the tracer's rule may be gone when the slot is hashed */
} digest_slot;

typedef struct digest {
  ugc_tracer tracer;
  ugc_heap *heap;
  uint64_t hash;
  ugc_addrmap numbers; /* payload address -> visit number */
  uintptr_t *queue;    /* payload addresses by visit number */
  size_t queued, queue_capacity;
  digest_slot *slots; /* the current object's slots */
  size_t slot_count, slot_capacity;
  uintptr_t payload;
} digest;

static void mix(digest *d, uint64_t x) {
  d->hash ^= x;
  d->hash *= UINT64_C(0x100000001b3);
  d->hash ^= d->hash >> 29;
}

static void *grow(void *array, size_t *capacity, size_t item) {
  size_t next = *capacity ? 2 * *capacity : 256;
  void *bigger = realloc(array, next * item);
  if (!bigger)
    ugc_fatal("ugc_graph_digest: out of memory");
  *capacity = next;
  return bigger;
}

/* Hashes one reference-slot value, numbering the object it refers to. */
static void mix_value(digest *d, uintptr_t value, const ugc_tag_rule *rule) {
  uintptr_t ref = ugc_tag_reference(value, rule);
  ugc_ref_kind kind = ref ? ugc_heap_lookup(d->heap, ref) : UGC_REF_NONE;
  if (kind == UGC_REF_NONE || kind == UGC_REF_BAD) {
    mix(d, 2);
    mix(d, value);
    return;
  }
  bool inserted = false;
  uint64_t *number = ugc_addrmap_put(&d->numbers, ref, d->queued, &inserted);
  if (!number)
    ugc_fatal("ugc_graph_digest: out of memory");
  if (inserted) {
    if (d->queued == d->queue_capacity)
      d->queue = grow(d->queue, &d->queue_capacity, sizeof *d->queue);
    d->queue[d->queued++] = ref;
  }
  mix(d, 1);
  mix(d, *number);
  mix(d, value & rule->tag_mask);
}

static void visit_root(ugc_tracer *tracer, void *slot, const ugc_tag_rule *rule) {
  digest *d = (digest *)tracer;
  mix_value(d, *(uintptr_t *)slot, rule);
}

static void collect_slot(ugc_tracer *tracer, void *slot, const ugc_tag_rule *rule) {
  digest *d = (digest *)tracer;
  if (d->slot_count == d->slot_capacity)
    d->slots = grow(d->slots, &d->slot_capacity, sizeof *d->slots);
  d->slots[d->slot_count++] =
      (digest_slot){(uintptr_t)slot - d->payload, *(uintptr_t *)slot, *rule};
}

static int by_offset(const void *a, const void *b) {
  uintptr_t x = ((const digest_slot *)a)->offset, y = ((const digest_slot *)b)->offset;
  return x < y ? -1 : x > y;
}

static bool is_sorted(const digest_slot *slots, size_t count) {
  for (size_t i = 1; i < count; i++)
    if (slots[i - 1].offset > slots[i].offset)
      return false;
  return true;
}

static void mix_object(digest *d, uintptr_t payload) {
  uint64_t header = ugc_header_load(payload - UGC_HEADER_BYTES);
  size_t bytes = ugc_header_payload(header);
  mix(d, ugc_header_type(header));
  mix(d, bytes);
  d->payload = payload;
  d->slot_count = 0;
  d->tracer.visit = collect_slot;
  ugc_object_visit(&d->heap->types, header, (void *)payload, &d->tracer);
  if (!is_sorted(d->slots, d->slot_count))
    qsort(d->slots, d->slot_count, sizeof *d->slots, by_offset);
  /* Payload words that are not slots, the last one masked to the requested size. */
  size_t next_slot = 0;
  for (size_t offset = 0; offset < bytes; offset += 8) {
    while (next_slot < d->slot_count && d->slots[next_slot].offset < offset)
      next_slot++;
    if (next_slot < d->slot_count && d->slots[next_slot].offset == offset)
      continue;
    uint64_t word = *(const uint64_t *)(payload + offset);
    if (bytes - offset < 8)
      word &= (UINT64_C(1) << (8 * (bytes - offset))) - 1;
    mix(d, word);
  }
  for (size_t i = 0; i < d->slot_count; i++)
    mix_value(d, d->slots[i].value, &d->slots[i].rule);
}

uint64_t ugc_graph_digest(ugc_mutator *mutator) {
  ugc_check_attached(mutator, "ugc_graph_digest");
  ugc_heap *heap = mutator->heap;
  ugc_world_stop(heap, mutator, false);
  pthread_mutex_lock(&heap->lock);
  heap->backend->compact_wait(heap);

  digest d;
  memset(&d, 0, sizeof d);
  d.heap = heap;
  d.hash = UINT64_C(0xcbf29ce484222325);
  d.tracer.visit = visit_root;
  ugc_roots_visit(heap, &d.tracer);
  mix(&d, 0x5eed);
  for (size_t i = 0; i < d.queued; i++)
    mix_object(&d, d.queue[i]);
  mix(&d, d.queued);

  pthread_mutex_unlock(&heap->lock);
  ugc_world_resume(heap, mutator, false);
  ugc_addrmap_free(&d.numbers);
  free(d.queue);
  free(d.slots);
  return d.hash;
}
