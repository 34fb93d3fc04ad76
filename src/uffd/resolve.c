/* The resolving ioctls of userfaultfd, one section each, and their batched forms. The
 * contract they keep is in uffd/resolve.h; the partial-progress loop that COPY, ZEROPAGE,
 * CONTINUE, MOVE and POISON share (with its fault injection) is in uffd/progress.c. */
#include <errno.h>
#include <sys/ioctl.h>

#include "uffd/internal.h"

/* UFFDIO_COPY: allocate a page and fill it from a buffer. */
static int64_t copy_step(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
                         int *err) {
  struct uffdio_copy c = {.dst = dst, .src = src, .len = len, .mode = mode, .copy = 0};
  *err = ioctl(fd, UFFDIO_COPY, &c) == 0 ? 0 : errno;
  return c.copy;
}

ugc_uffd_result ugc_uffd_copy(ugc_uffd *u, void *dst, const void *src, size_t len, unsigned flags) {
  uint64_t mode = ((flags & UGC_UFFD_DONTWAKE) ? UFFDIO_COPY_MODE_DONTWAKE : 0) |
                  ((flags & UGC_UFFD_MAP_WP) ? UFFDIO_COPY_MODE_WP : 0);
  return ugc_uffd_run(u, UGC_UFFD_OP_COPY, copy_step, (uintptr_t)dst, (uintptr_t)src, len, mode,
                      flags);
}

/* UFFDIO_ZEROPAGE: map the shared zero page (the first write costs another fault). */
static int64_t zeropage_step(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
                             int *err) {
  (void)src;
  struct uffdio_zeropage z = {.range = {.start = dst, .len = len}, .mode = mode, .zeropage = 0};
  *err = ioctl(fd, UFFDIO_ZEROPAGE, &z) == 0 ? 0 : errno;
  return z.zeropage;
}

ugc_uffd_result ugc_uffd_zeropage(ugc_uffd *u, void *dst, size_t len, unsigned flags) {
  uint64_t mode = (flags & UGC_UFFD_DONTWAKE) ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0;
  return ugc_uffd_run(u, UGC_UFFD_OP_ZEROPAGE, zeropage_step, (uintptr_t)dst, 0, len, mode, flags);
}

/* UFFDIO_CONTINUE: map pages already in the page cache (minor faults on shmem). */
static int64_t continue_step(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
                             int *err) {
  (void)src;
  struct uffdio_continue c = {.range = {.start = dst, .len = len}, .mode = mode, .mapped = 0};
  *err = ioctl(fd, UFFDIO_CONTINUE, &c) == 0 ? 0 : errno;
  return c.mapped;
}

ugc_uffd_result ugc_uffd_continue(ugc_uffd *u, void *dst, size_t len, unsigned flags) {
  uint64_t mode = ((flags & UGC_UFFD_DONTWAKE) ? UFFDIO_CONTINUE_MODE_DONTWAKE : 0) |
                  ((flags & UGC_UFFD_MAP_WP) ? UFFDIO_CONTINUE_MODE_WP : 0);
  return ugc_uffd_run(u, UGC_UFFD_OP_CONTINUE, continue_step, (uintptr_t)dst, 0, len, mode, flags);
}

/* UFFDIO_MOVE (6.8+): move the source's pages to dst without copying or allocating. Needs
 * private anonymous memory on both sides, same protection, destination registered. */
static int64_t move_step(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
                         int *err) {
  struct uffdio_move m = {.dst = dst, .src = src, .len = len, .mode = mode, .move = 0};
  *err = ioctl(fd, UFFDIO_MOVE, &m) == 0 ? 0 : errno;
  return m.move;
}

ugc_uffd_result ugc_uffd_move(ugc_uffd *u, void *dst, void *src, size_t len, unsigned flags) {
  if (!(u->features & UFFD_FEATURE_MOVE))
    return (ugc_uffd_result){.status = UGC_UFFD_INVALID, .err = EOPNOTSUPP};
  uint64_t mode = ((flags & UGC_UFFD_DONTWAKE) ? UFFDIO_MOVE_MODE_DONTWAKE : 0) |
                  ((flags & UGC_UFFD_ALLOW_SRC_HOLES) ? UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES : 0);
  return ugc_uffd_run(u, UGC_UFFD_OP_MOVE, move_step, (uintptr_t)dst, (uintptr_t)src, len, mode,
                      flags);
}

/* UFFDIO_POISON (6.6+): mark pages so that touching them raises SIGBUS. */
static int64_t poison_step(int fd, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
                           int *err) {
  (void)src;
  struct uffdio_poison p = {.range = {.start = dst, .len = len}, .mode = mode, .updated = 0};
  *err = ioctl(fd, UFFDIO_POISON, &p) == 0 ? 0 : errno;
  return p.updated;
}

ugc_uffd_result ugc_uffd_poison(ugc_uffd *u, void *dst, size_t len, unsigned flags) {
  if (!(u->features & UFFD_FEATURE_POISON))
    return (ugc_uffd_result){.status = UGC_UFFD_INVALID, .err = EOPNOTSUPP};
  uint64_t mode = (flags & UGC_UFFD_DONTWAKE) ? UFFDIO_POISON_MODE_DONTWAKE : 0;
  return ugc_uffd_run(u, UGC_UFFD_OP_POISON, poison_step, (uintptr_t)dst, 0, len, mode, flags);
}

/* UFFDIO_WAKE: wake the threads queued on a range (after a DONTWAKE batch or on EEXIST). */
int ugc_uffd_wake(ugc_uffd *u, void *addr, size_t len) {
  if (len == 0)
    return -EINVAL; /* the kernel would wake everything */
  struct uffdio_range r = {.start = (uintptr_t)addr, .len = len};
  ugc_uffd_count(&u->counters.calls[UGC_UFFD_OP_WAKE], 1);
  if (ioctl(u->fd, UFFDIO_WAKE, &r) != 0) {
    int err = errno;
    ugc_uffd_count(&u->counters.errors, 1);
    return -err;
  }
  ugc_uffd_count(&u->counters.bytes[UGC_UFFD_OP_WAKE], len);
  return 0;
}

/* UFFDIO_WRITEPROTECT: set or clear write protection on a range registered with MODE_WP. */
int ugc_uffd_writeprotect(ugc_uffd *u, void *addr, size_t len, bool protect, unsigned flags) {
  struct uffdio_writeprotect wp = {
      .range = {.start = (uintptr_t)addr, .len = len},
      .mode = (protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0) |
              ((flags & UGC_UFFD_DONTWAKE) ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0)};
  ugc_uffd_count(&u->counters.calls[UGC_UFFD_OP_WRITEPROTECT], 1);
  if (ioctl(u->fd, UFFDIO_WRITEPROTECT, &wp) != 0) {
    int err = errno;
    ugc_uffd_count(&u->counters.errors, 1);
    return -err;
  }
  ugc_uffd_count(&u->counters.bytes[UGC_UFFD_OP_WRITEPROTECT], len);
  return 0;
}

/* Batched forms of the resolving ioctls: one call per span, stop at the first hard error. */
typedef ugc_uffd_result (*span_fn)(ugc_uffd *u, const ugc_uffd_span *s, unsigned flags);

static size_t run_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                        ugc_uffd_result *res, span_fn fn) {
  ugc_uffd_result sum = {.status = UGC_UFFD_OK};
  size_t i = 0;
  for (; i < n; i++) {
    ugc_uffd_result r = fn(u, &spans[i], flags);
    sum.done += r.done;
    sum.skipped += r.skipped;
    if (r.status != UGC_UFFD_OK) {
      sum.status = r.status;
      sum.err = r.err;
    }
    if (r.status != UGC_UFFD_OK && r.status != UGC_UFFD_ALREADY_RESOLVED)
      break;
  }
  if (res)
    *res = sum;
  return i;
}

static ugc_uffd_result copy_span(ugc_uffd *u, const ugc_uffd_span *s, unsigned flags) {
  return ugc_uffd_copy(u, s->dst, s->src, s->len, flags);
}
static ugc_uffd_result zeropage_span(ugc_uffd *u, const ugc_uffd_span *s, unsigned flags) {
  return ugc_uffd_zeropage(u, s->dst, s->len, flags);
}
static ugc_uffd_result continue_span(ugc_uffd *u, const ugc_uffd_span *s, unsigned flags) {
  return ugc_uffd_continue(u, s->dst, s->len, flags);
}
static ugc_uffd_result move_span(ugc_uffd *u, const ugc_uffd_span *s, unsigned flags) {
  return ugc_uffd_move(u, s->dst, s->src, s->len, flags);
}

size_t ugc_uffd_copy_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                           ugc_uffd_result *res) {
  return run_batch(u, spans, n, flags, res, copy_span);
}
size_t ugc_uffd_zeropage_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                               ugc_uffd_result *res) {
  return run_batch(u, spans, n, flags, res, zeropage_span);
}
size_t ugc_uffd_continue_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                               ugc_uffd_result *res) {
  return run_batch(u, spans, n, flags, res, continue_span);
}
size_t ugc_uffd_move_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                           ugc_uffd_result *res) {
  return run_batch(u, spans, n, flags, res, move_span);
}
