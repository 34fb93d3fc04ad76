/* Helpers shared by the files of src/uffd only. */
#ifndef UGC_UFFD_INTERNAL_H
#define UGC_UFFD_INTERNAL_H

#include <stdint.h>

#include "uffd/resolve.h"
#include "uffd/uffd.h"

/* UFFDIO_API on a fresh fd asking for `features`; stores the kernel's feature and ioctl
 * masks (either pointer may be NULL). 0 or -errno. */
int ugc_uffd_api(int fd, uint64_t features, uint64_t *kernel_features, uint64_t *ioctls);

/* Adds to a counter of u with a relaxed atomic (async-signal-safe). */
static inline void ugc_uffd_count(uint64_t *counter, uint64_t by) {
  __atomic_fetch_add(counter, by, __ATOMIC_RELAXED);
}

/* One resolving ioctl on [dst, dst+len) (src only for COPY/MOVE): fills its struct, zeroes
 * the progress field, calls it. Returns the progress field (bytes > 0, or -errno the kernel
 * wrote) and stores the ioctl's errno in *err (0 when it returned 0). */
typedef int64_t (*ugc_uffd_step_fn)(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
                                    int *err);

/* The partial-progress loop shared by COPY, ZEROPAGE, CONTINUE, MOVE and POISON: retries
 * from dst+done (src+done) after -1/EAGAIN with progress, handles EEXIST (wake unless
 * DONTWAKE, skip a page with SKIP_EXISTING) and classifies errors. */
ugc_uffd_result ugc_uffd_run(ugc_uffd *u, ugc_uffd_op op, ugc_uffd_step_fn step, uint64_t dst,
                             uint64_t src, uint64_t len, uint64_t mode, unsigned flags);

#endif
