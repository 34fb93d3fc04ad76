/* Over-map PROT_NONE by `align` extra bytes, then unmap the unaligned head and the tail. */
#include "os/reserve.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RESERVE_FLAGS (MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)

size_t ugc_page_size(void) {
  static size_t cached;
  size_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (!v) {
    long p = sysconf(_SC_PAGESIZE);
    v = p > 0 ? (size_t)p : 4096;
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
  }
  return v;
}

size_t ugc_alignment_of(const void *addr) {
  uintptr_t a = (uintptr_t)addr;
  if (a == 0)
    return UGC_GiB;
  size_t low = (size_t)(a & -a);
  return low > UGC_GiB ? UGC_GiB : low;
}

static size_t round_up(size_t v, size_t to) {
  return (v + to - 1) & ~(to - 1);
}

int ugc_os_reserve(ugc_reservation *r, size_t size, size_t align) {
  memset(r, 0, sizeof *r);
  size_t page = ugc_page_size();
  if (size == 0 || align == 0 || (align & (align - 1)))
    return -EINVAL;
  if (align < page)
    align = page;
  size = round_up(size, page);
  if (size + align < size)
    return -ENOMEM;

  void *base = MAP_FAILED;
  size_t over = size + align - page;
  char *raw = mmap(NULL, over, PROT_NONE, RESERVE_FLAGS, -1, 0);
  if (raw != MAP_FAILED) {
    char *aligned = (char *)round_up((uintptr_t)raw, align);
    size_t head = (size_t)(aligned - raw);
    size_t tail = over - head - size;
    if (head)
      munmap(raw, head);
    if (tail)
      munmap(aligned + size, tail);
    base = aligned;
  } else {
    /* Not enough address space for the slack: take what an exact mapping gives. */
    base = mmap(NULL, size, PROT_NONE, RESERVE_FLAGS, -1, 0);
    if (base == MAP_FAILED)
      return -errno;
  }
  r->base = base;
  r->size = size;
  r->align_requested = align;
  r->align_obtained = ugc_alignment_of(base);
  return 0;
}

int ugc_os_release(ugc_reservation *r) {
  int rc = 0;
  if (r->base && munmap(r->base, r->size) != 0)
    rc = -errno;
  memset(r, 0, sizeof *r);
  return rc;
}

int ugc_commit(void *addr, size_t len) {
  return mprotect(addr, len, PROT_READ | PROT_WRITE) == 0 ? 0 : -errno;
}

int ugc_commit_fresh(void *addr, size_t len) {
  void *p = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  return p == MAP_FAILED ? -errno : 0;
}

int ugc_uncommit(void *addr, size_t len) {
  void *p = mmap(addr, len, PROT_NONE, RESERVE_FLAGS | MAP_FIXED, -1, 0);
  return p == MAP_FAILED ? -errno : 0;
}
