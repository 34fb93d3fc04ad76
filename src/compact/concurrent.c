/* Concurrent compaction driver: claims, builds and maps to-space pages for GC threads and
 * faulting threads. The idea and the rules are drawn in compact/concurrent.h. */
#include "compact/concurrent.h"
#include "compact/eexist.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "os/time.h"
#include "runtime/histogram.h"

/* A failure to map a page leaves a hole that every later access would fault on forever:
 * there is no correct way to continue. The message must be written without stdio, since
 * this may run in a signal handler. */
static void __attribute__((noreturn)) concurrent_fatal(const char *message) {
  static const char prefix[] = "uffdgc: fatal: concurrent compaction: ";
  ssize_t ignored = write(STDERR_FILENO, prefix, sizeof prefix - 1);
  ignored = write(STDERR_FILENO, message, strlen(message));
  ignored = write(STDERR_FILENO, "\n", 1);
  (void)ignored;
  abort();
}

static inline void add(_Atomic uint64_t *counter, uint64_t value) {
  atomic_fetch_add_explicit(counter, value, memory_order_relaxed);
}

/* After a transient mapping failure (UGC_MAP_RETRY): sleeps 10 us, doubling up to 1 ms, and
 * says once per process when a thread has been retrying for about a second. Memory comes
 * back as from-space is released and as the cgroup reclaims, so the retry never gives up:
 * giving up would leave a hole. Async-signal-safe. */
static void back_off(ugc_concurrent *c, unsigned *attempt) {
  static _Atomic bool warned;
  add(&c->counters.map_retries, 1);
  unsigned shift = *attempt < 7 ? *attempt : 7;
  struct timespec pause = {.tv_sec = 0, .tv_nsec = (long)(10000u << shift)};
  nanosleep(&pause, NULL);
  if (++*attempt == 1000 && !atomic_exchange(&warned, true)) {
    static const char message[] =
        "uffdgc: warning: concurrent compaction: mapping a page keeps failing with a transient "
        "error (ENOMEM: a memory cgroup limit?); still retrying\n";
    ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
    (void)ignored;
  }
}

void ugc_concurrent_init(ugc_concurrent *c) {
  memset(c, 0, sizeof *c);
  pthread_mutex_init(&c->release_lock, NULL);
}

int ugc_concurrent_begin(ugc_concurrent *c, const ugc_compact_plan *plan, intptr_t from_delta,
                         size_t registered_bytes, const ugc_page_mapper *mapper,
                         ugc_histogram *stall) {
  if (ugc_page_states_alloc(&c->states, plan->page_count) != 0)
    return -1;
  c->plan = plan;
  c->from_delta = from_delta;
  c->space_base = plan->space_base;
  c->registered_bytes = registered_bytes;
  c->mapper = *mapper;
  c->stall = stall;
  c->started_ns = ugc_now_ns();
  atomic_store_explicit(&c->done_ns, c->started_ns, memory_order_relaxed);
  atomic_store_explicit(&c->next_page, 0, memory_order_relaxed);
  atomic_store_explicit(&c->waiters, 0, memory_order_relaxed);
  atomic_store_explicit(&c->helpers_active, 0, memory_order_relaxed);
  c->watermark_page = 0;
  c->released_upto = plan->space_base;
  memset(&c->counters, 0, sizeof c->counters);
  return 0;
}

void ugc_concurrent_fork_child(ugc_concurrent *c) {
  pthread_mutex_init(&c->release_lock, NULL);
}

void ugc_concurrent_destroy(ugc_concurrent *c) {
  ugc_page_states_free(&c->states);
  pthread_mutex_destroy(&c->release_lock);
}

/* Maps the pages [first, first + count), built at `src`, with `map` (a copy) or, when
 * `move`, with mapper.move (src goes away). A page of ours that turns out to be mapped
 * already was mapped by a helper (same content: skip it). Nobody else can map it: the
 * backend dropped whatever a stray access mapped before the registration, in the pause.
 * Anything else is a bug that would lose writes. Does not change the page states. */
static void map_span(ugc_concurrent *c, size_t first, const void *src, size_t count, bool move) {
  const char *buffer = src;
  uintptr_t dst = c->space_base + first * UGC_PAGE_SIZE;
  size_t bytes = count * UGC_PAGE_SIZE, offset = 0;
  unsigned attempt = 0;
  uint64_t t0 = ugc_now_ns();
  while (offset < bytes) {
    size_t done = 0;
    ugc_map_result result;
    if (move) {
      add(&c->counters.move_calls, 1);
      result = c->mapper.move(c->mapper.backend, dst + offset, (void *)(buffer + offset),
                              bytes - offset, &done);
    } else {
      add(&c->counters.map_calls, 1);
      result =
          c->mapper.map(c->mapper.backend, dst + offset, buffer + offset, bytes - offset, &done);
    }
    if (result == UGC_MAP_OK) {
      offset = bytes;
      break;
    }
    if (result == UGC_MAP_FAILED)
      concurrent_fatal("mapping a to-space page failed (see the message above)");
    offset += done;
    if (result == UGC_MAP_RETRY) {
      back_off(c, &attempt);
      continue;
    }
    size_t page = first + offset / UGC_PAGE_SIZE;
    while (!ugc_page_helped(&c->states, page) && atomic_load(&c->helpers_active))
      sched_yield(); /* a helper may have mapped it and not said so yet */
    if (!ugc_page_helped(&c->states, page) && move &&
        ugc_eexist_moved_anyway(c, dst + offset, buffer + offset)) {
      offset += UGC_PAGE_SIZE; /* it is ours: the kernel moved it */
      continue;
    }
    if (!ugc_page_helped(&c->states, page))
      ugc_eexist_unexplained(c, page, buffer + offset, move);
    offset += UGC_PAGE_SIZE; /* a waiter built and mapped the same content: skip it */
  }
  add(&c->counters.map_ns, ugc_now_ns() - t0);
  if (!move)
    add(&c->counters.bytes_copied, bytes);
}

void ugc_concurrent_map_built(ugc_concurrent *c, size_t first, const void *built, size_t count) {
  map_span(c, first, built, count, false);
  for (size_t i = 0; i < count; i++)
    ugc_page_set(&c->states, first + i, UGC_PAGE_MAPPED);
}

/* ---- moving mappers: in-place and recycled pages (see ugc_page_mapper) ------------------ */

static uintptr_t page_address(const ugc_concurrent *c, size_t page) {
  return c->space_base + page * UGC_PAGE_SIZE;
}

/* Untouched spans (compact.h) never left the heap and are never built: no thread claims
 * their pages, and their states stay UNPROCESSED (setting them MAPPED would cost the pause a
 * store per page). The few places that walk pages skip them with these two. */

/* The page after the untouched span holding `page`, or `page` itself when none holds it. */
static size_t past_untouched(const ugc_concurrent *c, size_t page) {
  const ugc_untouched_span *span = ugc_compact_untouched_at(c->plan, page_address(c, page));
  return span ? (span->end - c->space_base) / UGC_PAGE_SIZE : page;
}

/* The first page of the first untouched span at or after `page`, or SIZE_MAX. */
static size_t next_untouched(const ugc_concurrent *c, size_t page) {
  uintptr_t start = ugc_compact_next_untouched(c->plan, page_address(c, page));
  return start == UINTPTR_MAX ? SIZE_MAX : (start - c->space_base) / UGC_PAGE_SIZE;
}

/* Whether `p` lies in from-space (an in-place or recycled page) rather than a buffer. */
static bool in_from_space(const ugc_concurrent *c, const void *p) {
  uintptr_t from_base = c->space_base + (uintptr_t)c->from_delta;
  return (uintptr_t)p - from_base < c->plan->old_top - c->space_base;
}

/* Pages whose build may read a dense page's from-space copy besides their own: the dense
 * pages and the first slid page (a live object may straddle dense_end). */
static bool reads_dense_from_space(const ugc_concurrent *c, size_t page) {
  return page_address(c, page) <= c->plan->dense_end;
}

/* With a moving mapper, the from-space page that slid page `page` is, unchanged (a
 * whole-page slide: compact.h), or NULL. */
static char *whole_source(const ugc_concurrent *c, size_t page) {
  const ugc_compact_plan *plan = c->plan;
  if (!c->mapper.move || !plan->whole_pages || page_address(c, page) < plan->dense_end)
    return NULL;
  uint32_t from = plan->page_whole_from[page];
  if (!from)
    return NULL;
  return (char *)(plan->space_base + (uintptr_t)(from - 1) * UGC_PAGE_SIZE +
                  (uintptr_t)c->from_delta);
}

/* Whether a late owner of `page` may be helped: not when its build is in place, nor when
 * it may read an in-place page that has been moved away meanwhile, nor when it is slid
 * whole (its build would read the page before it in from-space, itself maybe moved). */
static bool may_help(const ugc_concurrent *c, size_t page) {
  return !c->mapper.move || (!reads_dense_from_space(c, page) && !whole_source(c, page));
}

/* Where the owner of `page` builds it: in place (a dense page, moving mapper), in a
 * recycled from-space page (GC threads only), or else in `slot` (a buffer). A faulting
 * thread copies its slid page from its buffer: its one page is not worth a wait for the
 * backend's MOVE lock (backend/move.c), and GC threads keep the recycled pages contiguous. */
static char *build_place(ugc_concurrent *c, size_t page, char *slot, bool may_recycle) {
  if (c->mapper.build_base) /* in-place building: the page's own place in the alias view */
    return c->mapper.build_base + page * UGC_PAGE_SIZE;
  if (!c->mapper.move)
    return slot;
  char *whole = whole_source(c, page);
  if (whole) /* nothing to build: the old page is moved as it is */
    return whole;
  uintptr_t address = page_address(c, page);
  if (address < c->plan->dense_end)
    return (char *)(address + (uintptr_t)c->from_delta);
  if (!may_recycle)
    return slot;
  void *recycled = c->mapper.recycled_page(c->mapper.backend);
  return recycled ? recycled : slot;
}

/* Whether a later page still has to read dense page `page`'s from-space copy: the header
 * of an object that starts in it and straddles into that page (page_first_object). A page
 * whose build is done (BUILT or later; nobody helps these pages) reads it no more. */
static bool read_later(const ugc_concurrent *c, size_t page) {
  uintptr_t lo = page_address(c, page), hi = lo + UGC_PAGE_SIZE;
  for (size_t later = page + 1; later < c->states.count; later++) {
    uintptr_t first = c->plan->page_first_object[later];
    if (first < lo || first >= hi)
      return false;
    if (later != past_untouched(c, later)) /* never built: it reads nothing */
      continue;
    if (ugc_page_get(&c->states, later) < UGC_PAGE_BUILT)
      return true;
  }
  return false;
}

/* Maps the pages [first, first + count) that the owner built at `area`, and marks them
 * MAPPED. From-space pages are moved, except in-place pages a later page still reads
 * (copied: their from-space copy stays); buffer pages are copied. */
static void map_owned(ugc_concurrent *c, size_t first, char *area, size_t count) {
  if (!c->mapper.move || !in_from_space(c, area)) {
    ugc_concurrent_map_built(c, first, area, count);
    return;
  }
  bool in_place = page_address(c, first) < c->plan->dense_end;
  /* The caller's runs are of one kind: in place, slid whole or recycled. */
  _Atomic uint64_t *kind = in_place                 ? &c->counters.pages_in_place
                           : whole_source(c, first) ? &c->counters.pages_slid_whole
                                                    : &c->counters.pages_recycled;
  for (size_t i = 0; i < count;) {
    bool copy = in_place && read_later(c, first + i);
    size_t run = 1;
    while (i + run < count && (in_place && read_later(c, first + i + run)) == copy)
      run++;
    map_span(c, first + i, area + i * UGC_PAGE_SIZE, run, !copy);
    if (!copy)
      add(kind, run);
    i += run;
  }
  for (size_t i = 0; i < count; i++)
    ugc_page_set(&c->states, first + i, UGC_PAGE_MAPPED);
}

static void map_zero_page(ugc_concurrent *c, uintptr_t page_address) {
  add(&c->counters.zero_calls, 1);
  ugc_map_result result;
  unsigned attempt = 0;
  while ((result = c->mapper.map_zero(c->mapper.backend, page_address)) == UGC_MAP_RETRY)
    back_off(c, &attempt);
  if (result == UGC_MAP_FAILED)
    concurrent_fatal("mapping a zero page past the compacted data failed");
  if (result == UGC_MAP_OK)
    add(&c->counters.zero_pages, 1);
}

/* Records that a page was mapped now: the compaction ends with the last one. */
static void note_mapped_now(ugc_concurrent *c) {
  uint64_t now = ugc_now_ns();
  uint64_t done = atomic_load_explicit(&c->done_ns, memory_order_relaxed);
  while (now > done && !atomic_compare_exchange_weak_explicit(
                           &c->done_ns, &done, now, memory_order_relaxed, memory_order_relaxed))
    ;
}

static void build_one(ugc_concurrent *c, size_t page, void *out) {
  if ((char *)out == whole_source(c, page))
    return; /* slid whole: never read nor written */
  uint64_t t0 = ugc_now_ns();
  if (c->mapper.is_own_source && c->mapper.is_own_source(c->mapper.backend, page)) {
    ugc_compact_update_page_in_place(c->plan, page, c->from_delta, out);
    add(&c->counters.pages_updated_only, 1);
  } else {
    ugc_compact_build_page(c->plan, page, c->from_delta, out);
  }
  add(&c->counters.build_ns, ugc_now_ns() - t0);
}

/* In-place building: where page `page` is built (the alias view). */
static inline char *in_place(const ugc_concurrent *c, size_t page) {
  return c->mapper.build_base + page * UGC_PAGE_SIZE;
}

/* In-place building: extends the run [*first, *first + *count), owned by the caller, down
 * to the nearest MAPPED page: claims and builds the unclaimed pages below it, and waits for
 * a page claimed by somebody else (it is lower: see concurrent.h). */
static void extend_down(ugc_concurrent *c, size_t *first, size_t *count,
                        enum ugc_page_claimer claimer) {
  add(&c->counters.runs_extended, 1);
  while (*first > 0) {
    size_t below = *first - 1;
    if (!ugc_page_try_claim(&c->states, below, claimer)) {
      ugc_page_wait_mapped(&c->states, below);
      return;
    }
    build_one(c, below, in_place(c, below));
    ugc_page_set(&c->states, below, UGC_PAGE_MAPPING);
    *first = below;
    ++*count;
  }
}

/* In-place building: makes the built run [first, first + count) accessible and marks it
 * MAPPED. A run is extended downwards first when the backend asks for merged runs, or
 * after a transient failure (the backend may be out of mappings: an extended run no longer
 * splits one). Returns the number of pages published (the run may have grown). */
static size_t publish_in_place(ugc_concurrent *c, size_t first, size_t count,
                               enum ugc_page_claimer claimer) {
  bool extended = false;
  if (c->mapper.merge_runs && c->mapper.merge_runs(c->mapper.backend)) {
    extend_down(c, &first, &count, claimer);
    extended = true;
  }
  unsigned attempt = 0;
  uint64_t t0 = ugc_now_ns();
  for (;;) {
    size_t done = 0;
    add(&c->counters.map_calls, 1);
    ugc_map_result result = c->mapper.map(c->mapper.backend, c->space_base + first * UGC_PAGE_SIZE,
                                          in_place(c, first), count * UGC_PAGE_SIZE, &done);
    if (result == UGC_MAP_OK || result == UGC_MAP_EXISTS)
      break;
    if (result == UGC_MAP_FAILED)
      concurrent_fatal("publishing a to-space page built in place failed (see above)");
    if (!extended) {
      extend_down(c, &first, &count, claimer);
      extended = true;
    } else {
      back_off(c, &attempt);
    }
  }
  add(&c->counters.map_ns, ugc_now_ns() - t0);
  add(&c->counters.bytes_copied, count * UGC_PAGE_SIZE);
  for (size_t i = 0; i < count; i++)
    ugc_page_set(&c->states, first + i, UGC_PAGE_MAPPED);
  return count;
}

static uint64_t clock_ns(void) {
  return ugc_now_ns();
}

/* The owner of `page` is late (likely descheduled): build the page here and try to map it.
 * If the owner (or another helper) mapped it first, EEXIST: wait for MAPPED as usual. */
static void help_owner(ugc_concurrent *c, size_t page, char *buffer) {
  /* Announce ourselves before the last look at the state: ugc_concurrent_finish waits for
   * helpers once every page is MAPPED, and then takes from-space away. A helper that it
   * did not see will see MAPPED here (both sides sequentially consistent). */
  atomic_fetch_add(&c->helpers_active, 1);
  atomic_thread_fence(memory_order_seq_cst);
  if (ugc_page_get(&c->states, page) != UGC_PAGE_MAPPED) {
    build_one(c, page, buffer);
    size_t done = 0;
    unsigned attempt = 0;
    ugc_map_result result;
    for (;;) {
      add(&c->counters.map_calls, 1);
      result = c->mapper.map(c->mapper.backend, c->space_base + page * UGC_PAGE_SIZE, buffer,
                             UGC_PAGE_SIZE, &done);
      if (result != UGC_MAP_RETRY)
        break;
      back_off(c, &attempt);
    }
    if (result == UGC_MAP_FAILED)
      concurrent_fatal("mapping a to-space page for a late owner failed");
    if (result == UGC_MAP_OK) { /* the owner will find EEXIST and mark the page MAPPED */
      ugc_page_mark_helped(&c->states, page);
      add(&c->counters.pages_helped, 1);
      atomic_fetch_sub(&c->helpers_active, 1);
      return;
    }
    /* EEXIST: the owner (or another helper) was first (our copy may have read released
     * from-space: dropped). The page is in place, and the faulting access can go on: the
     * owner's MAPPED may come much later (descheduled between its ioctl and the state
     * change: milliseconds on a busy machine), and waiting for it bounded no stall. */
    atomic_fetch_sub(&c->helpers_active, 1);
    return;
  }
  atomic_fetch_sub(&c->helpers_active, 1);
  ugc_page_wait_mapped(&c->states, page);
}

size_t ugc_concurrent_build_held_in_place(ugc_concurrent *c) {
  const ugc_compact_plan *plan = c->plan;
  uint64_t t0 = ugc_now_ns();
  size_t built = 0;
  for (size_t r = 0; r < plan->held_count; r++)
    for (uintptr_t page = plan->held[r].start; page < plan->held[r].end; page += UGC_PAGE_SIZE) {
      size_t index = (page - c->space_base) / UGC_PAGE_SIZE;
      if (index >= c->states.count || !ugc_page_try_claim(&c->states, index, UGC_PAGE_BY_GC))
        continue; /* past the data (held spans end below new_top: never) */
      /* Fillers and reference slots only, reading headers and slots in from-space (the
       * hand-off copied the page there): a system call may be writing the pinned bytes. */
      ugc_compact_update_page_in_place(plan, index, c->from_delta, (void *)page);
      ugc_page_set(&c->states, index, UGC_PAGE_MAPPED);
      built++;
    }
  add(&c->counters.build_ns, ugc_now_ns() - t0);
  add(&c->counters.pages_held, built);
  add(&c->counters.pages_by_gc, built);
  if (built)
    note_mapped_now(c);
  return built;
}

int ugc_concurrent_resolve_fault(ugc_concurrent *c, uintptr_t addr, void *page_buffer) {
  uintptr_t offset = addr - c->space_base;
  if (offset >= c->registered_bytes)
    return -1;
  uint64_t t0 = ugc_now_ns();
  size_t page = offset / UGC_PAGE_SIZE;
  if (page != past_untouched(c, page)) {
    /* Its page never left the heap: only a page dropped behind our back (MADV_DONTNEED by
     * someone else) faults here, and rebuilding it is impossible (from-space has no copy). */
    return -1;
  } else if (page >= c->states.count) {
    map_zero_page(c, c->space_base + page * UGC_PAGE_SIZE);
  } else if (c->mapper.build_base && ugc_page_try_claim(&c->states, page, UGC_PAGE_BY_MUTATOR)) {
    build_one(c, page, in_place(c, page));
    ugc_page_set(&c->states, page, UGC_PAGE_MAPPING);
    add(&c->counters.pages_by_mutator, publish_in_place(c, page, 1, UGC_PAGE_BY_MUTATOR));
    note_mapped_now(c);
  } else if (c->mapper.build_base) {
    uint64_t w0 = ugc_now_ns(); /* exclusive claims: wait for the owner, never help */
    atomic_fetch_add_explicit(&c->waiters, 1, memory_order_relaxed);
    ugc_page_wait_mapped(&c->states, page);
    atomic_fetch_sub_explicit(&c->waiters, 1, memory_order_relaxed);
    add(&c->counters.wait_ns, ugc_now_ns() - w0);
  } else if (ugc_page_try_claim(&c->states, page, UGC_PAGE_BY_MUTATOR)) {
    char *area = build_place(c, page, page_buffer, false);
    build_one(c, page, area);
    ugc_page_set(&c->states, page, UGC_PAGE_MAPPING);
    map_owned(c, page, area, 1);
    add(&c->counters.pages_by_mutator, 1);
    note_mapped_now(c);
  } else {
    uint64_t w0 = ugc_now_ns();
    atomic_fetch_add_explicit(&c->waiters, 1, memory_order_relaxed);
    if (!may_help(c, page))
      ugc_page_wait_mapped(&c->states, page);
    else if (!ugc_page_wait_mapped_for(&c->states, page, UGC_CONCURRENT_HELP_AFTER_NS, clock_ns))
      help_owner(c, page, page_buffer);
    atomic_fetch_sub_explicit(&c->waiters, 1, memory_order_relaxed);
    add(&c->counters.wait_ns, ugc_now_ns() - w0);
  }
  if (c->stall)
    ugc_histogram_record_atomic(c->stall, ugc_now_ns() - t0);
  return 0;
}

/* Advances the watermark over MAPPED pages and releases from-space below the first object
 * of the first page not yet mapped, once a large enough chunk has drained. Only one thread
 * at a time does it; the others skip (trylock). */
static void release_drained_from_space(ugc_concurrent *c) {
  if (pthread_mutex_trylock(&c->release_lock) != 0)
    return;
  const ugc_compact_plan *plan = c->plan;
  size_t page = c->watermark_page;
  while (page < c->states.count) {
    size_t past = past_untouched(c, page); /* a span counts as mapped */
    if (past == page && ugc_page_get(&c->states, page) != UGC_PAGE_MAPPED)
      break;
    page = past == page ? page + 1 : past;
  }
  c->watermark_page = page;
  /* The builds still to come read from-space from the first object of page `page` on, and
   * a dense-prefix page also reads its own old bytes (its first live object may start
   * later in the page, or be absent: 0). */
  uintptr_t needed_from = plan->old_top;
  if (page < c->states.count) {
    uintptr_t page_start = plan->space_base + page * UGC_PAGE_SIZE;
    uintptr_t first = plan->page_first_object[page];
    needed_from = first && first < page_start ? first : page_start;
    if (page_start >= plan->dense_end && first)
      needed_from = first;
  }
  needed_from &= ~(uintptr_t)(UGC_PAGE_SIZE - 1);
  /* A helper reads the from-space of a page that was not MAPPED when it looked (help_owner);
   * the owner may have mapped it since, and the scan above may have passed it. Releasing
   * (or recycling: backend/move.c) that from-space now would feed the helper's build
   * garbage headers, and a build from garbage sizes writes outside its page buffer (a
   * fault thread's stack was zeroed that way). Skip this round while a helper is at work:
   * a helper that announces itself after this load finds every page the scan passed
   * MAPPED and builds nothing (both sides sequentially consistent). */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load(&c->helpers_active)) {
    add(&c->counters.release_deferred, 1);
    pthread_mutex_unlock(&c->release_lock);
    return;
  }
  size_t chunk =
      c->mapper.release_chunk_bytes ? c->mapper.release_chunk_bytes : UGC_CONCURRENT_RELEASE_CHUNK;
  if (needed_from > c->released_upto && needed_from - c->released_upto >= chunk) {
    uint64_t t0 = ugc_now_ns();
    c->mapper.release_from(c->mapper.backend, c->released_upto + (uintptr_t)c->from_delta,
                           needed_from - c->released_upto);
    add(&c->counters.release_calls, 1);
    add(&c->counters.release_ns, ugc_now_ns() - t0);
    c->released_upto = needed_from;
  }
  pthread_mutex_unlock(&c->release_lock);
}

/* A GC thread maps the run of pages it built (see ugc_concurrent_gc_work). */
static void flush_run(ugc_concurrent *c, size_t first, char *area, size_t count) {
  for (size_t i = 0; i < count; i++)
    ugc_page_set(&c->states, first + i, UGC_PAGE_MAPPING);
  if (c->mapper.build_base) {
    add(&c->counters.pages_by_gc, publish_in_place(c, first, count, UGC_PAGE_BY_GC));
    return;
  }
  map_owned(c, first, area, count);
  add(&c->counters.pages_by_gc, count);
}

/* ---- whole huge pages (a moving mapper) ---------------------------------------------
 * A 2 MiB-aligned chunk of to-space whose 512 pages all lie below dense_end is, in
 * from-space, one 2 MiB region at the same offset (from_delta keeps the alignment), often
 * one transparent huge page. A GC thread takes such a chunk from the cursor as one piece,
 * updates its pages in place, and moves it with one MOVE of 2 MiB: the kernel then moves
 * the huge page's PMD instead of splitting it (a MOVE of part of it splits it).
 *
 *   from-space  |<------ chunk: 512 dense pages, updated in place ------>| P ...
 *                \_____________________ one MOVE of 2 MiB _____________/
 *   to-space    |<------ the same huge page, at its heap address ------->| P ...
 *
 * An object that starts in the chunk and straddles into page P (and on) keeps its header's
 * page readable until those pages are built (read_later): the chunk is then "pending" and
 * moved as soon as they are. Its thread takes the work at P itself when nobody has (P is
 * then the next page it builds), and otherwise waits a little for P's owner. A waiting
 * faulting thread ends the wait at once, as it ends any run (map what is built so far):
 * the chunk then goes as smaller runs and the kernel splits its huge page.
 *
 * A 2 MiB-aligned chunk of slid pages (above dense_end, no held span, none slid whole) is
 * built into 512 recycled pages that are one 2 MiB-aligned drained region of from-space
 * (mapper.recycled_huge), and moved the same way:
 *
 *   from-space  ... drained, free ...|<- region R: 512 free pages ->| ... still read ...
 *                                      built: the chunk's 512 pages
 *                                     \______ one MOVE of 2 MiB ___/
 *   to-space    |<- slid chunk at its 2 MiB-aligned heap address -->|
 *
 * No later build reads R (it is drained), so such a chunk never waits; objects straddling
 * its ends are built from from-space by each page's own build, as for any slid page. When
 * no such region is free yet (early in the compaction), or a faulting thread has claimed a
 * page of the chunk already, the chunk is built as batches. A faulting thread that claims
 * a page of it later, or a helper, maps that page first: the chunk then goes as smaller
 * MOVEs (a helped page is skipped on EEXIST, as in any run). */

#define HUGE_CHUNK_PAGES ((size_t)(2u << 20) / UGC_PAGE_SIZE)
/* How long a pending chunk waits for the owner of the page that reads it (then it is
 * mapped as smaller runs). */
#define HUGE_PENDING_WAIT_NS ((uint64_t)200 * 1000)

/* Whether the slid pages [page, page + 512) can be built into one recycled region: no page
 * of them is held (mapped in the pause) or slid whole (never built). */
static bool slid_chunk_recyclable(const ugc_concurrent *c, size_t page) {
  const ugc_compact_plan *plan = c->plan;
  uintptr_t address = page_address(c, page), end = address + ((uintptr_t)2 << 20);
  if (!c->mapper.recycled_huge || address < plan->dense_end ||
      ugc_compact_next_held(plan, address) < end)
    return false;
  if (plan->whole_pages)
    for (size_t p = page; p < page + HUGE_CHUNK_PAGES; p++)
      if (plan->page_whole_from[p])
        return false;
  return true;
}

/* Whether the GC thread that reaches page `page` takes [page, page + 512) as one chunk. */
static bool huge_chunk_at(const ugc_concurrent *c, size_t page) {
  const uintptr_t huge = (uintptr_t)2 << 20;
  if (!c->mapper.move || c->mapper.build_base || page + HUGE_CHUNK_PAGES > c->states.count)
    return false;
  uintptr_t address = page_address(c, page);
  if (address % huge)
    return false;
  if (address + huge <= c->plan->dense_end)
    return (address + (uintptr_t)c->from_delta) % huge == 0;
  return slid_chunk_recyclable(c, page);
}

/* Takes the next work from the shared cursor: a huge chunk or a batch, [*first, *end).
 * With `only_at`, only if the cursor is at *first (nobody took it yet). Returns false when
 * there is none. */
static bool take_work(ugc_concurrent *c, size_t *first, size_t *end, bool only_at) {
  size_t at = only_at ? *first : atomic_load_explicit(&c->next_page, memory_order_relaxed);
  for (;;) {
    if (at >= c->states.count)
      return false;
    /* Untouched spans are stepped over; work stops short of the next one. */
    size_t skip = past_untouched(c, at);
    size_t step = skip != at             ? skip - at
                  : huge_chunk_at(c, at) ? HUGE_CHUNK_PAGES
                                         : UGC_CONCURRENT_BATCH_PAGES;
    size_t span = skip != at ? SIZE_MAX : next_untouched(c, at);
    if (span != SIZE_MAX && at + step > span)
      step = span - at;
    size_t expected = at;
    if (atomic_compare_exchange_weak_explicit(&c->next_page, &expected, at + step,
                                              memory_order_relaxed, memory_order_relaxed)) {
      if (skip != at) { /* nothing to build there: on to what follows */
        if (only_at)
          return false;
        at += step;
        continue;
      }
      *first = at;
      *end = at + step < c->states.count ? at + step : c->states.count;
      return true;
    }
    if (only_at && expected != at)
      return false;
    if (!only_at)
      at = expected;
  }
}

/* A huge chunk built whole whose move waits until no later page reads it. */
typedef struct huge_pending {
  size_t first, count; /* count 0: none */
  size_t reader;       /* the chunk's page whose from-space copy a later page reads */
} huge_pending;

/* The page of chunk [first, first + count) whose from-space copy a page after the chunk
 * still has to read (the header of an object straddling out of it), or SIZE_MAX. */
static size_t chunk_read_later(const ugc_concurrent *c, size_t first, size_t count) {
  size_t next = first + count;
  if (next >= c->states.count)
    return SIZE_MAX;
  uintptr_t header = c->plan->page_first_object[next];
  uintptr_t lo = page_address(c, first), hi = page_address(c, next);
  if (header < lo || header >= hi)
    return SIZE_MAX;
  size_t reader = (header - c->space_base) / UGC_PAGE_SIZE;
  return read_later(c, reader) ? reader : SIZE_MAX;
}

static bool someone_waits(const ugc_concurrent *c) {
  return atomic_load_explicit(&c->waiters, memory_order_relaxed) != 0;
}

/* Moves the pending chunk once nothing reads it any more, or at once with `now` (its
 * pages still read are copied then: map_owned). */
static void settle_pending(ugc_concurrent *c, huge_pending *pending, bool now) {
  if (!pending->count)
    return;
  if (!now && !someone_waits(c) && read_later(c, pending->reader))
    return;
  char *area = (char *)(page_address(c, pending->first) + (uintptr_t)c->from_delta);
  flush_run(c, pending->first, area, pending->count);
  pending->count = 0;
}

/* Waits a little for the pending chunk's reader to be built (its owner is at it), then
 * moves the chunk either way. */
static void finish_pending(ugc_concurrent *c, huge_pending *pending) {
  uint64_t start = ugc_now_ns();
  while (pending->count && read_later(c, pending->reader) && !someone_waits(c) &&
         ugc_now_ns() - start < HUGE_PENDING_WAIT_NS)
    sched_yield();
  settle_pending(c, pending, true);
}

/* Whether no page of [first, end) is claimed yet. A faulting thread that claimed one
 * (mutators reading ahead) maps it first, so the chunk could only go as smaller MOVEs, and
 * the region's page for it would be left unused: the chunk is built as batches instead. */
static bool untouched(const ugc_concurrent *c, size_t first, size_t end) {
  for (size_t page = first; page < end; page++)
    if (ugc_page_get(&c->states, page) != UGC_PAGE_UNPROCESSED)
      return false;
  return true;
}

/* Builds the pages [first, end) that this thread wins, mapping each contiguous run with
 * one call. A page a faulting thread claimed first ends the run, and so does a waiting
 * thread, and a page whose build place (buffer, in place, recycled) does not continue the
 * run's. A huge chunk of the dense prefix built whole may be left pending (see above); a
 * huge chunk of slid pages is built into a recycled region, or as batches without one. */
static void build_work(ugc_concurrent *c, char *buffer, size_t first, size_t end,
                       huge_pending *pending) {
  bool huge = end - first == HUGE_CHUNK_PAGES && huge_chunk_at(c, first);
  bool dense_huge = huge && page_address(c, first) < c->plan->dense_end;
  char *region = NULL; /* a slid chunk's recycled 2 MiB: page first + i is built at i */
  if (huge && !dense_huge) {
    region = untouched(c, first, end) ? c->mapper.recycled_huge(c->mapper.backend) : NULL;
    if (!region) {
      for (size_t batch = first; batch < end; batch += UGC_CONCURRENT_BATCH_PAGES)
        build_work(c, buffer, batch, batch + UGC_CONCURRENT_BATCH_PAGES, pending);
      return;
    }
  }
  size_t run_start = first, run_length = 0;
  char *run_area = buffer;
  bool run_whole = false;
  for (size_t page = first; page < end; page++) {
    bool won = ugc_page_try_claim(&c->states, page, UGC_PAGE_BY_GC);
    if (won) {
      /* A huge chunk's runs outgrow the batch buffer, but its pages are built in from-space
       * (in place, or in the region). */
      char *slot =
          run_length < UGC_CONCURRENT_BATCH_PAGES ? buffer + run_length * UGC_PAGE_SIZE : NULL;
      char *area =
          region ? region + (page - first) * UGC_PAGE_SIZE : build_place(c, page, slot, true);
      bool whole = area == whole_source(c, page);
      if (run_length && (area != run_area + run_length * UGC_PAGE_SIZE || whole != run_whole)) {
        flush_run(c, run_start, run_area, run_length);
        run_length = 0;
        if (area == slot)
          area = buffer;
      }
      if (run_length == 0) {
        run_start = page;
        run_area = area;
        run_whole = whole;
      }
      build_one(c, page, area);
      ugc_page_set(&c->states, page, UGC_PAGE_BUILT);
      run_length++;
    }
    bool waits = someone_waits(c);
    settle_pending(c, pending, waits);
    if (run_length && (!won || waits || page + 1 == end)) {
      size_t reader = SIZE_MAX;
      if (dense_huge && run_length == HUGE_CHUNK_PAGES && !waits)
        reader = chunk_read_later(c, run_start, run_length);
      if (reader == SIZE_MAX || pending->count) {
        flush_run(c, run_start, run_area, run_length);
      } else {
        *pending = (huge_pending){.first = run_start, .count = run_length, .reader = reader};
      }
      run_length = 0;
    }
  }
}

size_t ugc_concurrent_gc_work(ugc_concurrent *c, void *batch) {
  if (c->first_work)
    c->first_work(c->first_work_data, batch);
  huge_pending pending = {0};
  size_t first = 0, end = 0, taken_pages = 0;
  for (;;) {
    /* A pending chunk waits for the page right after it: this thread takes the work there
     * when nobody has, else that page's owner is building it (wait a little). */
    bool taken = false;
    if (pending.count) {
      first = pending.first + pending.count;
      taken = take_work(c, &first, &end, true);
      if (!taken)
        finish_pending(c, &pending);
    }
    if (!taken && !take_work(c, &first, &end, false))
      break;
    taken_pages += end - first;
    build_work(c, batch, first, end, &pending);
    release_drained_from_space(c);
  }
  finish_pending(c, &pending);
  note_mapped_now(c); /* this thread's last page: the end, unless a later one maps after */
  return taken_pages;
}

uint64_t ugc_concurrent_finish(ugc_concurrent *c) {
  uint64_t t0 = ugc_now_ns();
  for (size_t page = 0; page < c->states.count; page++)
    if (past_untouched(c, page) != page)
      page = past_untouched(c, page) - 1; /* never built, never waited for */
    else
      ugc_page_wait_mapped(&c->states, page);
  atomic_thread_fence(memory_order_seq_cst);
  while (atomic_load(&c->helpers_active)) /* still reading from-space */
    sched_yield();
  add(&c->counters.wait_ns, ugc_now_ns() - t0);
  return atomic_load_explicit(&c->done_ns, memory_order_relaxed) - c->started_ns;
}

void ugc_concurrent_clear_states(ugc_concurrent *c) {
  ugc_page_states_reset_for_next(&c->states);
}
