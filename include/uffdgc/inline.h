/* uffdgc inline fast paths: allocation, safepoint poll, write barrier, handle scopes.
 * Included by uffdgc.h; not meant to be included alone.
 *
 * Object layout (addresses grow to the right, every size a multiple of 8 bytes):
 *
 *     | header (8 bytes) | payload (round_up(bytes, 8)) |
 *                        ^ the reference the embedder holds (the payload address: what every
 *                          call taking `obj` wants, whatever the tag rule encodes in slots)
 *
 * Header word: bits 0..31 payload bytes as requested, bits 32..55 type id, 56..63 flags.
 * Type id 0 is the filler (a dead gap): a zero word is an 8-byte filler.
 *
 * Define UGC_DEBUG before including uffdgc.h to add misuse checks to the inline paths.
 */
#ifndef UFFDGC_INLINE_H
#define UFFDGC_INLINE_H

#define UGC_HEADER_BYTES 8u
#define UGC_HEADER_SIZE_BITS 32u
#define UGC_HEADER_TYPE_SHIFT 32u
#define UGC_HEADER_TYPE_MASK 0xFFFFFFu
#define UGC_HEADER_FLAGS_SHIFT 56u
#define UGC_MAX_TYPES (1u << 24)
#define UGC_CARD_SHIFT 9u /* one card byte per 512 bytes */

#define UGC_LIKELY(x) __builtin_expect(!!(x), 1)
#define UGC_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* The intentional races of the fast paths: the safepoint poll reads the flag the collector
 * sets without taking its lock; the write barrier stores 1 into a card byte that other
 * mutators may be storing 1 into too; and a reference store races with the concurrent
 * marker reading that slot (the snapshot barrier recorded the value it overwrites). All are
 * relaxed atomic accesses: the same plain loads and stores on every target, and
 * ThreadSanitizer knows them for what they are. Ordering comes from the stop-the-world
 * handshake (a mutex), not from these. */
#define UGC_RACY_LOAD(pointer) __atomic_load_n((pointer), __ATOMIC_RELAXED)
#define UGC_RACY_STORE(pointer, value) __atomic_store_n((pointer), (value), __ATOMIC_RELAXED)

/* The part of a mutator the inline paths touch. It is the first member of the mutator, so a
 * ugc_mutator pointer can be read as a ugc_mutator_fast pointer. */
typedef struct ugc_mutator_fast {
  uintptr_t tlab_cursor; /* next free byte of this thread's allocation buffer */
  uintptr_t tlab_limit;  /* end of the buffer */
  size_t small_limit;    /* payload bytes at or above this take the slow path */
  const volatile uint32_t *safepoint_requested; /* the heap's flag: non-zero = park */
  uint8_t *cards; /* card table of [covered_low, covered_low + covered_bytes) */
  uintptr_t covered_low;
  uintptr_t covered_bytes;
  void ***root_slots; /* handle-scope stack of slot addresses */
  uint32_t root_count;
  uint32_t root_capacity;
  uint32_t type_count; /* for UGC_DEBUG checks */
  uint32_t attached;   /* 1 while attached; for UGC_DEBUG checks */
  uint32_t marking;    /* 1 while concurrent marking runs: stores record the old value */
} ugc_mutator_fast;

UGC_API void ugc_root_stack_grow(ugc_mutator *mutator);
/* Slow paths of ugc_write / ugc_write_tagged while concurrent marking runs: record the
 * slot's current value and the new one for the marker (snapshot-at-the-beginning). */
UGC_API void ugc_write_marking(ugc_mutator *mutator, void **slot, void *value);
UGC_API void ugc_write_tagged_marking(ugc_mutator *mutator, const void *obj, uintptr_t *slot,
                                      uintptr_t value);

static inline ugc_mutator_fast *ugc_fast(ugc_mutator *mutator) {
  return (ugc_mutator_fast *)(void *)mutator;
}

/* Bytes an object of `bytes` payload takes in the heap, header included. */
static inline size_t ugc_alloc_size(size_t bytes) {
  return UGC_HEADER_BYTES + ((bytes + 7u) & ~(size_t)7u);
}

static inline uint64_t ugc_header_make(ugc_type_id type, size_t bytes) {
  return (uint64_t)bytes | ((uint64_t)type << UGC_HEADER_TYPE_SHIFT);
}

/* The payload address a slot value refers to under `rule` (see ugc_tag_rule), or 0 when the
 * value is an immediate (or a tagged NULL). The one place every layer decodes a slot value:
 * marking, reference updating, weak slots, ephemerons, finalization, the verifier, the
 * digest. Embedders use it to turn a slot value into the `obj` other calls take. */
static inline uintptr_t ugc_tag_reference(uintptr_t value, const ugc_tag_rule *rule) {
  uintptr_t untagged = value & ~rule->tag_mask;
  if ((value & rule->pointer_tag_mask) != rule->pointer_tag || !untagged)
    return 0;
  return untagged - rule->reference_offset;
}

/* The slot value that refers to the object at payload address `payload` with the tag bits
 * of `value` (a reference under `rule`): what the collector writes when the object moves,
 * and how an embedder makes a reference to a new object. The one place every layer encodes. */
static inline uintptr_t ugc_tag_rewrite(uintptr_t value, uintptr_t payload,
                                        const ugc_tag_rule *rule) {
  return (payload + rule->reference_offset) | (value & rule->tag_mask);
}

/* Polls for a pending pause; call it regularly (loop back-edges, function entries). */
static inline void ugc_safepoint(ugc_mutator *mutator) {
  if (UGC_UNLIKELY(UGC_RACY_LOAD(ugc_fast(mutator)->safepoint_requested)))
    ugc_safepoint_slow(mutator);
}

/* Allocates a zeroed object of `bytes` payload bytes of type `type`; NULL when the heap is
 * exhausted even after a full collection. May reach a safepoint (objects may move). */
static inline void *ugc_alloc(ugc_mutator *mutator, ugc_type_id type, size_t bytes) {
  ugc_mutator_fast *fast = ugc_fast(mutator);
#ifdef UGC_DEBUG
  if (!fast->attached)
    ugc_misuse("ugc_alloc", "the mutator is detached");
  if (type == 0 || type >= fast->type_count)
    ugc_misuse("ugc_alloc", "unregistered type id");
#endif
  if (UGC_LIKELY(bytes < fast->small_limit)) {
    size_t total = ugc_alloc_size(bytes);
    uintptr_t start = fast->tlab_cursor;
    if (UGC_LIKELY(total <= fast->tlab_limit - start)) {
      fast->tlab_cursor = start + total;
      *(uint64_t *)start = ugc_header_make(type, bytes);
      return (void *)(start + UGC_HEADER_BYTES);
    }
  }
  return ugc_alloc_slow(mutator, type, bytes);
}

/* Records that `obj` was written to (card marking). Cheap; safe for any obj. */
static inline void ugc_write_barrier(ugc_mutator *mutator, const void *obj) {
  ugc_mutator_fast *fast = ugc_fast(mutator);
  uintptr_t offset = (uintptr_t)obj - fast->covered_low;
  if (UGC_LIKELY(offset < fast->covered_bytes))
    UGC_RACY_STORE(&fast->cards[offset >> UGC_CARD_SHIFT], (uint8_t)1);
}

/* Stores reference `value` into `*slot`, a reference slot of heap object `obj`. While
 * concurrent marking runs (one predicted-not-taken test otherwise) the value being
 * overwritten is recorded first: the marker must still see every object that was
 * reachable when marking began. */
static inline void ugc_write(ugc_mutator *mutator, void *obj, void **slot, void *value) {
  if (UGC_UNLIKELY(ugc_fast(mutator)->marking))
    ugc_write_marking(mutator, slot, value);
  UGC_RACY_STORE(slot, value); /* the concurrent marker may be reading it: intended */
  ugc_write_barrier(mutator, obj);
}

/* Stores a tagged reference (or an immediate) into a slot of heap object `obj`. */
static inline void ugc_write_tagged(ugc_mutator *mutator, void *obj, uintptr_t *slot,
                                    uintptr_t value) {
  if (UGC_UNLIKELY(ugc_fast(mutator)->marking))
    ugc_write_tagged_marking(mutator, obj, slot, value);
  UGC_RACY_STORE(slot, value);
  ugc_write_barrier(mutator, obj);
}

/* Handle scopes: a per-thread stack of addresses of variables that hold references.
 *
 *   ugc_scope scope = ugc_scope_open(m);
 *   void *list = NULL;
 *   ugc_root(m, &list);              // list is now a root, updated when objects move
 *   ...
 *   ugc_scope_close(m, scope);       // pops every root pushed since open
 */
typedef struct ugc_scope {
  uint32_t depth;
} ugc_scope;

static inline ugc_scope ugc_scope_open(ugc_mutator *mutator) {
  ugc_scope scope = {ugc_fast(mutator)->root_count};
  return scope;
}

/* Registers the variable at `slot_address` (a void ** in disguise) as a root. */
static inline void ugc_root(ugc_mutator *mutator, void *slot_address) {
  ugc_mutator_fast *fast = ugc_fast(mutator);
  if (UGC_UNLIKELY(fast->root_count == fast->root_capacity))
    ugc_root_stack_grow(mutator);
  fast->root_slots[fast->root_count++] = (void **)slot_address;
}

static inline void ugc_scope_close(ugc_mutator *mutator, ugc_scope scope) {
  ugc_mutator_fast *fast = ugc_fast(mutator);
#ifdef UGC_DEBUG
  if (scope.depth > fast->root_count)
    ugc_misuse("ugc_scope_close", "unbalanced handle scope (closed twice or out of order)");
#endif
  fast->root_count = scope.depth;
}

/* Declares `type name = init` and roots it in the current scope. */
#define UGC_LOCAL(mutator, type, name, init)                                                       \
  type name = (init);                                                                              \
  ugc_root((mutator), &(name))

#endif
