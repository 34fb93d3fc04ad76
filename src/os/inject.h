/* UFFDGC_INJECT: fault injection for tests. A comma-separated list of `point` or
 * `point:N`; ugc_inject(point) returns true on every call of a listed point (or only on its
 * N-th call), so tests can make a kernel operation fail at a chosen moment and check that
 * the library falls back or reports a clean error with the heap intact.
 *
 * Points (each names the place that consults it):
 *   copy.mremap       the copy backend's hand-off mremap fails (ENOMEM)
 *   copy.register     registering the heap with userfaultfd fails (EBUSY)
 *   copy.page_states  no memory for the per-page states
 *   copy.stray_read   a read of the first heap page between mremap and registration maps
 *                     the zero page there (the trap the page protocol must survive)
 *
 * Parsed once, on first use; heap creation refuses a list with an unknown point or a bad N
 * (ugc_inject_list_check); other users get one warning. Unset: one well-predicted
 * branch per call site, and the call sites are on per-cycle paths only.
 *
 * Never in production: builds configured with UGC_FAULT_INJECTION=OFF (the default for
 * Release and MinSizeRel) compile every call site out, and a process in secure execution
 * (setuid, setgid, file capabilities: AT_SECURE) never reads the variable. */
#ifndef UGC_OS_INJECT_H
#define UGC_OS_INJECT_H

#include <stdbool.h>
#include <stddef.h>

#ifdef UGC_NO_FAULT_INJECTION
static inline bool ugc_inject(const char *point) {
  (void)point;
  return false;
}
#else
/* True when the fault at `point` must be injected now. */
bool ugc_inject(const char *point);
#endif

/* Whether every entry of the comma-separated `list` is a known point, optionally with ":N"
 * (N from 1); if not, the first bad entry goes to bad_entry. */
bool ugc_inject_list_check(const char *list, char *bad_entry, size_t bad_len);

/* The known points, comma-separated, for messages. */
#define UGC_INJECT_KNOWN_POINTS "copy.mremap, copy.register, copy.page_states, copy.stray_read"

#endif
