/* Kernel requirements per backend (architecture.md): copy and move need private anonymous
 * memory with userfaultfd MISSING and MREMAP_DONTUNMAP, minor needs the same on shmem plus
 * minor faults, sigsegv needs memfd views and mprotect, stw needs nothing. */
#include "backend/availability.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "os/disable.h"
#include "os/memfd.h"
#include "os/remap.h"
#include "os/reserve.h"
#include "uffd/uffd.h"

const char *const ugc_backend_names[] = {"stw", "sigsegv", "copy", "minor", "move", NULL};
/* minor is never picked by auto (shmem is accounted as shared memory and every page
 * written after its compaction is copied out of the file): it is chosen by name. */
const char *const ugc_backend_preference[] = {"move", "copy", "sigsegv", "stw", NULL};

static int no(char *reason, size_t len, const char *fmt, ...) {
  if (reason && len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, len, fmt, ap);
    va_end(ap);
  }
  return 0;
}

static bool has(uint64_t mask, int nr) {
  return mask & UGC_UFFD_IOCTL_BIT(nr);
}

/* memfd + two shared views + mprotect, as the sigsegv backend uses them. */
static bool memfd_views_work(void) {
  size_t page = ugc_page_size();
  ugc_memfd m;
  void *a = NULL, *b = NULL;
  bool ok = false;
  if (ugc_memfd_create(&m, "uffdgc-avail", page) != 0)
    return false;
  if (ugc_memfd_map(&m, NULL, 0, page, PROT_READ | PROT_WRITE, &a) == 0 &&
      ugc_memfd_map(&m, NULL, 0, page, PROT_READ | PROT_WRITE, &b) == 0) {
    ((volatile char *)b)[0] = 7;
    ok = ((volatile char *)a)[0] == 7 && mprotect(a, page, PROT_NONE) == 0 &&
         mprotect(a, page, PROT_READ | PROT_WRITE) == 0;
  }
  if (a)
    munmap(a, page);
  if (b)
    munmap(b, page);
  ugc_memfd_close(&m);
  return ok;
}

/* Requirements shared by the userfaultfd backends. */
static int uffd_common(const ugc_uffd_caps *c, char *reason, size_t len) {
  if (!c->available)
    return no(reason, len, "userfaultfd unavailable: %s", c->reason);
  bool sigbus = (c->features & UFFD_FEATURE_SIGBUS) && !ugc_feature_disabled("sigbus");
  if (!sigbus && ugc_feature_disabled("thread"))
    return no(reason, len, "no fault delivery: SIGBUS mode and handler thread both unavailable");
  return 1;
}

int ugc_backend_availability(const char *name, char *reason, size_t len) {
  if (reason && len)
    reason[0] = 0;
  bool known = false;
  for (int i = 0; ugc_backend_names[i]; i++)
    known |= strcmp(name, ugc_backend_names[i]) == 0;
  if (!known)
    return -1;
  if (strcmp(name, "stw") == 0)
    return 1;
  if (strcmp(name, "minor") == 0 && ugc_feature_disabled("minor"))
    return no(reason, len, "UFFD_FEATURE_MINOR_SHMEM masked by UFFDGC_DISABLE=minor");
  if (ugc_feature_disabled(name))
    return no(reason, len, "disabled by UFFDGC_DISABLE=%s", name);

  if (strcmp(name, "sigsegv") == 0) {
    if (!memfd_views_work())
      return no(reason, len, "memfd with shared views not usable");
    return 1;
  }
  const ugc_uffd_caps *c = ugc_uffd_caps_get();
  if (!uffd_common(c, reason, len))
    return 0;

  if (strcmp(name, "copy") == 0 || strcmp(name, "move") == 0) {
    if (!has(c->anon_missing_ioctls, _UFFDIO_COPY))
      return no(reason, len, "registering anonymous memory for MISSING faults failed");
    if (strcmp(name, "move") == 0) {
      if (!(c->features & UFFD_FEATURE_MOVE))
        return no(reason, len,
                  (c->masked_features & UFFD_FEATURE_MOVE)
                      ? "UFFD_FEATURE_MOVE masked by UFFDGC_DISABLE"
                      : "kernel lacks UFFD_FEATURE_MOVE (needs Linux 6.8)");
      if (!has(c->anon_missing_ioctls, _UFFDIO_MOVE))
        return no(reason, len, "UFFDIO_MOVE not in the register ioctl mask");
    }
    if (!ugc_remap_dontunmap_works(false))
      return no(reason, len, "mremap(MREMAP_DONTUNMAP) on anonymous memory %s",
                ugc_feature_disabled("dontunmap") ? "masked by UFFDGC_DISABLE"
                                                  : "unsupported (needs Linux 5.7)");
    return 1;
  }
  /* minor */
  if (!(c->features & UFFD_FEATURE_MISSING_SHMEM) || !(c->features & UFFD_FEATURE_MINOR_SHMEM))
    return no(reason, len, "%s",
              (c->masked_features & (UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_MISSING_SHMEM))
                  ? "MINOR_SHMEM/MISSING_SHMEM masked by UFFDGC_DISABLE"
                  : "kernel lacks UFFD_FEATURE_MINOR_SHMEM or MISSING_SHMEM (needs Linux 5.14)");
  if (!has(c->shmem_minor_ioctls, _UFFDIO_CONTINUE))
    return no(reason, len, "registering shmem for MINOR faults gives no UFFDIO_CONTINUE");
  if (!has(c->shmem_missing_ioctls, _UFFDIO_COPY))
    return no(reason, len, "registering shmem for MISSING faults failed");
  if (!ugc_remap_dontunmap_works(true))
    return no(reason, len, "mremap(MREMAP_DONTUNMAP) on shmem %s",
              ugc_feature_disabled("dontunmap") ? "masked by UFFDGC_DISABLE"
                                                : "unsupported (needs Linux 5.13)");
  return 1;
}
