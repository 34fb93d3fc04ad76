/* The heap verifier: object headers in every space, and every reference slot of every
 * object (and every root) pointing at an object start in a live space. Object starts of
 * the moving space are found by walking it into a temporary bitmap. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "runtime/heap.h"
#include "runtime/verify.h"

typedef struct verifier {
  ugc_tracer tracer;
  ugc_heap *heap;
  uint64_t *starts; /* 1 bit per word of [base, top): an object (not filler) starts here */
  size_t problems;
  char *first;
  size_t first_len;
  uintptr_t current; /* header of the object whose slots are being checked; 0 for roots */
} verifier;

static void problem(verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(verifier *v, const char *fmt, ...) {
  if (v->problems++ == 0 && v->first_len) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(v->first, v->first_len, fmt, args);
    va_end(args);
  }
}

static bool is_start(const verifier *v, uintptr_t hdr) {
  size_t word = (hdr - v->heap->moving.base) >> 3;
  return (v->starts[word >> 6] >> (word & 63)) & 1u;
}

/* The large object whose mapping contains addr, or NULL. */
static const ugc_large_object *large_containing(const ugc_large_space *space, uintptr_t addr) {
  size_t lo = 0, hi = space->count;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (space->objects[mid].hdr <= addr)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0)
    return NULL;
  const ugc_large_object *object = &space->objects[lo - 1];
  return addr - object->hdr < object->map_bytes ? object : NULL;
}

static void check_slot(ugc_tracer *tracer, void *slot, const ugc_tag_rule *rule) {
  verifier *v = (verifier *)tracer;
  ugc_heap *heap = v->heap;
  uintptr_t ref = ugc_tag_reference(*(uintptr_t *)slot, rule);
  if (!ref)
    return;
  uintptr_t hdr = ref - UGC_HEADER_BYTES;
  const char *owner = v->current ? "object" : "root";
  uintptr_t where = v->current ? v->current + UGC_HEADER_BYTES : (uintptr_t)slot;
  if (ref - heap->moving.base < heap->moving.reserved_bytes) {
    if (hdr - heap->moving.base >= heap->moving.top - heap->moving.base)
      problem(v, "%s %#lx slot %p: %#lx is in the moving space but not below its top", owner,
              (unsigned long)where, slot, (unsigned long)ref);
    else if ((ref & 7) || !is_start(v, hdr))
      problem(v, "%s %#lx slot %p: %#lx is not an object start in the moving space", owner,
              (unsigned long)where, slot, (unsigned long)ref);
    return;
  }
  if (ref - heap->nonmoving.base < heap->nonmoving.end - heap->nonmoving.base) {
    if (ugc_nonmoving_cell_index(&heap->nonmoving, hdr) < 0)
      problem(v, "%s %#lx slot %p: %#lx is not an allocated non-moving object", owner,
              (unsigned long)where, slot, (unsigned long)ref);
    return;
  }
  const ugc_large_object *large = large_containing(&heap->large, ref);
  if (large && large->hdr != hdr)
    problem(v, "%s %#lx slot %p: %#lx points inside large object %#lx", owner, (unsigned long)where,
            slot, (unsigned long)ref, (unsigned long)(large->hdr + UGC_HEADER_BYTES));
}

/* Header checks common to all spaces; `room` is the space the object may occupy. */
static bool check_header(verifier *v, const char *space, uintptr_t hdr, size_t room) {
  uint64_t header = ugc_header_load(hdr);
  ugc_type_id type = ugc_header_type(header);
  if (type >= ugc_type_count(&v->heap->types)) {
    problem(v, "%s object %#lx: header %#llx has unregistered type id %u", space,
            (unsigned long)(hdr + UGC_HEADER_BYTES), (unsigned long long)header, type);
    return false;
  }
  if (ugc_header_total(header) > room) {
    problem(v, "%s object %#lx: size %zu runs past its space (%zu bytes left)", space,
            (unsigned long)(hdr + UGC_HEADER_BYTES), ugc_header_payload(header), room);
    return false;
  }
  if (ugc_header_flags(header)) {
    problem(v, "%s object %#lx: header %#llx has unknown flags", space,
            (unsigned long)(hdr + UGC_HEADER_BYTES), (unsigned long long)header);
    return false;
  }
  return true;
}

static bool check_cell(uintptr_t hdr, void *raw) {
  verifier *v = raw;
  const ugc_nm_span *span = ugc_nonmoving_span_of(&v->heap->nonmoving, hdr);
  if (check_header(v, "non-moving", hdr, span->cell_bytes) &&
      ugc_header_type(ugc_header_load(hdr)) == UGC_FILLER_TYPE)
    problem(v, "non-moving object %#lx has the filler type",
            (unsigned long)(hdr + UGC_HEADER_BYTES));
  return true;
}

static bool check_object_slots(uintptr_t hdr, void *raw) {
  verifier *v = raw;
  v->current = hdr;
  ugc_object_visit(&v->heap->types, ugc_header_load(hdr), (void *)(hdr + UGC_HEADER_BYTES),
                   &v->tracer);
  return true;
}

size_t ugc_verify_locked(ugc_heap *heap, char *first, size_t first_len) {
  verifier v = {{check_slot}, heap, NULL, 0, first, first_len, 0};
  if (first_len)
    first[0] = 0;
  ugc_moving_space *space = &heap->moving;
  size_t words = (space->top - space->base) >> 3;
  v.starts = calloc((words + 63) / 64 + 1, sizeof(uint64_t));
  if (!v.starts) {
    problem(&v, "out of memory for the verifier's start bitmap");
    return v.problems;
  }

  /* Headers. The moving space must be walkable from base to top. */
  bool walkable = true;
  for (uintptr_t at = space->base; at < space->top;) {
    if (!check_header(&v, "moving", at, space->top - at)) {
      walkable = false;
      break;
    }
    uint64_t header = ugc_header_load(at);
    if (ugc_header_type(header) != UGC_FILLER_TYPE) {
      size_t word = (at - space->base) >> 3;
      v.starts[word >> 6] |= UINT64_C(1) << (word & 63);
    }
    at += ugc_header_total(header);
  }
  ugc_nonmoving_for_each(&heap->nonmoving, check_cell, &v);
  for (size_t i = 0; i < heap->large.count; i++) {
    const ugc_large_object *large = &heap->large.objects[i];
    if (check_header(&v, "large", large->hdr, large->map_bytes) &&
        ugc_header_type(ugc_header_load(large->hdr)) == UGC_FILLER_TYPE)
      problem(&v, "large object %#lx has the filler type",
              (unsigned long)(large->hdr + UGC_HEADER_BYTES));
  }

  /* References: only once headers are sane (tracing trusts them). */
  if (walkable && v.problems == 0) {
    ugc_walk_objects_locked(heap, check_object_slots, &v);
    v.current = 0;
    ugc_roots_visit(heap, &v.tracer);
    for (size_t i = 0; i < heap->weaks.count; i++)
      check_slot(&v.tracer, heap->weaks.slots[i], &heap->root_rule);
    ugc_finalize_visit_registered(heap, &v.tracer); /* queued ones are roots, above */
  }
  free(v.starts);
  return v.problems;
}

size_t ugc_verify(ugc_mutator *mutator, ugc_error *error) {
  ugc_check_attached(mutator, "ugc_verify");
  ugc_heap *heap = mutator->heap;
  char first[200];
  ugc_world_stop(heap, mutator, false);
  pthread_mutex_lock(&heap->lock);
  heap->backend->compact_wait(heap);
  ugc_tlabs_retire_all(heap);
  size_t problems = ugc_verify_locked(heap, first, sizeof first);
  pthread_mutex_unlock(&heap->lock);
  ugc_world_resume(heap, mutator, false);
  if (problems)
    ugc_set_error(error, UGC_ERR_INVALID, "ugc_verify: %zu problem(s); first: %s", problems, first);
  else if (error)
    ugc_set_error(error, UGC_OK, "ugc_verify: no problems");
  return problems;
}
