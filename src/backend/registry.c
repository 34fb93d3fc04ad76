/* The backend registry: names to ops, "auto" resolution, availability. */
#include <stdio.h>
#include <string.h>

#include "backend/availability.h"
#include "backend/backend.h"
#include "heap/space.h"
#include "runtime/heap.h"

/* Every backend built into the library. Adding one is one line here (its ops are
 * `ugc_backend_<name>`, declared by the macro below). */
#define UGC_BACKEND_LIST(X) X(stw) X(copy) X(move) X(sigsegv) X(minor)

#define DECLARE_BACKEND(name) extern const ugc_backend_ops ugc_backend_##name;
#define BACKEND_ENTRY(name) &ugc_backend_##name,
UGC_BACKEND_LIST(DECLARE_BACKEND)
static const ugc_backend_ops *const registered[] = {UGC_BACKEND_LIST(BACKEND_ENTRY) NULL};

const ugc_backend_ops *ugc_backend_find(const char *name) {
  for (size_t i = 0; name && registered[i]; i++)
    if (!strcmp(registered[i]->name, name))
      return registered[i];
  return NULL;
}

bool ugc_backend_is_implemented(const char *name) {
  return ugc_backend_find(name) != NULL;
}

bool ugc_backend_check(const char *name, char *reason, size_t reason_len) {
  if (reason && reason_len)
    reason[0] = 0;
  if (!name) {
    if (reason && reason_len)
      snprintf(reason, reason_len, "no backend name given");
    return false;
  }
  if (!ugc_backend_find(name)) {
    if (reason && reason_len)
      snprintf(reason, reason_len, "backend \"%s\" is %s", name,
               ugc_backend_availability(name, NULL, 0) < 0 ? "unknown"
                                                           : "not implemented in this build");
    return false;
  }
  return ugc_backend_availability(name, reason, reason_len) == 1;
}

bool ugc_backend_available(const char *name, char *reason, size_t reason_len) {
  return ugc_backend_check(name, reason, reason_len);
}

static void trace(ugc_heap *heap, const char *fmt, const char *a, const char *b) {
  if (heap->config.trace)
    fprintf(heap->config.trace_file ? heap->config.trace_file : stderr, fmt, a, b);
}

/* Huge pages for the moving space as config.huge_pages or the backend ask, set before the
 * backend attaches (it may map parts of the space). */
static void advise_space(ugc_heap *heap, const ugc_backend_ops *ops) {
  ugc_huge_pages wanted = heap->config.huge_pages;
  bool on = wanted == UGC_HUGE_PAGES_AUTO ? ops->huge_pages : wanted == UGC_HUGE_PAGES_ON;
  ugc_moving_space_use_huge_pages(&heap->moving, on);
  trace(heap, "uffdgc: moving space for %s: transparent huge pages %s\n", ops->name,
        heap->moving.huge_pages ? "on" : "off");
}

int ugc_backend_select(ugc_heap *heap, const char *requested, ugc_error *error) {
  char reason[320];
  ugc_error attach_error;
  if (!requested || !strcmp(requested, "auto")) {
    for (size_t i = 0; ugc_backend_preference[i]; i++) {
      const char *name = ugc_backend_preference[i];
      const ugc_backend_ops *ops = ugc_backend_find(name);
      if (!ops)
        continue;
      if (ugc_backend_availability(name, reason, sizeof reason) != 1) {
        trace(heap, "uffdgc: backend auto: %s unavailable (%s)\n", name, reason);
        continue;
      }
      memset(&attach_error, 0, sizeof attach_error);
      advise_space(heap, ops);
      if (ops->attach && ops->attach(heap, &attach_error) != 0) {
        trace(heap, "uffdgc: backend auto: %s could not attach (%s); falling back\n", name,
              attach_error.message);
        continue;
      }
      heap->backend = ops;
      trace(heap, "uffdgc: backend auto: using %s%s\n", name, "");
      return 0;
    }
    ugc_set_error(error, UGC_ERR_UNAVAILABLE, "ugc_heap_create: no backend can run here");
    return -1;
  }
  const ugc_backend_ops *ops = ugc_backend_find(requested);
  if (!ops) {
    bool known = ugc_backend_availability(requested, NULL, 0) >= 0;
    ugc_set_error(error, known ? UGC_ERR_UNAVAILABLE : UGC_ERR_INVALID,
                  "ugc_heap_create: backend \"%s\" (UFFDGC_BACKEND or config.backend) is %s",
                  requested, known ? "not implemented in this build" : "unknown");
    return -1;
  }
  if (ugc_backend_availability(requested, reason, sizeof reason) != 1) {
    ugc_set_error(error, UGC_ERR_UNAVAILABLE, "ugc_heap_create: backend \"%s\" is unavailable: %s",
                  requested, reason);
    return -1;
  }
  memset(&attach_error, 0, sizeof attach_error);
  advise_space(heap, ops);
  if (ops->attach && ops->attach(heap, &attach_error) != 0) {
    ugc_set_error(error, attach_error.code ? attach_error.code : UGC_ERR_UNAVAILABLE,
                  "ugc_heap_create: backend \"%s\" could not start: %s", requested,
                  attach_error.message);
    return -1;
  }
  heap->backend = ops;
  return 0;
}
