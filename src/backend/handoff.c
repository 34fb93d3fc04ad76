/* The hand-off around held spans (see handoff.h). */
#include "backend/handoff.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "heap/vm.h"
#include "os/inject.h"
#include "os/log.h"
#include "os/madvise.h"
#include "os/remap.h"
#include "os/reserve.h"

/* The spans that stay in the heap range: the held spans and the untouched spans (disjoint),
 * in ascending order; stay k of stays(plan). */
static size_t stays(const ugc_compact_plan *plan) {
  return plan->held_count + plan->untouched_count;
}

/* Stay k: the held spans may be many (one per pinned object), the untouched ones are at most
 * UGC_UNTOUCHED_MAX, so each untouched span's place in the merged order is found by a binary
 * search among the held spans, and the rest are held spans in their own order. */
static ugc_fixed_range stay(const ugc_compact_plan *plan, size_t k) {
  size_t untouched_before = 0;
  for (size_t u = 0; u < plan->untouched_count; u++) {
    const ugc_untouched_span *span = &plan->untouched[u];
    size_t low = 0, high = plan->held_count; /* held spans starting before the span */
    while (low < high) {
      size_t mid = (low + high) / 2;
      if (plan->held[mid].start < span->start)
        low = mid + 1;
      else
        high = mid;
    }
    size_t position = u + low;
    if (position == k)
      return (ugc_fixed_range){span->start, span->end, 0};
    untouched_before += position < k;
  }
  return plan->held[k - untouched_before];
}

/* Stretch `r` of [0, all): the space between stay r - 1 and stay r, as offsets from the
 * space's base (k stays make k + 1 stretches, some maybe empty). */
static void stretch(const ugc_moving_space *space, const ugc_compact_plan *plan, size_t r,
                    size_t all, size_t *start, size_t *end) {
  *start = r ? stay(plan, r - 1).end - space->base : 0;
  *end = r < stays(plan) ? stay(plan, r).start - space->base : all;
  if (*end < *start)
    *end = *start;
}

/* Moves stretches [0, count) back from from-space, then makes from-space a reservation. */
static void move_back(ugc_moving_space *space, const ugc_compact_plan *plan, size_t count,
                      const char *who) {
  size_t all = space->reserved_bytes;
  for (size_t r = 0; r < count; r++) {
    size_t start, end;
    stretch(space, plan, r, all, &start, &end);
    if (end > start) {
      int rc = ugc_remap_move((void *)(space->from_base + start), (void *)(space->base + start),
                              end - start, NULL);
      if (rc != 0)
        ugc_fatal("%s backend: cannot move the heap back after a failed hand-off: %s", who,
                  strerror(-rc));
    }
  }
  if (ugc_uncommit((void *)space->from_base, all) != 0)
    ugc_warn("%s backend: could not restore the from-space reservation", who);
}

int ugc_handoff_around_held(ugc_moving_space *space, const ugc_compact_plan *plan,
                            const char *who) {
  size_t all = space->reserved_bytes;
  if (!stays(plan))
    return ugc_remap_dontunmap((void *)space->base, (void *)space->from_base, all, NULL);
  bool moved_one = false;
  for (size_t r = 0; r <= stays(plan); r++) {
    size_t start, end;
    stretch(space, plan, r, all, &start, &end);
    if (end <= start)
      continue;
    int rc = moved_one && ugc_inject("handoff.held_stretch")
                 ? -ENOMEM
                 : ugc_remap_dontunmap((void *)(space->base + start),
                                       (void *)(space->from_base + start), end - start, NULL);
    moved_one = true;
    if (rc != 0) { /* the stretches below this one moved: back they go */
      move_back(space, plan, r, who);
      return rc;
    }
  }
  for (size_t k = 0; k < plan->held_count + plan->untouched_count; k++) {
    /* Held spans whole, untouched spans' tails (compact.h) */
    bool held = k < plan->held_count;
    const ugc_untouched_span *span = held ? NULL : &plan->untouched[k - plan->held_count];
    size_t start = (held ? plan->held[k].start : span->tail) - space->base;
    size_t bytes = (held ? plan->held[k].end : span->end) - (space->base + start);
    if (!bytes)
      continue;
    int rc = ugc_vm_map_fixed((void *)(space->from_base + start), bytes, true);
    if (rc != 0) {
      move_back(space, plan, stays(plan) + 1, who);
      return rc;
    }
    memcpy((void *)(space->from_base + start), (const void *)(space->base + start), bytes);
  }
  return 0;
}

void ugc_handoff_undo(ugc_moving_space *space, const ugc_compact_plan *plan, const char *who) {
  move_back(space, plan, stays(plan) + 1, who);
}

size_t ugc_handoff_stretches(const ugc_compact_plan *plan) {
  return stays(plan) + 1;
}

void ugc_handoff_stretch(const ugc_moving_space *space, const ugc_compact_plan *plan, size_t r,
                         size_t all, size_t *start, size_t *end) {
  stretch(space, plan, r, all, start, end);
}

size_t ugc_handoff_drop_unheld(const ugc_moving_space *space, const ugc_compact_plan *plan,
                               size_t bytes) {
  size_t calls = 0;
  for (size_t r = 0; r <= stays(plan); r++) {
    size_t start, end;
    stretch(space, plan, r, bytes, &start, &end);
    if (start >= bytes)
      break;
    if (end > bytes)
      end = bytes;
    if (end > start) {
      ugc_madv_dontneed((void *)(space->base + start), end - start);
      calls++;
    }
  }
  return calls;
}
