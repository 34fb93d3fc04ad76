#include "os/remap.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "os/disable.h"
#include "os/memfd.h"
#include "os/reserve.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

ugc_remap_class ugc_remap_class_of(const void *src, const void *dst, size_t len) {
  size_t a = ugc_alignment_of(src), b = ugc_alignment_of(dst);
  size_t common = a < b ? a : b;
  if (common >= UGC_GiB && len >= UGC_GiB)
    return UGC_REMAP_PUD;
  if (common >= 2 * UGC_MiB && len >= 2 * UGC_MiB)
    return UGC_REMAP_PMD;
  return UGC_REMAP_PTE;
}

const char *ugc_remap_class_name(ugc_remap_class c) {
  switch (c) {
  case UGC_REMAP_PUD:
    return "1GiB";
  case UGC_REMAP_PMD:
    return "2MiB";
  default:
    return "4KiB";
  }
}

static int do_remap(void *src, void *dst, size_t len, int flags, ugc_remap_class *cls) {
  if (cls)
    *cls = ugc_remap_class_of(src, dst, len);
  void *p = mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | flags, dst);
  if (p == MAP_FAILED)
    return -errno;
  return p == dst ? 0 : -EFAULT; /* MREMAP_FIXED never places it elsewhere */
}

int ugc_remap_dontunmap(void *src, void *dst, size_t len, ugc_remap_class *cls) {
  if (ugc_feature_disabled("dontunmap"))
    return -EOPNOTSUPP;
  return do_remap(src, dst, len, MREMAP_DONTUNMAP, cls);
}

int ugc_remap_move(void *src, void *dst, size_t len, ugc_remap_class *cls) {
  return do_remap(src, dst, len, 0, cls);
}

const char *ugc_remap_explain(int neg_errno) {
  switch (-neg_errno) {
  case 0:
    return "success";
  case EOPNOTSUPP:
    return "MREMAP_DONTUNMAP disabled by UFFDGC_DISABLE";
  case EINVAL:
    return "EINVAL: MREMAP_DONTUNMAP unsupported (kernel < 5.7, or < 5.13 for non-anonymous "
           "memory), unaligned address, or overlapping ranges";
  case EFAULT:
    return "EFAULT: the source range is not one mapping (partly unmapped or split into "
           "several VMAs)";
  case ENOMEM:
    return "ENOMEM: out of memory or too many mappings (vm.max_map_count)";
  case EAGAIN:
    return "EAGAIN: the source range is mlocked and could not be moved";
  default:
    return strerror(-neg_errno);
  }
}

/* Moves one written page with DONTUNMAP and checks the source now reads zero (anon) or the
 * same data (shmem page cache). */
static bool try_dontunmap(bool shmem) {
  size_t page = ugc_page_size();
  ugc_memfd m = {.fd = -1};
  char *src = MAP_FAILED;
  bool ok = false;
  char *dst = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (dst == MAP_FAILED)
    return false;
  if (shmem) {
    void *v;
    if (ugc_memfd_create(&m, "uffdgc-probe", page) == 0 &&
        ugc_memfd_map(&m, NULL, 0, page, PROT_READ | PROT_WRITE, &v) == 0)
      src = v;
  } else {
    src = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }
  if (src != MAP_FAILED) {
    src[0] = 42;
    if (do_remap(src, dst, page, MREMAP_DONTUNMAP, NULL) == 0)
      ok = dst[0] == 42 && src[0] == (shmem ? 42 : 0);
    munmap(src, page);
  }
  munmap(dst, page);
  ugc_memfd_close(&m);
  return ok;
}

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool works_anon, works_shmem;

static void probe(void) {
  works_anon = try_dontunmap(false);
  works_shmem = try_dontunmap(true);
}

bool ugc_remap_dontunmap_works(bool shmem) {
  if (ugc_feature_disabled("dontunmap"))
    return false;
  pthread_once(&probe_once, probe);
  return shmem ? works_shmem : works_anon;
}
