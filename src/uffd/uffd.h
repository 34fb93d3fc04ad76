/* The userfaultfd layer: opening a descriptor (dev node or syscall), the process-wide feature
 * probe, the handshake and registration. The resolving ioctls, with their contract (partial
 * progress, errors), are in uffd/resolve.h. Fault delivery lives in uffd/sigbus.h (SIGBUS
 * mode) and uffd/fault_thread.h (handler thread). UFFDGC_DISABLE (os/disable.h) masks
 * features and paths. */
#ifndef UGC_UFFD_UFFD_H
#define UGC_UFFD_UFFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uffd/uapi.h"

/* ---- Opening ---------------------------------------------------------------------------- */

enum {
  UGC_UFFD_NONBLOCK = 1u << 0,             /* O_NONBLOCK (required for poll()) */
  UGC_UFFD_ALLOW_USER_MODE_ONLY = 1u << 1, /* may fall back to UFFD_USER_MODE_ONLY */
};

typedef enum ugc_uffd_path {
  UGC_UFFD_PATH_NONE = 0,
  UGC_UFFD_PATH_DEV,                    /* /dev/userfaultfd + USERFAULTFD_IOC_NEW */
  UGC_UFFD_PATH_SYSCALL,                /* userfaultfd(2) */
  UGC_UFFD_PATH_SYSCALL_USER_MODE_ONLY, /* userfaultfd(UFFD_USER_MODE_ONLY) */
} ugc_uffd_path;

typedef enum ugc_uffd_attempt_state {
  UGC_ATTEMPT_NOT_TRIED = 0, /* an earlier path worked, or not allowed by the caller */
  UGC_ATTEMPT_DISABLED,      /* masked by UFFDGC_DISABLE */
  UGC_ATTEMPT_FAILED,        /* tried, err holds the errno */
  UGC_ATTEMPT_OK,
} ugc_uffd_attempt_state;

typedef struct ugc_uffd_attempt {
  ugc_uffd_attempt_state state;
  int err; /* errno of a failed attempt (EPERM: seccomp or no privilege, ENOSYS: valgrind) */
} ugc_uffd_attempt;

typedef struct ugc_uffd_open_info {
  ugc_uffd_path path; /* the path that produced the descriptor, NONE on failure */
  ugc_uffd_attempt dev, syscall, syscall_user_mode_only;
} ugc_uffd_open_info;

/* Opens a userfaultfd (always O_CLOEXEC): /dev/userfaultfd first, then the syscall, then
 * the syscall with UFFD_USER_MODE_ONLY if flags allow it. `how` (may be NULL) records each
 * attempt. Returns the fd, or -errno of the last failure (-EOPNOTSUPP if all disabled). */
int ugc_uffd_open(unsigned flags, ugc_uffd_open_info *how);

/* Opens through exactly one path (honouring UFFDGC_DISABLE: -EOPNOTSUPP when masked).
 * flags: UGC_UFFD_NONBLOCK. Returns the fd or -errno. */
int ugc_uffd_open_path(ugc_uffd_path path, unsigned flags);

/* "dev", "syscall", "syscall+user_mode_only" or "none". */
const char *ugc_uffd_path_name(ugc_uffd_path path);

/* ---- Probe (process-wide, cached) ------------------------------------------------------- */

typedef struct ugc_uffd_caps {
  bool available;          /* a descriptor could be opened and handshaked */
  char reason[320];        /* why not, when !available */
  ugc_uffd_open_info open; /* how the probe's descriptor was opened (create uses the same) */
  ugc_uffd_attempt dev, syscall, user_mode_only; /* each path tried on its own */
  uint64_t kernel_features;                      /* UFFDIO_API's answer */
  uint64_t features;        /* kernel_features minus what UFFDGC_DISABLE masks */
  uint64_t masked_features; /* offered by the kernel but masked by UFFDGC_DISABLE */
  uint64_t api_ioctls;      /* UFFDIO_API's ioctl mask */
  /* UFFDIO_REGISTER's ioctl mask on scratch mappings (0: registering failed), with masked
   * ioctls removed. */
  uint64_t anon_missing_ioctls;  /* private anonymous, MODE_MISSING */
  uint64_t anon_wp_ioctls;       /* private anonymous, MODE_MISSING|MODE_WP */
  uint64_t shmem_missing_ioctls; /* memfd MAP_SHARED, MODE_MISSING */
  uint64_t shmem_minor_ioctls;   /* memfd MAP_SHARED, MODE_MINOR */
  uint64_t masked_ioctls;        /* ioctl bits hidden by UFFDGC_DISABLE */
} ugc_uffd_caps;

/* Probes once per process (thread-safe) and copies the result into *out (may be NULL).
 * 0 when userfaultfd is available, else -errno with out->reason filled. Never crashes when
 * the syscall is blocked (seccomp), missing (valgrind: ENOSYS) or masked. */
int ugc_uffd_probe(ugc_uffd_caps *out);

/* The cached probe result (probing first if needed); never NULL. */
const ugc_uffd_caps *ugc_uffd_caps_get(void);

/* Feature bits UFFDGC_DISABLE masks ("minor", "move", "wp", "sigbus", ...). */
uint64_t ugc_uffd_disabled_features(void);

/* Ioctl bits (1 << _UFFDIO_x) UFFDGC_DISABLE masks. */
uint64_t ugc_uffd_disabled_ioctls(void);

/* Name of feature bit `bit` without the UFFD_FEATURE_ prefix ("MOVE"), NULL if unknown. */
const char *ugc_uffd_feature_name(int bit);

/* Name of ioctl number `nr` without the UFFDIO_ prefix ("COPY"), NULL if unknown. */
const char *ugc_uffd_ioctl_name(int nr);

/* ---- A descriptor ------------------------------------------------------------------------ */

typedef enum ugc_uffd_op {
  UGC_UFFD_OP_COPY = 0,
  UGC_UFFD_OP_ZEROPAGE,
  UGC_UFFD_OP_CONTINUE,
  UGC_UFFD_OP_MOVE,
  UGC_UFFD_OP_POISON,
  UGC_UFFD_OP_WAKE,
  UGC_UFFD_OP_WRITEPROTECT,
  UGC_UFFD_OP_REGISTER,
  UGC_UFFD_OP_UNREGISTER,
  UGC_UFFD_OP_COUNT
} ugc_uffd_op;

/* Per-descriptor statistics; read them with ugc_uffd_get_counters. */
typedef struct ugc_uffd_counters {
  uint64_t calls[UGC_UFFD_OP_COUNT]; /* ioctl invocations */
  uint64_t bytes[UGC_UFFD_OP_COUNT]; /* bytes the kernel reported done */
  uint64_t already_resolved;         /* EEXIST answers */
  uint64_t pending_event;            /* EAGAIN answers without progress */
  uint64_t errors;                   /* other failures */
} ugc_uffd_counters;

typedef struct ugc_uffd {
  int fd;                     /* -1 when closed */
  unsigned flags;             /* UGC_UFFD_NONBLOCK, ... as passed to create */
  uint64_t features;          /* features enabled on this descriptor */
  uint64_t ioctls;            /* UFFDIO_API ioctl mask, masked ioctls removed */
  ugc_uffd_open_info how;     /* which path opened it */
  ugc_uffd_counters counters; /* updated with relaxed atomics */
} ugc_uffd;

/* Opens a descriptor and handshakes with wanted_features & what the probe found usable
 * (check u->features for what was enabled). flags: UGC_UFFD_NONBLOCK,
 * UGC_UFFD_ALLOW_USER_MODE_ONLY. 0 or -errno (-ENOSYS style errors: see the probe). */
int ugc_uffd_create(ugc_uffd *u, uint64_t wanted_features, unsigned flags);

/* Closes the descriptor. Every thread waiting on it wakes and its fault becomes a plain
 * zero-fill: never close while a cycle is in flight. */
void ugc_uffd_close(ugc_uffd *u);

/* Snapshot of u's counters. */
void ugc_uffd_get_counters(const ugc_uffd *u, ugc_uffd_counters *out);

/* "copy", "zeropage", ... */
const char *ugc_uffd_op_name(ugc_uffd_op op);

/* ---- Registration ------------------------------------------------------------------------ */

enum {
  UGC_UFFD_REG_MISSING = 1u << 0, /* = UFFDIO_REGISTER_MODE_MISSING */
  UGC_UFFD_REG_WP = 1u << 1,      /* = UFFDIO_REGISTER_MODE_WP */
  UGC_UFFD_REG_MINOR = 1u << 2,   /* = UFFDIO_REGISTER_MODE_MINOR */
};

/* Registers [addr, addr+len) with `modes` and checks the returned ioctl mask holds what the
 * modes need (MISSING: COPY, ZEROPAGE, WAKE; MINOR: CONTINUE, WAKE; WP: WRITEPROTECT) plus
 * `extra_ioctls` (e.g. UGC_UFFD_IOCTL_BIT(_UFFDIO_MOVE)); unknown bits are ignored. On a
 * missing ioctl the range is unregistered again and -EOPNOTSUPP returned, as for a mode
 * masked by UFFDGC_DISABLE. *ioctls_out (may be NULL) gets the mask minus masked bits.
 * 0 or -errno (EBUSY: another uffd owns the range; EINVAL: unsuitable mapping).
 * Register once per cycle over the whole range (it takes the mmap write lock); on anonymous
 * memory touch one page first so the VMA pieces can merge back after unregistering. */
int ugc_uffd_register(ugc_uffd *u, void *addr, size_t len, unsigned modes, uint64_t extra_ioctls,
                      uint64_t *ioctls_out);

/* Unregisters [addr, addr+len) (waking its waiters). 0 or -errno. */
int ugc_uffd_unregister(ugc_uffd *u, void *addr, size_t len);

#endif
