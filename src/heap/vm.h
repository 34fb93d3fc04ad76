/* Small virtual-memory helpers for the heap's reservations.
 * (src/os/reserve.h has the same functions, but its `ugc_reserve` collides with the public
 * ugc_reserve of uffdgc.h, so the heap cannot include it; fold these in once renamed.) */
#ifndef UGC_HEAP_VM_H
#define UGC_HEAP_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UGC_VM_KiB ((size_t)1 << 10)
#define UGC_VM_MiB ((size_t)1 << 20)
#define UGC_VM_GiB ((size_t)1 << 30)

static inline size_t ugc_round_up(size_t value, size_t to) {
  return (value + to - 1) & ~(to - 1);
}

/* Reserves `size` bytes aligned to `align` (power of two), PROT_NONE, MAP_NORESERVE.
 * Returns the base or NULL (errno set). */
void *ugc_vm_reserve_aligned(size_t size, size_t align);

/* Maps fresh zeroed private anonymous memory over [addr, addr+len) with MAP_FIXED and
 * MAP_NORESERVE, readable and writable (rw) or PROT_NONE. 0 or -errno. */
int ugc_vm_map_fixed(void *addr, size_t len, bool rw);

/* Unmaps [addr, addr+len) (ignores NULL). */
void ugc_vm_unmap(void *addr, size_t len);

#endif
