/* What each backend needs from the kernel, checked against what the probe found (and what
 * UFFDGC_DISABLE masks). Says nothing about whether a backend is implemented. */
#ifndef UGC_BACKEND_AVAILABILITY_H
#define UGC_BACKEND_AVAILABILITY_H

#include <stdbool.h>
#include <stddef.h>

/* 1 if the kernel offers what backend `name` ("stw", "sigsegv", "copy", "minor", "move")
 * needs, 0 if not with the reason in reason[] (may be NULL), -1 for an unknown name. */
int ugc_backend_availability(const char *name, char *reason, size_t reason_len);

/* Every backend name ugc_backend_availability knows, NULL-ended. */
extern const char *const ugc_backend_names[];

/* The order "auto" tries backends in (move, copy, sigsegv, stw), NULL-ended. */
extern const char *const ugc_backend_preference[];

/* Whether backend `name` is implemented in this build. Defined by src/backend/registry.c
 * (not part of this file's implementation). */
bool ugc_backend_is_implemented(const char *name);

#endif
