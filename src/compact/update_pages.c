#include "compact/update_pages.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "os/reserve.h"

void ugc_update_pages_init(ugc_update_pages *u) {
  memset(u, 0, sizeof *u);
}

void ugc_update_pages_destroy(ugc_update_pages *u) {
  if (u->nonmoving_shadow) {
    ugc_reservation r = {(void *)u->nonmoving_shadow, u->nonmoving_shadow_bytes, 0, 0};
    ugc_os_release(&r);
  }
  free(u->ranges);
  free(u->large_deferred);
  free(u->live_bits);
  free(u->unit_offset);
  free((void *)u->mapped);
  memset(u, 0, sizeof *u);
}

/* Grows *array to hold `count` elements of `size` bytes; false when out of memory. */
static bool reserve_array(void **array, size_t *capacity, size_t count, size_t size) {
  if (count <= *capacity)
    return true;
  size_t grown = *capacity ? *capacity : 16;
  while (grown < count)
    grown *= 2;
  void *bigger = realloc(*array, grown * size);
  if (!bigger)
    return false;
  *array = bigger;
  *capacity = grown;
  return true;
}

static bool add_range(ugc_update_pages *u, uintptr_t start, size_t bytes, size_t move_bytes,
                      uintptr_t hdr) {
  if (!reserve_array((void **)&u->ranges, &u->capacity, u->count + 1, sizeof *u->ranges))
    return false;
  u->ranges[u->count++] = (ugc_update_range){.start = start,
                                             .bytes = bytes,
                                             .move_bytes = move_bytes,
                                             .hdr = hdr,
                                             .header = hdr ? ugc_header_load(hdr) : 0,
                                             .first_page = u->page_count,
                                             .handle = -1};
  u->page_count += bytes / UGC_PAGE_SIZE;
  return true;
}

/* The non-moving space's allocation bits, copied span by span. */
static bool snapshot_nonmoving(ugc_update_pages *u, const ugc_nonmoving_space *space) {
  size_t units = (space->top - space->base) >> UGC_NM_UNIT_SHIFT, words = 0;
  for (size_t s = 0; s < space->span_count; s++)
    words += (space->spans[s]->cell_count + 63) / 64;
  if (!reserve_array((void **)&u->unit_offset, &u->unit_capacity, units, sizeof(uint32_t)) ||
      !reserve_array((void **)&u->live_bits, &u->live_capacity, words, sizeof(uint64_t)))
    return false;
  size_t at = 0;
  for (size_t s = 0; s < space->span_count; s++) {
    const ugc_nm_span *span = space->spans[s];
    size_t span_words = (span->cell_count + 63) / 64;
    memcpy(&u->live_bits[at], span->alloc_bits, span_words * sizeof(uint64_t));
    size_t first_unit = (span->start - space->base) >> UGC_NM_UNIT_SHIFT;
    for (size_t unit = 0; unit < span->bytes >> UGC_NM_UNIT_SHIFT; unit++)
      u->unit_offset[first_unit + unit] = (uint32_t)at;
    at += span_words;
  }
  u->snapshot_units = units;
  return true;
}

static bool select_nonmoving(ugc_update_pages *u, const ugc_nonmoving_space *space) {
  if (space->used_bytes < UGC_UPDATE_MIN_NONMOVING_BYTES || space->top == space->base)
    return false;
  size_t reserved = space->end - space->base;
  if (!u->nonmoving_shadow) {
    ugc_reservation r;
    if (ugc_os_reserve(&r, reserved, (size_t)2 << 20) != 0)
      return false;
    u->nonmoving_shadow = (uintptr_t)r.base;
    u->nonmoving_shadow_bytes = r.size;
  }
  size_t used = (space->top - space->base + UGC_PAGE_SIZE - 1) & ~(size_t)(UGC_PAGE_SIZE - 1);
  /* Registering part of the range splits its mapping: the backend needs room above the
   * used part for that (see backend/copy_update.c); without it the whole range is built. */
  if (used + UGC_UPDATE_SPLIT_ROOM > reserved)
    used = reserved;
  return snapshot_nonmoving(u, space) && add_range(u, space->base, used, reserved, 0);
}

static int compare_ranges(const void *a, const void *b) {
  uintptr_t x = ((const ugc_update_range *)a)->start, y = ((const ugc_update_range *)b)->start;
  return x < y ? -1 : x > y;
}

bool ugc_update_pages_select(ugc_update_pages *u, const ugc_compact_plan *plan,
                             const ugc_type_table *types, const ugc_nonmoving_space *nonmoving,
                             const ugc_large_space *large, bool defer_nonmoving,
                             ugc_update_pinned_fn pinned, const void *pinned_ctx) {
  u->plan = plan;
  u->types = types;
  u->nonmoving = nonmoving;
  u->count = 0;
  u->page_count = 0;
  u->pages_in_pause = 0;
  u->nonmoving_deferred = false;
  u->pending = false;
  atomic_store_explicit(&u->pages_by_gc, 0, memory_order_relaxed);
  atomic_store_explicit(&u->pages_by_mutator, 0, memory_order_relaxed);
  atomic_store_explicit(&u->map_retries, 0, memory_order_relaxed);
  if (!reserve_array((void **)&u->large_deferred, &u->large_deferred_capacity, large->count, 1))
    return false;
  if (u->large_deferred)
    memset(u->large_deferred, 0, u->large_deferred_capacity);
  if (defer_nonmoving)
    u->nonmoving_deferred = select_nonmoving(u, nonmoving);
  unsigned taken = 0;
  for (size_t i = 0; i < large->count && taken < UGC_UPDATE_MAX_LARGE; i++) {
    const ugc_large_object *object = &large->objects[i];
    uint64_t header = ugc_header_load(object->hdr);
    const ugc_type_info *type = ugc_type_get(types, ugc_header_type(header));
    if (type->layout == UGC_LAYOUT_LEAF || type->layout == UGC_LAYOUT_CUSTOM ||
        object->map_bytes < UGC_UPDATE_MIN_LARGE_BYTES ||
        (pinned && pinned(pinned_ctx, object->hdr)))
      continue;
    if (!add_range(u, object->hdr, object->map_bytes, object->map_bytes, object->hdr))
      break;
    u->large_deferred[i] = 1;
    taken++;
  }
  /* In address order (faults look ranges up by address); page indices follow that order. */
  if (u->count > 1)
    qsort(u->ranges, u->count, sizeof *u->ranges, compare_ranges);
  size_t first_page = 0;
  for (size_t i = 0; i < u->count; i++) {
    u->ranges[i].first_page = first_page;
    first_page += u->ranges[i].bytes / UGC_PAGE_SIZE;
  }
  if (!reserve_array((void **)&u->mapped, &u->mapped_capacity, u->page_count, 1)) {
    if (u->large_deferred)
      memset(u->large_deferred, 0, u->large_deferred_capacity);
    u->nonmoving_deferred = false;
    u->count = u->page_count = 0;
  }
  u->pending = u->count != 0;
  return u->pending;
}

/* ---- building a page ---- */

typedef struct page_job {
  const ugc_update_pages *u;
  uintptr_t page; /* real address */
  intptr_t delta; /* old content is at real address + delta */
  char *out;      /* the page being built (may be the real page itself) */
} page_job;

static inline void forward_at(const page_job *job, uintptr_t slot, const ugc_tag_rule *rule) {
  if (slot - job->page < UGC_PAGE_SIZE)
    ugc_compact_update_slot(job->u->plan, job->out + (slot - job->page), rule);
}

typedef struct filter_tracer {
  ugc_tracer tracer;
  const page_job *job;
} filter_tracer;

static void filter_visit(ugc_tracer *tracer, void *slot, const ugc_tag_rule *rule) {
  const page_job *job = ((filter_tracer *)tracer)->job;
  forward_at(job, (uintptr_t)slot - (uintptr_t)job->delta, rule);
}

/* The slots of the object at hdr, whose header word is `header`, that lie on the page. */
static void update_object(const page_job *job, uintptr_t hdr, uint64_t header) {
  const ugc_type_info *type = ugc_type_get(job->u->types, ugc_header_type(header));
  uintptr_t payload = hdr + UGC_HEADER_BYTES;
  if (type->layout == UGC_LAYOUT_LEAF)
    return;
  if (type->layout == UGC_LAYOUT_CUSTOM) {
    /* Only small (non-moving) objects get here: visiting all of it per page is bounded. */
    filter_tracer filter = {{filter_visit}, job};
    type->trace((void *)(payload + (uintptr_t)job->delta), ugc_header_payload(header),
                &filter.tracer);
    return;
  }
  for (uint32_t i = 0; i < type->ref_count; i++)
    forward_at(job, payload + type->ref_offsets[i], &type->tags);
  size_t payload_bytes = ugc_header_payload(header);
  if (type->layout != UGC_LAYOUT_REF_ARRAY || payload_bytes < type->fixed_size + 8)
    return;
  uintptr_t first = payload + type->fixed_size;
  uintptr_t end = first + (payload_bytes - type->fixed_size) / 8 * 8;
  uintptr_t lo = first > job->page ? first : job->page;
  uintptr_t hi = end < job->page + UGC_PAGE_SIZE ? end : job->page + UGC_PAGE_SIZE;
  for (uintptr_t slot = lo; slot + 8 <= hi; slot += 8)
    ugc_compact_update_slot(job->u->plan, job->out + (slot - job->page), &type->tags);
}

/* Allocated cells (as of the pause) of the non-moving space that overlap the page. */
static void update_nonmoving_page(const page_job *job) {
  const ugc_nonmoving_space *space = job->u->nonmoving;
  size_t unit = (job->page - space->base) >> UGC_NM_UNIT_SHIFT;
  if (unit >= job->u->snapshot_units)
    return; /* above the spans of the pause: nothing of the pause to update */
  const ugc_nm_span *span = space->unit_spans[unit];
  if (!span)
    return;
  const uint64_t *live = &job->u->live_bits[job->u->unit_offset[unit]];
  size_t first = (job->page - span->start) / span->cell_bytes;
  size_t last = (job->page + UGC_PAGE_SIZE - 1 - span->start) / span->cell_bytes;
  if (last >= span->cell_count)
    last = span->cell_count - 1;
  for (size_t cell = first; cell <= last; cell++)
    if ((live[cell >> 6] >> (cell & 63)) & 1u)
      update_object(
          job, span->start + cell * span->cell_bytes,
          *(const uint64_t *)(span->start + cell * span->cell_bytes + (uintptr_t)job->delta));
}

static void build_page(const ugc_update_pages *u, const ugc_update_range *range, uintptr_t page,
                       char *out, bool in_place) {
  page_job job = {u, page, in_place ? 0 : (intptr_t)(range->shadow - range->start), out};
  if (!in_place && out != (char *)(page + (uintptr_t)job.delta))
    memcpy(out, (const void *)(page + (uintptr_t)job.delta), UGC_PAGE_SIZE);
  if (range->hdr)
    update_object(&job, range->hdr, range->header);
  else
    update_nonmoving_page(&job);
}

/* ---- the pause ---- */

static void update_in_place(ugc_update_pages *u, ugc_update_range *range) {
  for (uintptr_t page = range->start; page < range->start + range->bytes; page += UGC_PAGE_SIZE)
    build_page(u, range, page, (char *)page, true);
  u->pages_in_pause += range->bytes / UGC_PAGE_SIZE;
}

void ugc_update_pages_in_pause(ugc_update_pages *u) {
  if (!u->pending)
    return;
  u->pending = false;
  for (size_t i = 0; i < u->count; i++)
    update_in_place(u, &u->ranges[i]);
}

static void release_shadow(ugc_update_pages *u, ugc_update_range *range) {
  if (range->hdr) {
    ugc_reservation r = {(void *)range->shadow, range->move_bytes, 0, 0};
    ugc_os_release(&r);
  } else if (ugc_uncommit((void *)range->shadow, range->move_bytes) != 0) {
    /* The reservation cannot be restored: a fresh one next cycle, this one leaks its
     * address space only (the old pages went with the failed call's replacement or stay
     * mapped until heap destruction would have dropped them). */
    u->nonmoving_shadow = 0;
  }
  range->shadow = 0;
}

void ugc_update_pages_start(ugc_update_pages *u, const ugc_update_protector *protector,
                            const ugc_page_mapper *mapper) {
  if (!u->pending)
    return;
  u->pending = false;
  atomic_store_explicit(&u->handing_off, true, memory_order_release);
  u->protector = *protector;
  u->mapper = *mapper;
  memset((void *)u->mapped, 0, u->page_count);
  atomic_store_explicit(&u->next_page, 0, memory_order_relaxed);
  atomic_store_explicit(&u->pages_by_gc, 0, memory_order_relaxed);
  atomic_store_explicit(&u->pages_by_mutator, 0, memory_order_relaxed);
  atomic_store_explicit(&u->map_retries, 0, memory_order_relaxed);
  bool any = false;
  for (size_t i = 0; i < u->count; i++) {
    ugc_update_range *range = &u->ranges[i];
    range->is_protected = false;
    if (!range->hdr && protector->builds_in_shadow) {
      /* Built pages leave the shadow, and a cell's header may lie on a page that left it
       * already: only ranges whose header is kept here (large objects) are built there. */
      update_in_place(u, range);
      continue;
    }
    if (range->hdr) {
      ugc_reservation r;
      /* Like the object (heap/large.c): whole page-table pages move. */
      size_t align = range->move_bytes >= ((size_t)2 << 20) ? (size_t)2 << 20 : UGC_PAGE_SIZE;
      if (ugc_os_reserve(&r, range->move_bytes, align) != 0) {
        update_in_place(u, range);
        continue;
      }
      range->shadow = (uintptr_t)r.base;
    } else {
      range->shadow = u->nonmoving_shadow;
    }
    if (protector->protect(protector->backend, range->start, range->move_bytes, range->bytes,
                           range->shadow, &range->handle) != 0) {
      if (!range->hdr)
        u->nonmoving_shadow = 0; /* given up: a new reservation next time */
      range->shadow = 0;
      update_in_place(u, range);
      continue;
    }
    range->is_protected = true;
    any = true;
  }
  /* Pages of ranges updated in place count as mapped: the GC threads skip them. */
  for (size_t i = 0; i < u->count; i++)
    if (!u->ranges[i].is_protected)
      memset((void *)&u->mapped[u->ranges[i].first_page], 1, u->ranges[i].bytes / UGC_PAGE_SIZE);
  atomic_store_explicit(&u->active, any, memory_order_release);
}

void ugc_update_pages_handoff_done(ugc_update_pages *u) {
  atomic_store_explicit(&u->handing_off, false, memory_order_release);
}

void ugc_update_pages_wait_handoff(ugc_update_pages *u) {
  while (atomic_load_explicit(&u->handing_off, memory_order_acquire))
    nanosleep(&(struct timespec){0, 20 * 1000}, NULL);
}

/* ---- concurrent building ---- */

static ugc_update_range *range_of(ugc_update_pages *u, uintptr_t addr) {
  size_t lo = 0, hi = u->count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    ugc_update_range *range = &u->ranges[mid];
    if (addr < range->start)
      hi = mid;
    else if (addr >= range->start + range->bytes)
      lo = mid + 1;
    else
      return range;
  }
  return NULL;
}

static ugc_update_range *range_of_page(ugc_update_pages *u, size_t page) {
  size_t lo = 0, hi = u->count;
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (u->ranges[mid].first_page <= page)
      lo = mid;
    else
      hi = mid;
  }
  return &u->ranges[lo];
}

/* Where the page at `page` of `range` is built: the caller's buffer, or its shadow page. */
static char *build_target(const ugc_update_pages *u, const ugc_update_range *range, uintptr_t page,
                          char *buffer) {
  return u->protector.builds_in_shadow ? (char *)(page - range->start + range->shadow) : buffer;
}

/* A builder's claim of a page: with copies (idempotent) any unmapped page; in the shadow, an
 * exclusive one. */
static bool claim_page(ugc_update_pages *u, size_t index) {
  uint8_t state = 0;
  if (!u->protector.builds_in_shadow)
    return atomic_load_explicit(&u->mapped[index], memory_order_acquire) == 0;
  return atomic_compare_exchange_strong_explicit(&u->mapped[index], &state, 2, memory_order_acq_rel,
                                                 memory_order_acquire);
}

static void back_off(void) {
  struct timespec pause = {0, 50 * 1000};
  nanosleep(&pause, NULL);
}

/* Maps `count` built pages at dst; pages somebody mapped first are skipped. Marks them all
 * mapped. Returns the pages this call mapped. */
static size_t map_run(ugc_update_pages *u, size_t first_page, uintptr_t dst, const char *built,
                      size_t count) {
  size_t mapped_here = 0, at = 0;
  while (at < count) {
    size_t done = 0;
    ugc_map_result r =
        u->mapper.map(u->mapper.backend, dst + at * UGC_PAGE_SIZE, built + at * UGC_PAGE_SIZE,
                      (count - at) * UGC_PAGE_SIZE, &done);
    size_t pages = r == UGC_MAP_OK ? count - at : done / UGC_PAGE_SIZE;
    mapped_here += pages;
    at += pages;
    if (r == UGC_MAP_EXISTS)
      at++; /* somebody else's identical copy */
    else if (r == UGC_MAP_RETRY) {
      atomic_fetch_add_explicit(&u->map_retries, 1, memory_order_relaxed);
      back_off();
    } else if (r == UGC_MAP_FAILED)
      abort(); /* reported by the backend: a hole nothing could fill */
  }
  for (size_t i = 0; i < count; i++)
    atomic_store_explicit(&u->mapped[first_page + i], 1, memory_order_release);
  return mapped_here;
}

int ugc_update_pages_resolve(ugc_update_pages *u, uintptr_t addr, void *page_buffer) {
  atomic_fetch_add(&u->resolvers, 1);
  int result = -1;
  if (atomic_load(&u->active)) {
    ugc_update_range *range = range_of(u, addr);
    if (range && range->is_protected) {
      uintptr_t page = addr & ~(uintptr_t)(UGC_PAGE_SIZE - 1);
      size_t index = range->first_page + (page - range->start) / UGC_PAGE_SIZE;
      if (claim_page(u, index)) {
        char *out = build_target(u, range, page, page_buffer);
        build_page(u, range, page, out, false);
        if (map_run(u, index, page, out, 1))
          atomic_fetch_add_explicit(&u->pages_by_mutator, 1, memory_order_relaxed);
      } else {
        /* Claimed by another builder (in the shadow only): it maps it without waiting for
         * anybody, so this wait ends. */
        while (atomic_load_explicit(&u->mapped[index], memory_order_acquire) != 1)
          sched_yield();
      }
      result = 0;
    }
  }
  atomic_fetch_sub(&u->resolvers, 1);
  return result;
}

void ugc_update_pages_gc_work(ugc_update_pages *u, void *batch) {
  if (!atomic_load_explicit(&u->active, memory_order_acquire))
    return;
  char *buffer = batch;
  for (;;) {
    size_t first =
        atomic_fetch_add_explicit(&u->next_page, UGC_CONCURRENT_BATCH_PAGES, memory_order_relaxed);
    if (first >= u->page_count)
      return;
    size_t end = first + UGC_CONCURRENT_BATCH_PAGES;
    if (end > u->page_count)
      end = u->page_count;
    /* Runs of unmapped pages of one range, each mapped with one call. */
    size_t page = first;
    while (page < end) {
      if (atomic_load_explicit(&u->mapped[page], memory_order_acquire)) {
        page++;
        continue;
      }
      ugc_update_range *range = range_of_page(u, page);
      size_t range_end = range->first_page + range->bytes / UGC_PAGE_SIZE;
      size_t run = 0;
      uintptr_t dst = range->start + (page - range->first_page) * UGC_PAGE_SIZE;
      char *out = build_target(u, range, dst, buffer);
      while (page + run < end && page + run < range_end && claim_page(u, page + run)) {
        uintptr_t at = dst + run * UGC_PAGE_SIZE;
        build_page(u, range, at, out + run * UGC_PAGE_SIZE, false);
        run++;
      }
      if (!run) { /* claimed by a fault meanwhile */
        page++;
        continue;
      }
      size_t mapped = map_run(u, page, dst, out, run);
      atomic_fetch_add_explicit(&u->pages_by_gc, mapped, memory_order_relaxed);
      page += run;
    }
  }
}

void ugc_update_pages_pause_begin(ugc_update_pages *u) {
  if (u->protector.forget_ended)
    u->protector.forget_ended(u->protector.backend);
}

void ugc_update_pages_finish(ugc_update_pages *u) {
  if (!atomic_load(&u->active))
    return;
  /* Pages nobody built (no GC thread ran this job) are built here. */
  for (size_t page = 0; page < u->page_count; page++) {
    if (!claim_page(u, page)) {
      while (atomic_load_explicit(&u->mapped[page], memory_order_acquire) != 1)
        sched_yield(); /* a fault's claim (in the shadow only) */
      continue;
    }
    char buffer[UGC_PAGE_SIZE] __attribute__((aligned(64)));
    ugc_update_range *range = range_of_page(u, page);
    uintptr_t at = range->start + (page - range->first_page) * UGC_PAGE_SIZE;
    char *out = build_target(u, range, at, buffer);
    build_page(u, range, at, out, false);
    atomic_fetch_add_explicit(&u->pages_by_gc, map_run(u, page, at, out, 1), memory_order_relaxed);
  }
  /* Every page is mapped: a fault callback still running only finds EEXIST. Wait for it to
   * leave before the shadows it may read go. */
  atomic_store(&u->active, false);
  while (atomic_load(&u->resolvers))
    sched_yield();
  for (size_t i = 0; i < u->count; i++) {
    ugc_update_range *range = &u->ranges[i];
    if (!range->is_protected)
      continue;
    u->protector.unprotect(u->protector.backend, range->start, range->bytes, range->handle);
    release_shadow(u, range);
    range->is_protected = false;
  }
}
