/* A small open-addressing hash map from addresses (non-zero) to 64-bit values, malloc'd.
 * Used where the collector must remember addresses it has seen: root slots already updated
 * (a slot registered twice must be forwarded once), the digest's visit numbers, where each
 * global root and weak slot is registered, and identity hashes. */
#ifndef UGC_RUNTIME_ADDRMAP_H
#define UGC_RUNTIME_ADDRMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct ugc_addrmap {
  uintptr_t *keys; /* 0 = empty */
  uint64_t *values;
  size_t count, mask;
} ugc_addrmap;

static inline size_t ugc_addrmap_hash(uintptr_t key) {
  uint64_t x = (uint64_t)key;
  x ^= x >> 33;
  x *= UINT64_C(0xff51afd7ed558ccd);
  x ^= x >> 33;
  return (size_t)x;
}

static inline void ugc_addrmap_free(ugc_addrmap *map) {
  free(map->keys);
  free(map->values);
  map->keys = NULL;
  map->values = NULL;
  map->count = map->mask = 0;
}

static inline bool ugc_addrmap_grow(ugc_addrmap *map) {
  size_t capacity = map->mask ? 2 * (map->mask + 1) : 256;
  uintptr_t *keys = calloc(capacity, sizeof *keys);
  uint64_t *values = malloc(capacity * sizeof *values);
  if (!keys || !values) {
    free(keys);
    free(values);
    return false;
  }
  for (size_t i = 0; map->mask && i <= map->mask; i++)
    if (map->keys[i]) {
      size_t at = ugc_addrmap_hash(map->keys[i]) & (capacity - 1);
      while (keys[at])
        at = (at + 1) & (capacity - 1);
      keys[at] = map->keys[i];
      values[at] = map->values[i];
    }
  free(map->keys);
  free(map->values);
  map->keys = keys;
  map->values = values;
  map->mask = capacity - 1;
  return true;
}

/* Finds `key`; if absent inserts it with `value`. Returns a pointer to its value and sets
 * *inserted; NULL only when memory ran out. */
static inline uint64_t *ugc_addrmap_put(ugc_addrmap *map, uintptr_t key, uint64_t value,
                                        bool *inserted) {
  if ((map->count + 1) * 2 > map->mask + 1 && !ugc_addrmap_grow(map))
    return NULL;
  size_t at = ugc_addrmap_hash(key) & map->mask;
  while (map->keys[at]) {
    if (map->keys[at] == key) {
      *inserted = false;
      return &map->values[at];
    }
    at = (at + 1) & map->mask;
  }
  map->keys[at] = key;
  map->values[at] = value;
  map->count++;
  *inserted = true;
  return &map->values[at];
}

/* The value of `key`, or NULL when absent. */
static inline uint64_t *ugc_addrmap_get(const ugc_addrmap *map, uintptr_t key) {
  if (!map->mask)
    return NULL;
  for (size_t at = ugc_addrmap_hash(key) & map->mask; map->keys[at]; at = (at + 1) & map->mask)
    if (map->keys[at] == key)
      return &map->values[at];
  return NULL;
}

/* Removes `key` if present (backward-shift deletion: no tombstones, probes stay short). */
static inline bool ugc_addrmap_remove(ugc_addrmap *map, uintptr_t key) {
  if (!map->mask)
    return false;
  size_t hole = ugc_addrmap_hash(key) & map->mask;
  while (map->keys[hole] != key) {
    if (!map->keys[hole])
      return false;
    hole = (hole + 1) & map->mask;
  }
  for (size_t next = (hole + 1) & map->mask; map->keys[next]; next = (next + 1) & map->mask) {
    size_t home = ugc_addrmap_hash(map->keys[next]) & map->mask;
    /* An entry may fill the hole unless its home lies after the hole (up to `next`). */
    if (((next - home) & map->mask) >= ((next - hole) & map->mask)) {
      map->keys[hole] = map->keys[next];
      map->values[hole] = map->values[next];
      hole = next;
    }
  }
  map->keys[hole] = 0;
  map->count--;
  return true;
}

#endif
