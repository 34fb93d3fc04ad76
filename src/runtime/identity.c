/* Identity hashes stable across moves: a side table from an object's current payload
 * address to the hash it was given on first request. Only hashed objects pay (16 bytes of
 * table each, and one re-insertion per collection); the header has no room for a hash.
 * The table lives under the heap lock: mutators take it for a look-up (as allocation does),
 * the collector rebuilds it in the pause, once live objects are known (prune) and once
 * their new addresses are (forward). */
#include "runtime/identity.h"

#include "mark/mark.h"
#include "os/log.h"
#include "runtime/addrmap.h"

/* Hashes are numbers from a per-heap counter, scrambled (splitmix64): never derived from
 * an address, so a moved object or a new object at a dead one's address cannot collide by
 * construction, and never 0. */
static uint64_t next_hash(ugc_heap *heap) {
  for (;;) {
    uint64_t x = (heap->identity_counter += UINT64_C(0x9E3779B97F4A7C15));
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    x ^= x >> 31;
    if (x)
      return x;
  }
}

uint64_t ugc_identity_hash(ugc_mutator *mutator, const void *obj) {
  ugc_check_attached(mutator, "ugc_identity_hash");
  ugc_heap *heap = mutator->heap;
  uintptr_t ref = (uintptr_t)obj;
  pthread_mutex_lock(&heap->lock);
  ugc_ref_kind kind = ugc_heap_lookup(heap, ref);
  if (kind != UGC_REF_MOVING && kind != UGC_REF_NONMOVING && kind != UGC_REF_LARGE) {
    pthread_mutex_unlock(&heap->lock);
    ugc_misuse("ugc_identity_hash", "obj is not an object of this heap");
  }
  bool inserted = false;
  uint64_t *hash = ugc_addrmap_put(&heap->identity, ref, 0, &inserted);
  if (!hash)
    ugc_fatal("ugc_identity_hash: out of memory for the identity table");
  if (inserted)
    *hash = next_hash(heap);
  uint64_t result = *hash;
  pthread_mutex_unlock(&heap->lock);
  return result;
}

/* Rebuilds the table with the entries `keep` accepts, under the address it returns. */
static void rebuild(ugc_heap *heap, uintptr_t (*keep)(ugc_heap *, const void *, uintptr_t),
                    const void *data) {
  ugc_addrmap old = heap->identity, fresh = {0};
  for (size_t i = 0; old.mask && i <= old.mask; i++) {
    if (!old.keys[i])
      continue;
    uintptr_t key = keep(heap, data, old.keys[i]);
    bool inserted;
    if (key && !ugc_addrmap_put(&fresh, key, old.values[i], &inserted))
      ugc_fatal("out of memory rebuilding the identity table");
  }
  ugc_addrmap_free(&old);
  heap->identity = fresh;
}

static uintptr_t keep_live(ugc_heap *heap, const void *data, uintptr_t ref) {
  (void)data;
  return ugc_mark_is_live_or_new(heap, ref) ? ref : 0;
}

static uintptr_t keep_forwarded(ugc_heap *heap, const void *data, uintptr_t ref) {
  (void)heap;
  return ugc_compact_forward_ref(data, ref);
}

void ugc_identity_prune(ugc_heap *heap) {
  if (heap->identity.count)
    rebuild(heap, keep_live, NULL);
}

void ugc_identity_forward(ugc_heap *heap, const ugc_compact_plan *plan) {
  if (heap->identity.count)
    rebuild(heap, keep_forwarded, plan);
}
