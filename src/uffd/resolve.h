/* The resolving ioctls of userfaultfd (UFFDIO_COPY, ZEROPAGE, CONTINUE, MOVE, POISON, WAKE,
 * WRITEPROTECT), all in uffd/resolve.c, and what each of them promises its caller.
 *
 * Contract, common to every function here:
 *   - Async-signal-safe: no locks, no allocation. A SIGBUS handler or the fault-handler
 *     thread may call any of them.
 *   - [dst, dst+len) must lie inside a range registered on `u` with a mode that offers the
 *     ioctl (ugc_uffd_register checks the mask); len and addresses page-aligned.
 *   - Partial progress is never lost: the kernel may stop after some pages (-1/EAGAIN with a
 *     positive count). The range-filling functions (copy, zeropage, continue, move, poison)
 *     then retry from where the kernel stopped, so `done` is the bytes really resolved, and
 *     with a failure status the first done + skipped bytes are resolved, the rest are not.
 *   - Errors are reported, never raised: the result's `status` classifies the errno (kept in
 *     `err`). EEXIST is not a failure (ALREADY_RESOLVED: another thread won the race, and its
 *     waiters are woken unless UGC_UFFD_DONTWAKE); EAGAIN without progress (PENDING_EVENT)
 *     means an unread non-fault event: read the descriptor, then retry. wake and
 *     writeprotect, which have no progress count, return 0 or -errno.
 *   - A feature the descriptor was not created with (MOVE, POISON) answers INVALID with
 *     err = EOPNOTSUPP, without an ioctl.
 *   - Every call is counted in u->counters (relaxed atomics).
 *   - Tests may answer any step with an injected error (UFFDGC_INJECT uffd.*, uffd/progress.c)
 *     exactly as the kernel would. */
#ifndef UGC_UFFD_RESOLVE_H
#define UGC_UFFD_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#include "uffd/uffd.h"

enum {
  UGC_UFFD_DONTWAKE = 1u << 0,        /* do not wake waiters (wake a batch later) */
  UGC_UFFD_MAP_WP = 1u << 1,          /* COPY/CONTINUE: map write-protected */
  UGC_UFFD_SKIP_EXISTING = 1u << 2,   /* on EEXIST skip that page and go on */
  UGC_UFFD_ALLOW_SRC_HOLES = 1u << 3, /* MOVE: holes in the source are not ENOENT */
};

typedef enum ugc_uffd_status {
  UGC_UFFD_OK = 0,
  UGC_UFFD_ALREADY_RESOLVED, /* EEXIST: someone else mapped a page (woken unless DONTWAKE) */
  UGC_UFFD_PENDING_EVENT,    /* EAGAIN without progress: an unread FORK/REMAP/... event */
  UGC_UFFD_NOENT,            /* ENOENT: dst not registered, or (MOVE) a source hole */
  UGC_UFFD_BUSY,             /* EBUSY: (MOVE) source page shared or pinned */
  UGC_UFFD_EXITING,          /* ESRCH: the process is exiting */
  UGC_UFFD_INVALID,          /* EINVAL: bad range, unsuitable mapping, unsupported mode */
  UGC_UFFD_FAILED,           /* any other errno (see err) */
} ugc_uffd_status;

typedef struct ugc_uffd_result {
  ugc_uffd_status status;
  int err;        /* errno behind status (0 for OK) */
  size_t done;    /* bytes this call resolved */
  size_t skipped; /* bytes skipped because already mapped (UGC_UFFD_SKIP_EXISTING) */
} ugc_uffd_result;

/* One piece of a batch: dst (and src for COPY/MOVE) and length. */
typedef struct ugc_uffd_span {
  void *dst;
  void *src;
  size_t len;
} ugc_uffd_span;

/* UFFDIO_COPY: fills [dst, dst+len) with a copy of src. Retries partial progress. */
ugc_uffd_result ugc_uffd_copy(ugc_uffd *u, void *dst, const void *src, size_t len, unsigned flags);

/* UFFDIO_ZEROPAGE: maps the zero page (read-only until the next write fault). */
ugc_uffd_result ugc_uffd_zeropage(ugc_uffd *u, void *dst, size_t len, unsigned flags);

/* UFFDIO_CONTINUE: maps the page-cache pages already behind [dst, dst+len) (MINOR mode). */
ugc_uffd_result ugc_uffd_continue(ugc_uffd *u, void *dst, size_t len, unsigned flags);

/* UFFDIO_MOVE: moves the pages of [src, src+len) to dst without copying (anon only). */
ugc_uffd_result ugc_uffd_move(ugc_uffd *u, void *dst, void *src, size_t len, unsigned flags);

/* UFFDIO_POISON: later accesses to [dst, dst+len) get SIGBUS (memory-error emulation). */
ugc_uffd_result ugc_uffd_poison(ugc_uffd *u, void *dst, size_t len, unsigned flags);

/* UFFDIO_WAKE: wakes the threads waiting on [addr, addr+len) (len > 0). 0 or -errno. */
int ugc_uffd_wake(ugc_uffd *u, void *addr, size_t len);

/* UFFDIO_WRITEPROTECT: sets (protect) or clears write protection; clearing wakes unless
 * UGC_UFFD_DONTWAKE. 0 or -errno. */
int ugc_uffd_writeprotect(ugc_uffd *u, void *addr, size_t len, bool protect, unsigned flags);

/* Batched forms: process spans in order, stopping at the first span whose status is neither
 * OK nor ALREADY_RESOLVED. Return the number of spans completed: when < n, spans[return]
 * failed. *res (may be NULL) sums done and skipped over the spans tried and holds the last
 * status other than OK (the failure, if any). */
size_t ugc_uffd_copy_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                           ugc_uffd_result *res);
size_t ugc_uffd_zeropage_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                               ugc_uffd_result *res);
size_t ugc_uffd_continue_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                               ugc_uffd_result *res);
size_t ugc_uffd_move_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                           ugc_uffd_result *res);

/* "ok", "already_resolved", "pending_event", ... */
const char *ugc_uffd_status_name(ugc_uffd_status s);

#endif
