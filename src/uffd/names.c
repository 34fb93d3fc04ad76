/* Names for reports, and the map from UFFDGC_DISABLE names to feature and ioctl bits. */
#include <stddef.h>

#include "os/disable.h"
#include "uffd/resolve.h"
#include "uffd/uffd.h"

static const char *const feature_names[] = {
    "PAGEFAULT_FLAG_WP",
    "EVENT_FORK",
    "EVENT_REMAP",
    "EVENT_REMOVE",
    "MISSING_HUGETLBFS",
    "MISSING_SHMEM",
    "EVENT_UNMAP",
    "SIGBUS",
    "THREAD_ID",
    "MINOR_HUGETLBFS",
    "MINOR_SHMEM",
    "EXACT_ADDRESS",
    "WP_HUGETLBFS_SHMEM",
    "WP_UNPOPULATED",
    "POISON",
    "WP_ASYNC",
    "MOVE",
};

const char *ugc_uffd_feature_name(int bit) {
  if (bit < 0 || bit >= (int)(sizeof feature_names / sizeof feature_names[0]))
    return NULL;
  return feature_names[bit];
}

const char *ugc_uffd_ioctl_name(int nr) {
  switch (nr) {
  case _UFFDIO_REGISTER:
    return "REGISTER";
  case _UFFDIO_UNREGISTER:
    return "UNREGISTER";
  case _UFFDIO_WAKE:
    return "WAKE";
  case _UFFDIO_COPY:
    return "COPY";
  case _UFFDIO_ZEROPAGE:
    return "ZEROPAGE";
  case _UFFDIO_MOVE:
    return "MOVE";
  case _UFFDIO_WRITEPROTECT:
    return "WRITEPROTECT";
  case _UFFDIO_CONTINUE:
    return "CONTINUE";
  case _UFFDIO_POISON:
    return "POISON";
  case _UFFDIO_API:
    return "API";
  default:
    return NULL;
  }
}

const char *ugc_uffd_op_name(ugc_uffd_op op) {
  static const char *const names[UGC_UFFD_OP_COUNT] = {"copy",         "zeropage", "continue",
                                                       "move",         "poison",   "wake",
                                                       "writeprotect", "register", "unregister"};
  return (unsigned)op < UGC_UFFD_OP_COUNT ? names[op] : "?";
}

const char *ugc_uffd_status_name(ugc_uffd_status s) {
  switch (s) {
  case UGC_UFFD_OK:
    return "ok";
  case UGC_UFFD_ALREADY_RESOLVED:
    return "already_resolved";
  case UGC_UFFD_PENDING_EVENT:
    return "pending_event";
  case UGC_UFFD_NOENT:
    return "noent";
  case UGC_UFFD_BUSY:
    return "busy";
  case UGC_UFFD_EXITING:
    return "exiting";
  case UGC_UFFD_INVALID:
    return "invalid";
  default:
    return "failed";
  }
}

const char *ugc_uffd_path_name(ugc_uffd_path path) {
  switch (path) {
  case UGC_UFFD_PATH_DEV:
    return "dev";
  case UGC_UFFD_PATH_SYSCALL:
    return "syscall";
  case UGC_UFFD_PATH_SYSCALL_USER_MODE_ONLY:
    return "syscall+user_mode_only";
  default:
    return "none";
  }
}

#define WP_FEATURES                                                                                \
  (UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_HUGETLBFS_SHMEM |                              \
   UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_ASYNC)

uint64_t ugc_uffd_disabled_features(void) {
  uint64_t m = 0;
  if (ugc_feature_disabled("minor"))
    m |= UFFD_FEATURE_MINOR_HUGETLBFS | UFFD_FEATURE_MINOR_SHMEM;
  if (ugc_feature_disabled("move"))
    m |= UFFD_FEATURE_MOVE;
  if (ugc_feature_disabled("wp"))
    m |= WP_FEATURES;
  if (ugc_feature_disabled("sigbus"))
    m |= UFFD_FEATURE_SIGBUS;
  if (ugc_feature_disabled("poison"))
    m |= UFFD_FEATURE_POISON;
  if (ugc_feature_disabled("thread_id"))
    m |= UFFD_FEATURE_THREAD_ID;
  /* uffdgc's shmem always comes from memfd: no memfd, no shmem features. */
  if (ugc_feature_disabled("shmem") || ugc_feature_disabled("memfd"))
    m |= UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM;
  return m;
}

uint64_t ugc_uffd_disabled_ioctls(void) {
  uint64_t m = 0;
  if (ugc_feature_disabled("minor"))
    m |= UGC_UFFD_IOCTL_BIT(_UFFDIO_CONTINUE);
  if (ugc_feature_disabled("move"))
    m |= UGC_UFFD_IOCTL_BIT(_UFFDIO_MOVE);
  if (ugc_feature_disabled("wp"))
    m |= UGC_UFFD_IOCTL_BIT(_UFFDIO_WRITEPROTECT);
  if (ugc_feature_disabled("poison"))
    m |= UGC_UFFD_IOCTL_BIT(_UFFDIO_POISON);
  return m;
}
