#include "os/madvise.h"

#include <errno.h>
#include <sys/mman.h>

#include "os/disable.h"

static ugc_madvise_stats counters; /* updated with relaxed atomics */

static void bump(uint64_t *c, uint64_t by) {
  __atomic_fetch_add(c, by, __ATOMIC_RELAXED);
}

static int advise(void *addr, size_t len, int advice, uint64_t *calls) {
  bump(calls, 1);
  if (madvise(addr, len, advice) == 0)
    return 0;
  int err = errno;
  bump(&counters.failures, 1);
  return -err;
}

int ugc_madv_dontneed(void *addr, size_t len) {
  bump(&counters.dontneed_bytes, len);
  return advise(addr, len, MADV_DONTNEED, &counters.dontneed_calls);
}

int ugc_madv_dontfork(void *addr, size_t len) {
  return advise(addr, len, MADV_DONTFORK, &counters.dontfork_calls);
}

int ugc_madv_hugepage(void *addr, size_t len) {
  if (ugc_feature_disabled("thp"))
    return ugc_madv_nohugepage(addr, len);
  return advise(addr, len, MADV_HUGEPAGE, &counters.hugepage_calls);
}

int ugc_madv_nohugepage(void *addr, size_t len) {
  return advise(addr, len, MADV_NOHUGEPAGE, &counters.nohugepage_calls);
}

void ugc_madvise_get_stats(ugc_madvise_stats *out) {
  out->dontneed_calls = __atomic_load_n(&counters.dontneed_calls, __ATOMIC_RELAXED);
  out->dontneed_bytes = __atomic_load_n(&counters.dontneed_bytes, __ATOMIC_RELAXED);
  out->dontfork_calls = __atomic_load_n(&counters.dontfork_calls, __ATOMIC_RELAXED);
  out->hugepage_calls = __atomic_load_n(&counters.hugepage_calls, __ATOMIC_RELAXED);
  out->nohugepage_calls = __atomic_load_n(&counters.nohugepage_calls, __ATOMIC_RELAXED);
  out->failures = __atomic_load_n(&counters.failures, __ATOMIC_RELAXED);
}
