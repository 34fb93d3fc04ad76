/* Pinned objects (runtime/pins.c): the collector's side of ugc_pin and ugc_unpin. */
#ifndef UGC_RUNTIME_PINS_H
#define UGC_RUNTIME_PINS_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/addrmap.h"

typedef struct ugc_pin_table {
  ugc_addrmap counts;  /* payload address -> pin count (>= 1) */
  uint64_t generation; /* bumped when an object becomes pinned */
  uintptr_t *headers;  /* snapshot for the plan: moving-space headers, ascending */
  size_t header_count, header_capacity;
  uint64_t snapshot_generation; /* generation the snapshot was taken at */
} ugc_pin_table;

struct ugc_heap;
/* Takes the snapshot the next plan uses (plan.pinned). Entries of moving-space objects
 * below final_below whose start bit is clear (dead: pinning does not keep an object alive)
 * are dropped. Heap lock held. */
void ugc_pins_snapshot(struct ugc_heap *heap, uintptr_t final_below);
/* Whether an object became pinned since the snapshot (the plan would move it). Heap lock
 * held. */
int ugc_pins_changed(const struct ugc_heap *heap);

/* Whether the snapshot holds a pinned object at or above `top`: a plan computed up to `top`
 * cannot be extended over it (the extension slides everything it covers). */
int ugc_pins_at_or_above(const struct ugc_heap *heap, uintptr_t top);
void ugc_pins_free(ugc_pin_table *pins);

#endif
