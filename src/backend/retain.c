/* Moving-space memory kept for allocation (see retain.h). */
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
static bool move_chunk(ugc_uffd *uffd, uintptr_t dst, uintptr_t src, size_t len,
                       ugc_retain_counts *counts) {
  if (ugc_uffd_register(uffd, (void *)dst, len, UGC_UFFD_REG_MISSING,
                        UGC_UFFD_IOCTL_BIT(_UFFDIO_MOVE), NULL) != 0)
    return false;
  ugc_uffd_result moved = ugc_uffd_move(uffd, (void *)dst, (void *)src, len,
                                        UGC_UFFD_ALLOW_SRC_HOLES | UGC_UFFD_DONTWAKE);
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
      bool moved = move_chunk(uffd, next, next + (uintptr_t)r->from_delta, len, counts);
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

/* ---- drained during a compaction ---- */

void ugc_drained_init(ugc_drained *d) {
  memset(d, 0, sizeof *d);
  pthread_mutex_init(&d->lock, NULL);
}

void ugc_drained_destroy(ugc_drained *d) {
  pthread_mutex_destroy(&d->lock);
}

void ugc_drained_open(ugc_drained *d, uintptr_t from_start, uintptr_t heap_start,
                      uintptr_t heap_limit, size_t cap, uintptr_t tail_from, uintptr_t tail_to) {
  pthread_mutex_lock(&d->lock);
  d->open = true;
  d->tail_next = tail_from;
  d->tail_end = tail_to > tail_from ? tail_to : tail_from;
  d->next = d->end = d->drained_to = from_start;
  d->heap_next = (heap_start + UGC_RETAIN_CHUNK - 1) & ~(UGC_RETAIN_CHUNK - 1);
  d->heap_limit = heap_limit;
  d->cap = cap > UGC_RETAIN_CHUNK ? cap : UGC_RETAIN_CHUNK;
  pthread_mutex_unlock(&d->lock);
}

static void release(uintptr_t from, uintptr_t to) {
  if (from < to)
    ugc_madv_dontneed((void *)from, to - from);
}

void ugc_drained_add(ugc_drained *d, uintptr_t from, size_t bytes) {
  uintptr_t to = from + bytes;
  pthread_mutex_lock(&d->lock);
  if (!d->open) {
    pthread_mutex_unlock(&d->lock);
    release(from, to);
    return;
  }
  if (from != d->drained_to) {
    /* Not contiguous with what came before (the caller kept a part for the next cycle):
     * what waits goes, and the pool starts over at the next chunk boundary. */
    release(d->next, d->drained_to);
    uintptr_t first = (from + UGC_RETAIN_CHUNK - 1) & ~(UGC_RETAIN_CHUNK - 1);
    release(from, first < to ? first : to);
    d->next = d->end = first;
  }
  d->drained_to = to;
  uintptr_t whole = to & ~(UGC_RETAIN_CHUNK - 1);
  if (whole > d->end)
    d->end = whole;
  if (d->end - d->next > d->cap) { /* the oldest go: allocation is not keeping up */
    uintptr_t keep_from = (d->end - d->cap) & ~(UGC_RETAIN_CHUNK - 1);
    release(d->next, keep_from);
    d->next = keep_from;
  }
  pthread_mutex_unlock(&d->lock);
}

void ugc_drained_take(ugc_drained *d, ugc_uffd *uffd, uintptr_t start, uintptr_t end,
                      uintptr_t *low, uintptr_t *high, ugc_retain_counts *counts) {
  pthread_mutex_lock(&d->lock);
  if (!d->open) {
    pthread_mutex_unlock(&d->lock);
    return;
  }
  uintptr_t chunk = (start + UGC_RETAIN_CHUNK - 1) & ~(UGC_RETAIN_CHUNK - 1);
  if (chunk < d->heap_next)
    chunk = d->heap_next;
  for (; chunk < end && chunk + UGC_RETAIN_CHUNK <= d->heap_limit; chunk += UGC_RETAIN_CHUNK) {
    d->heap_next = chunk + UGC_RETAIN_CHUNK;
    uintptr_t source;
    if (d->tail_next < d->tail_end) {
      source = d->tail_next;
      d->tail_next += UGC_RETAIN_CHUNK;
    } else if (d->next < d->end) {
      source = d->next;
      d->next += UGC_RETAIN_CHUNK;
    } else {
      continue; /* nothing drained yet: this chunk faults in fresh */
    }
    bool moved = move_chunk(uffd, chunk, source, UGC_RETAIN_CHUNK, counts);
    if (*high != chunk)
      *low = chunk;
    *high = chunk + UGC_RETAIN_CHUNK; /* whatever part moved holds old data */
    if (!moved) { /* what is left waits for the compaction's end, released with from-space */
      d->open = false;
      break;
    }
  }
  pthread_mutex_unlock(&d->lock);
}

void ugc_drained_close(ugc_drained *d) {
  pthread_mutex_lock(&d->lock);
  d->open = false;
  pthread_mutex_unlock(&d->lock);
}
