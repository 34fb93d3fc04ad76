/* The userfaultfd uapi: the installed <linux/userfaultfd.h> (6.1 on the project's machines)
 * plus our own definitions of everything newer, each guarded so a newer header wins.
 * Values are checked against the kernel's uapi header (see design/kernel.md); what the
 * running kernel offers is decided at run time by the probe, never by these macros. */
#ifndef UGC_UFFD_UAPI_H
#define UGC_UFFD_UAPI_H

#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#ifndef USERFAULTFD_IOC
#define USERFAULTFD_IOC 0xAA
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif

#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
#endif
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
#endif

/* A struct cannot be #ifndef'd: define it only when the header lacks its ioctl. */
#ifndef UFFDIO_MOVE
struct uffdio_move {
  __u64 dst;
  __u64 src;
  __u64 len;
  __u64 mode;
  __s64 move; /* written by the kernel: bytes moved, or -errno */
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif
#ifndef UFFDIO_MOVE_MODE_DONTWAKE
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#endif
#ifndef UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
#endif

#ifndef UFFDIO_POISON
struct uffdio_poison {
  struct uffdio_range range;
  __u64 mode;
  __s64 updated; /* written by the kernel: bytes poisoned, or -errno */
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif
#ifndef UFFDIO_POISON_MODE_DONTWAKE
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
#endif

#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif

/* The range-ioctl masks of the 6.1 header lack MOVE and POISON; ours include them. */
#define UGC_UFFD_IOCTL_BIT(nr) ((__u64)1 << (nr))
#define UGC_UFFD_RANGE_IOCTLS                                                                      \
  (UGC_UFFD_IOCTL_BIT(_UFFDIO_WAKE) | UGC_UFFD_IOCTL_BIT(_UFFDIO_COPY) |                           \
   UGC_UFFD_IOCTL_BIT(_UFFDIO_ZEROPAGE) | UGC_UFFD_IOCTL_BIT(_UFFDIO_MOVE) |                       \
   UGC_UFFD_IOCTL_BIT(_UFFDIO_WRITEPROTECT) | UGC_UFFD_IOCTL_BIT(_UFFDIO_CONTINUE) |               \
   UGC_UFFD_IOCTL_BIT(_UFFDIO_POISON))

_Static_assert(UFFDIO_MOVE == 0xc028aa05, "UFFDIO_MOVE ioctl number");
_Static_assert(sizeof(struct uffdio_move) == 40, "struct uffdio_move layout");
_Static_assert(sizeof(struct uffdio_poison) == 32, "struct uffdio_poison layout");
_Static_assert(USERFAULTFD_IOC_NEW == 0xaa00, "USERFAULTFD_IOC_NEW ioctl number");
_Static_assert(sizeof(struct uffd_msg) == 32, "struct uffd_msg layout");

#endif
