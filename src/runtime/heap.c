/* Heap creation and destruction, the process's list of heaps (for fork), types, errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "os/log.h"
#include "runtime/concurrent_mark.h"
#include "runtime/config.h"
#include "runtime/heap.h"

/* ---- errors ---- */

void ugc_set_error(ugc_error *error, ugc_error_code code, const char *fmt, ...) {
  if (!error)
    return;
  error->code = code;
  va_list args;
  va_start(args, fmt);
  ugc_format_message_v(error->message, sizeof error->message, fmt, args);
  va_end(args);
}

void ugc_misuse(const char *call, const char *reason) {
  fprintf(stderr, "uffdgc: %s: %s\n", call, reason);
  fflush(stderr);
  abort();
}

/* ---- the process's heaps, and fork ----
 * The prepare handler waits for any pause and any concurrent compaction to end and holds
 * every heap's locks (the backend's too) across fork(), so the child gets a complete,
 * consistent heap and no lock that a thread missing from the child holds. Condition
 * variables may count waiters that do not exist in the child (a later destroy would wait
 * for them): the child re-initialises them. */

static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static ugc_heap *heaps;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void) {
  pthread_mutex_lock(&heaps_lock);
  for (ugc_heap *heap = heaps; heap; heap = heap->next_heap) {
    ugc_cmark_fork_prepare(heap);
    pthread_mutex_lock(&heap->sp_lock);
    ugc_wait_pause_end_locked(heap, "fork");
    heap->backend->compact_wait(heap);
    pthread_mutex_lock(&heap->lock);
    /* The backend's locks before the events and statistics locks: a GC thread completing a
     * compaction holds the backend's wait lock while it takes those. */
    if (heap->backend->fork_prepare)
      heap->backend->fork_prepare(heap);
    pthread_mutex_lock(&heap->events.lock); /* a callback may run on another thread */
    pthread_mutex_lock(&heap->stats_lock);
  }
}

static void fork_parent(void) {
  for (ugc_heap *heap = heaps; heap; heap = heap->next_heap) {
    pthread_mutex_unlock(&heap->stats_lock);
    pthread_mutex_unlock(&heap->events.lock);
    if (heap->backend->fork_parent)
      heap->backend->fork_parent(heap);
    pthread_mutex_unlock(&heap->lock);
    pthread_mutex_unlock(&heap->sp_lock);
    ugc_cmark_fork_parent(heap);
  }
  pthread_mutex_unlock(&heaps_lock);
}

static void fork_child(void) {
  pthread_t self = pthread_self();
  for (ugc_heap *heap = heaps; heap; heap = heap->next_heap) {
    /* Only the forking thread exists here: the others must never hold up a pause. Their
     * rooted variables are forgotten: the C library hands their stacks to the next threads
     * the child creates (GC threads, the fault-handler thread), so the slots would soon
     * hold anything. */
    for (ugc_mutator *m = heap->mutators_head; m; m = m->next)
      if (!pthread_equal(m->thread, self)) {
        m->state = UGC_MUTATOR_GONE;
        m->fast.root_count = 0;
      }
    ugc_workers_after_fork_child(&heap->workers);
    pthread_mutex_unlock(&heap->stats_lock);
    pthread_mutex_unlock(&heap->events.lock);
    if (heap->backend->fork_child)
      heap->backend->fork_child(heap);
    pthread_cond_init(&heap->parked_cond, NULL);
    pthread_cond_init(&heap->resume_cond, NULL);
    pthread_mutex_unlock(&heap->lock);
    pthread_mutex_unlock(&heap->sp_lock);
    ugc_cmark_fork_child(heap);
  }
  pthread_mutex_unlock(&heaps_lock);
}

static void install_atfork(void) {
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- creation ---- */

ugc_heap *ugc_heap_create(const ugc_config *user_config, ugc_error *error) {
  ugc_config config;
  if (user_config)
    config = *user_config;
  else
    ugc_config_init(&config);
  if (ugc_config_resolve(&config, error) != 0)
    return NULL;
  pthread_once(&atfork_once, install_atfork);

  ugc_heap *heap = calloc(1, sizeof *heap);
  if (!heap) {
    ugc_set_error(error, UGC_ERR_NOMEM, "ugc_heap_create: out of memory");
    return NULL;
  }
  heap->config = config;
  heap->root_rule = (ugc_tag_rule){config.root_tag_mask, config.root_pointer_tag_mask,
                                   config.root_pointer_tag, config.root_reference_offset};
  snprintf(heap->delivery, sizeof heap->delivery, "%s", config.delivery);
  heap->config.delivery = heap->delivery;
  heap->config.backend = NULL; /* the caller's string may not outlive the heap */
  pthread_mutex_init(&heap->lock, NULL);
  pthread_mutex_init(&heap->sp_lock, NULL);
  pthread_mutex_init(&heap->stats_lock, NULL);
  ugc_events_init(&heap->events);
  pthread_cond_init(&heap->parked_cond, NULL);
  pthread_cond_init(&heap->resume_cond, NULL);
  ugc_workers_init(&heap->workers, config.gc_threads);
  heap->trigger_bytes = config.heap_initial;
  heap->stats.heap_max_bytes = config.heap_max;
  size_t tlab_limit = UGC_TLAB_BYTES - UGC_HEADER_BYTES;
  heap->small_limit = config.large_threshold < tlab_limit ? config.large_threshold : tlab_limit;
  if (config.check) /* no size passes the inline test: every allocation is checked */
    heap->small_limit = 0;

  int types_rc = ugc_type_table_init(&heap->types);
  if (types_rc != 0) {
    char why[320];
    ugc_describe_map_failure(why, sizeof why, ugc_type_table_bytes(), -types_rc);
    ugc_set_error(error, UGC_ERR_NOMEM, "ugc_heap_create: cannot map the type table: %s", why);
    goto fail;
  }
  if (ugc_moving_space_init(&heap->moving, config.heap_max, config.nonmoving_max, error) != 0)
    goto fail;
  if (ugc_nonmoving_init(&heap->nonmoving, heap->moving.nonmoving_base,
                         heap->moving.nonmoving_bytes,
                         ugc_alloc_size(config.large_threshold - 1)) != 0) {
    ugc_set_error(error, UGC_ERR_NOMEM, "ugc_heap_create: cannot set up the non-moving space");
    goto fail;
  }
  if (ugc_backend_select(heap, config.backend, error) != 0)
    goto fail;
  if (ugc_cmark_init(heap) != 0) {
    ugc_set_error(error, UGC_ERR_NOMEM, "ugc_heap_create: out of memory");
    ugc_cmark_destroy(heap);
    if (heap->backend->detach)
      heap->backend->detach(heap);
    goto fail;
  }
  ugc_kernel_access_report(heap);

  pthread_mutex_lock(&heaps_lock);
  heap->next_heap = heaps;
  heaps = heap;
  pthread_mutex_unlock(&heaps_lock);
  return heap;

fail:
  ugc_update_pages_destroy(&heap->update_pages);
  ugc_events_destroy(&heap->events);
  pthread_mutex_destroy(&heap->stats_lock);
  ugc_nonmoving_destroy(&heap->nonmoving);
  ugc_moving_space_destroy(&heap->moving);
  ugc_type_table_destroy(&heap->types);
  ugc_workers_destroy(&heap->workers);
  free(heap);
  return NULL;
}

void ugc_heap_destroy(ugc_heap *heap) {
  if (!heap)
    return;
  if (heap->mutators_head)
    ugc_misuse("ugc_heap_destroy", "mutators are still attached (detach every thread first)");
  pthread_mutex_lock(&heaps_lock);
  for (ugc_heap **link = &heaps; *link; link = &(*link)->next_heap)
    if (*link == heap) {
      *link = heap->next_heap;
      break;
    }
  pthread_mutex_unlock(&heaps_lock);
  ugc_cmark_destroy(heap);
  heap->backend->compact_wait(heap);
  if (heap->backend->detach)
    heap->backend->detach(heap);
  ugc_workers_destroy(&heap->workers);
  ugc_mutators_free_detached(heap);
  ugc_compact_plan_free(&heap->plan);
  ugc_update_pages_destroy(&heap->update_pages);
  ugc_large_destroy(&heap->large);
  ugc_nonmoving_destroy(&heap->nonmoving);
  ugc_moving_space_destroy(&heap->moving);
  ugc_type_table_destroy(&heap->types);
  free(heap->globals.slots);
  free(heap->weaks.slots);
  free(heap->globals.links);
  free(heap->weaks.links);
  ugc_addrmap_free(&heap->globals.where);
  ugc_addrmap_free(&heap->weaks.where);
  ugc_addrmap_free(&heap->identity);
  ugc_pins_free(&heap->pins);
  ugc_finalize_free(heap);
  free(heap->enumerators);
  free(heap->after_mark.hooks);
  free(heap->relocation.hooks);
  pthread_mutex_destroy(&heap->lock);
  pthread_mutex_destroy(&heap->sp_lock);
  pthread_mutex_destroy(&heap->stats_lock);
  ugc_events_destroy(&heap->events);
  pthread_cond_destroy(&heap->parked_cond);
  pthread_cond_destroy(&heap->resume_cond);
  free(heap);
}

const char *ugc_heap_backend(const ugc_heap *heap) {
  return heap->backend->name;
}

void ugc_heap_config(const ugc_heap *heap, ugc_config *config) {
  *config = heap->config; /* resolved at creation (runtime/config.c) */
  config->backend = heap->backend->name;
  config->huge_pages = heap->moving.huge_pages ? UGC_HUGE_PAGES_ON : UGC_HUGE_PAGES_OFF;
}

unsigned ugc_version(void) {
  return UGC_VERSION;
}

/* ---- types and objects ---- */

/* A cleared weak slot must not keep or point at anything: its value is never updated. */
static bool cleared_value_is_reference(const ugc_heap *heap, const ugc_type_desc *desc) {
  ugc_tag_rule rule = ugc_tag_rule_of(desc);
  uintptr_t ref = ugc_tag_reference(desc->cleared_value, &rule);
  return ref && ugc_heap_lookup(heap, ref) != UGC_REF_NONE;
}

ugc_type_id ugc_type_register(ugc_heap *heap, const ugc_type_desc *desc, ugc_error *error) {
  if (!heap) {
    ugc_set_error(error, UGC_ERR_INVALID, "ugc_type_register: heap is NULL");
    return 0;
  }
  /* sp_lock before the heap lock, and only outside a pause (see mutator.c). */
  pthread_mutex_lock(&heap->sp_lock);
  ugc_wait_pause_end_locked(heap, "ugc_type_register");
  pthread_mutex_lock(&heap->lock);
  ugc_type_id id = 0;
  if (desc && cleared_value_is_reference(heap, desc))
    ugc_set_error(error, UGC_ERR_INVALID,
                  "ugc_type_register: type \"%s\": cleared_value %#lx is a heap reference (it "
                  "must be NULL or an immediate)",
                  desc->name ? desc->name : "(unnamed)", (unsigned long)desc->cleared_value);
  else
    id = ugc_type_table_add(&heap->types, desc, error);
  if (id)
    for (ugc_mutator *m = heap->mutators_head; m; m = m->next)
      m->fast.type_count = id + 1;
  pthread_mutex_unlock(&heap->lock);
  pthread_mutex_unlock(&heap->sp_lock);
  return id;
}

ugc_type_id ugc_object_type(const void *obj) {
  return ugc_header_type(ugc_header_load((uintptr_t)obj - UGC_HEADER_BYTES));
}

size_t ugc_object_size(const void *obj) {
  return ugc_header_payload(ugc_header_load((uintptr_t)obj - UGC_HEADER_BYTES));
}
