/* The partial-progress protocol of the resolving ioctls (design/kernel.md): the last field
 * holds bytes done (> 0) or -errno; the ioctl returns 0 only when everything was done, and
 * -1/EAGAIN after partial progress. Early failures never write the field, hence the zeroing
 * in every step function. Async-signal-safe: no locks, no allocation. */
#include <errno.h>
#include <stdbool.h>

#include "os/inject.h"

#include "os/reserve.h"
#include "uffd/internal.h"

static ugc_uffd_status classify(int err) {
  switch (err) {
  case 0:
    return UGC_UFFD_OK;
  case EEXIST:
    return UGC_UFFD_ALREADY_RESOLVED;
  case EAGAIN:
    return UGC_UFFD_PENDING_EVENT;
  case ENOENT:
    return UGC_UFFD_NOENT;
  case EBUSY:
    return UGC_UFFD_BUSY;
  case ESRCH:
    return UGC_UFFD_EXITING;
  case EINVAL:
    return UGC_UFFD_INVALID;
  default:
    return UGC_UFFD_FAILED;
  }
}

/* Fault injection (UFFDGC_INJECT "uffd.<error>", tests only): answers this step as the
 * kernel would with that error, without the ioctl; "partial" does the first half of the
 * range for real and then answers EAGAIN with that progress. */
static int64_t injected_step(ugc_uffd_step_fn step, int fd, uint64_t dst, uint64_t src,
                             uint64_t len, uint64_t mode, int *err, bool *injected) {
  static const struct {
    const char *point;
    int err;
  } errors[] = {{"uffd.eagain", EAGAIN}, {"uffd.eexist", EEXIST}, {"uffd.enoent", ENOENT},
                {"uffd.esrch", ESRCH},   {"uffd.enomem", ENOMEM}, {"uffd.efault", EFAULT},
                {"uffd.ebusy", EBUSY}};
  *injected = true;
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (ugc_inject(errors[i].point)) {
      *err = errors[i].err;
      return -errors[i].err;
    }
  uint64_t half = len / 2 & ~(ugc_page_size() - 1);
  if (half && ugc_inject("uffd.partial")) {
    int64_t progress = step(fd, dst, src, half, mode, err);
    if (*err == 0) {
      *err = EAGAIN;
      return (int64_t)half;
    }
    return progress;
  }
  *injected = false;
  return 0;
}

ugc_uffd_result ugc_uffd_run(ugc_uffd *u, ugc_uffd_op op, ugc_uffd_step_fn step, uint64_t dst,
                             uint64_t src, uint64_t len, uint64_t mode, unsigned flags) {
  ugc_uffd_result res = {.status = UGC_UFFD_OK};
  while (res.done + res.skipped < len) {
    uint64_t off = res.done + res.skipped, left = len - off;
    int err = 0;
    bool injected = false;
    int64_t progress = 0;
    if (ugc_inject_armed())
      progress =
          injected_step(step, u->fd, dst + off, src ? src + off : 0, left, mode, &err, &injected);
    if (!injected)
      progress = step(u->fd, dst + off, src ? src + off : 0, left, mode, &err);
    ugc_uffd_count(&u->counters.calls[op], 1);
    if (err == 0) { /* everything that was left is done */
      res.done += left;
      ugc_uffd_count(&u->counters.bytes[op], left);
      break;
    }
    if (progress > 0) { /* partial: -1/EAGAIN, retry from where the kernel stopped */
      uint64_t got = (uint64_t)progress < left ? (uint64_t)progress : left;
      res.done += got;
      ugc_uffd_count(&u->counters.bytes[op], got);
      continue;
    }
    int why = progress < 0 ? (int)-progress : err;
    if (why == EEXIST) {
      ugc_uffd_count(&u->counters.already_resolved, 1);
      res.status = UGC_UFFD_ALREADY_RESOLVED;
      res.err = EEXIST;
      if (flags & UGC_UFFD_SKIP_EXISTING) {
        uint64_t page = ugc_page_size();
        uint64_t skip = left < page ? left : page;
        if (!(flags & UGC_UFFD_DONTWAKE))
          ugc_uffd_wake(u, (void *)(uintptr_t)(dst + off), skip);
        res.skipped += skip;
        continue;
      }
      /* Whoever mapped it may have used DONTWAKE: wake the rest of our range. */
      if (!(flags & UGC_UFFD_DONTWAKE))
        ugc_uffd_wake(u, (void *)(uintptr_t)(dst + off), left);
      break;
    }
    if (why == EAGAIN)
      ugc_uffd_count(&u->counters.pending_event, 1);
    else
      ugc_uffd_count(&u->counters.errors, 1);
    res.status = classify(why);
    res.err = why;
    break;
  }
  return res;
}
