/* Moving-space memory kept between cycles (see retain.h). */
#include "backend/retain.h"

#include <string.h>

#include "os/log.h"
#include "os/madvise.h"
#include "uffd/resolve.h"
#include "uffd/uapi.h"

void ugc_retained_init(ugc_retained *r) {
  pthread_mutex_init(&r->lock, NULL);
  atomic_store(&r->next, 0);
  r->end = 0;
  r->from_delta = 0;
}

void ugc_retained_destroy(ugc_retained *r) {
  pthread_mutex_destroy(&r->lock);
}

void ugc_retained_keep(ugc_retained *r, uintptr_t low, uintptr_t high, intptr_t from_delta) {
  pthread_mutex_lock(&r->lock);
  r->end = high;
  r->from_delta = from_delta;
  atomic_store_explicit(&r->next, low < high ? low : 0, memory_order_relaxed);
  pthread_mutex_unlock(&r->lock);
}

/* Gives the from-space twins of heap range [from, to) back to the kernel. Lock held. */
static void release_twins(ugc_retained *r, uintptr_t from, uintptr_t to,
                          ugc_retain_counts *counts) {
  if (from >= to)
    return;
  ugc_madv_dontneed((void *)(from + (uintptr_t)r->from_delta), to - from);
  if (counts) {
    counts->released_bytes += to - from;
    counts->release_calls++;
  }
}

void ugc_retained_drop(ugc_retained *r, bool release) {
  pthread_mutex_lock(&r->lock);
  uintptr_t next = atomic_load_explicit(&r->next, memory_order_relaxed);
  if (next && release)
    release_twins(r, next, r->end, NULL);
  atomic_store_explicit(&r->next, 0, memory_order_relaxed);
  pthread_mutex_unlock(&r->lock);
}

/* Moves the chunk [dst, dst+len) in from its from-space twin. Registering just the chunk
 * splits the heap's VMA; unregistering merges it back (the pieces share the anon_vma the
 * copy backend gave the heap VMA before its first split). A source hole (a page never
 * touched) leaves the destination page missing: after unregistering it is an ordinary
 * zero-fill fault. Returns false when the chunk could not be moved (whatever moved stays). */
static bool move_chunk(ugc_retained *r, ugc_uffd *uffd, uintptr_t dst, size_t len,
                       ugc_retain_counts *counts) {
  if (ugc_uffd_register(uffd, (void *)dst, len, UGC_UFFD_REG_MISSING,
                        UGC_UFFD_IOCTL_BIT(_UFFDIO_MOVE), NULL) != 0)
    return false;
  ugc_uffd_result moved = ugc_uffd_move(uffd, (void *)dst, (void *)(dst + (uintptr_t)r->from_delta),
                                        len, UGC_UFFD_ALLOW_SRC_HOLES | UGC_UFFD_DONTWAKE);
  int rc = ugc_uffd_unregister(uffd, (void *)dst, len);
  if (rc != 0) /* a registered piece above the top would turn allocation into SIGBUS */
    ugc_fatal("copy backend: unregistering a recycled heap chunk failed (%s)", strerror(-rc));
  counts->moved_bytes += moved.done;
  counts->move_calls++;
  return moved.status == UGC_UFFD_OK;
}

void ugc_retained_take(ugc_retained *r, ugc_uffd *uffd, uintptr_t start, uintptr_t end,
                       uintptr_t *low, uintptr_t *high, ugc_retain_counts *counts) {
  pthread_mutex_lock(&r->lock);
  uintptr_t next = atomic_load_explicit(&r->next, memory_order_relaxed);
  if (next) {
    uintptr_t first = (start + UGC_RETAIN_CHUNK - 1) & ~(UGC_RETAIN_CHUNK - 1);
    if (next < first) { /* pages of these chunks were handed out before they were kept */
      uintptr_t stop = first < r->end ? first : r->end;
      release_twins(r, next, stop, counts);
      next = stop;
    }
    while (next < r->end && next < end) {
      size_t len = r->end - next < UGC_RETAIN_CHUNK ? r->end - next : UGC_RETAIN_CHUNK;
      bool moved = move_chunk(r, uffd, next, len, counts);
      if (*high != next)
        *low = next;
      *high = next + len; /* whatever part moved holds old data */
      next += len;
      if (!moved) {
        release_twins(r, next - len, r->end, counts);
        next = r->end;
      }
    }
    atomic_store_explicit(&r->next, next < r->end ? next : 0, memory_order_relaxed);
  }
  pthread_mutex_unlock(&r->lock);
}
