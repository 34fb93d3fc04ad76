#include "heap/vm.h"

#include <errno.h>
#include <sys/mman.h>

#define VM_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)

void *ugc_vm_reserve_aligned(size_t size, size_t align) {
  /* Over-map by `align`, then trim the unaligned head and the tail. */
  size_t over = size + align;
  if (over < size) {
    errno = ENOMEM;
    return NULL;
  }
  char *raw = mmap(NULL, over, PROT_NONE, VM_FLAGS, -1, 0);
  if (raw == MAP_FAILED)
    return NULL;
  char *aligned = (char *)ugc_round_up((uintptr_t)raw, align);
  size_t head = (size_t)(aligned - raw);
  if (head)
    munmap(raw, head);
  if (over - head - size)
    munmap(aligned + size, over - head - size);
  return aligned;
}

int ugc_vm_map_fixed(void *addr, size_t len, bool rw) {
  void *p = mmap(addr, len, rw ? PROT_READ | PROT_WRITE : PROT_NONE, VM_FLAGS | MAP_FIXED, -1, 0);
  return p == MAP_FAILED ? -errno : 0;
}

void ugc_vm_unmap(void *addr, size_t len) {
  if (addr && len)
    munmap(addr, len);
}
