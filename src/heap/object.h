/* Object model shared by every layer: header decoding, the type table, reference visiting.
 *
 *     | header | payload ...................... |
 *     ^ hdr     ^ payload = hdr + 8 (the reference the embedder holds)
 *
 * The header is one word (see include/uffdgc/inline.h): payload bytes (32 bits), type id
 * (24 bits), flags (8 bits). Type 0 is the filler: a dead gap of header + payload bytes, so a
 * heap region can always be walked object by object from its start.
 *
 * Visiting: every layer that needs an object's references (marking, page building, the
 * verifier, the digest) goes through ugc_object_visit with its own tracer. The tracer gets
 * the address where the slot can be read (which may be a copy of the object, e.g. in
 * from-space) and decides itself what to do with it. */
#ifndef UGC_HEAP_OBJECT_H
#define UGC_HEAP_OBJECT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "uffdgc.h"

#define UGC_FILLER_TYPE 0u
/* Capacity of the type table: ids are dense from 1. Reserved lazily (virtual memory). */
#define UGC_TYPE_TABLE_CAPACITY 65536u

/* The visitor interface behind ugc_trace_slot / ugc_trace_tagged / ugc_trace_value.
 * Concrete tracers embed it as their first member. `slot` is where the value can be read
 * (and written, if the tracer updates); `rule` tells whether the value read is a reference
 * and how to decode and re-encode it (ugc_tag_reference, ugc_tag_rewrite). A tracer reads
 * the slot once and decides on that value: a concurrent mutator may be switching it between
 * a reference and an immediate. `rule` is valid only during the call. */
struct ugc_tracer {
  void (*visit)(ugc_tracer *tracer, void *slot, const ugc_tag_rule *rule);
};

/* Untagged slots: every value may be a reference, nothing stripped. */
extern const ugc_tag_rule ugc_untagged_rule;

/* Decoding and encoding a slot value: ugc_tag_reference and ugc_tag_rewrite
 * (include/uffdgc/inline.h). */

/* The tag rule a type description asks for. */
static inline ugc_tag_rule ugc_tag_rule_of(const ugc_type_desc *desc) {
  return (ugc_tag_rule){desc->tag_mask, desc->pointer_tag_mask, desc->pointer_tag,
                        desc->reference_offset};
}

typedef struct ugc_type_info {
  char name[48];
  ugc_layout layout;
  /* ref_offsets[0, strong_count) are marked through; [strong_count, ref_count) are the weak
   * slots (and an ephemeron's key and value): every other layer treats all alike. */
  uint32_t ref_count;
  uint32_t strong_count;
  bool ephemeron;          /* FIXED; ref_offsets = {key, value}, strong_count = 0 */
  uintptr_t cleared_value; /* stored into weak slots (and an ephemeron) whose referent died */
  size_t fixed_size;
  ugc_tag_rule tags; /* of the ref_offsets slots and the REF_ARRAY elements */
  ugc_trace_fn trace;
  uint32_t *ref_offsets; /* owned copy; ref_count entries */
} ugc_type_info;

/* Types are appended under the heap lock and never removed or changed, so readers only need
 * an acquire load of `count`. */
typedef struct ugc_type_table {
  ugc_type_info *entries; /* UGC_TYPE_TABLE_CAPACITY entries; entry 0 is the filler */
  _Atomic uint32_t count;
} ugc_type_table;

static inline uint64_t ugc_header_load(uintptr_t hdr) {
  return *(const uint64_t *)hdr;
}
static inline size_t ugc_header_payload(uint64_t header) {
  return (uint32_t)header;
}
static inline ugc_type_id ugc_header_type(uint64_t header) {
  return (ugc_type_id)((header >> UGC_HEADER_TYPE_SHIFT) & UGC_HEADER_TYPE_MASK);
}
static inline unsigned ugc_header_flags(uint64_t header) {
  return (unsigned)(header >> UGC_HEADER_FLAGS_SHIFT);
}
/* Bytes the object occupies, header included. */
static inline size_t ugc_header_total(uint64_t header) {
  return ugc_alloc_size(ugc_header_payload(header));
}
/* A filler header covering `total_bytes` (>= 8, multiple of 8) of dead space. */
static inline uint64_t ugc_filler_header(size_t total_bytes) {
  return ugc_header_make(UGC_FILLER_TYPE, total_bytes - UGC_HEADER_BYTES);
}

static inline uint32_t ugc_type_count(const ugc_type_table *types) {
  return atomic_load_explicit(&types->count, memory_order_acquire);
}

static inline const ugc_type_info *ugc_type_get(const ugc_type_table *types, ugc_type_id id) {
  return &types->entries[id];
}

/* Visits every reference slot of an object whose payload can be read at `payload`
 * (its real address, or a copy of it). Fillers and leaves have none. */
static inline void ugc_object_visit(const ugc_type_table *types, uint64_t header, void *payload,
                                    ugc_tracer *tracer) {
  const ugc_type_info *type = ugc_type_get(types, ugc_header_type(header));
  char *base = (char *)payload;
  switch (type->layout) {
  case UGC_LAYOUT_LEAF:
    return;
  case UGC_LAYOUT_FIXED:
    for (uint32_t i = 0; i < type->ref_count; i++)
      tracer->visit(tracer, base + type->ref_offsets[i], &type->tags);
    return;
  case UGC_LAYOUT_REF_ARRAY: {
    for (uint32_t i = 0; i < type->ref_count; i++)
      tracer->visit(tracer, base + type->ref_offsets[i], &type->tags);
    size_t payload_bytes = ugc_header_payload(header);
    for (size_t offset = type->fixed_size; offset + 8 <= payload_bytes; offset += 8)
      tracer->visit(tracer, base + offset, &type->tags);
    return;
  }
  case UGC_LAYOUT_CUSTOM:
    type->trace(payload, ugc_header_payload(header), tracer);
    return;
  }
}

/* Type table management (src/heap/types.c). */
/* 0, or -errno when the table cannot be mapped. */
int ugc_type_table_init(ugc_type_table *types);
/* Bytes of address space the type table reserves. */
static inline size_t ugc_type_table_bytes(void) {
  return (size_t)UGC_TYPE_TABLE_CAPACITY * sizeof(ugc_type_info);
}
void ugc_type_table_destroy(ugc_type_table *types);
/* Validates and appends; returns the id or 0 with *error filled. Caller holds the heap lock. */
ugc_type_id ugc_type_table_add(ugc_type_table *types, const ugc_type_desc *desc, ugc_error *error);

#endif
