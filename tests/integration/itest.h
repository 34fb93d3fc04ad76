/* Shared by the integration tests: heap creation honouring UFFDGC_BACKEND, with an explicit
 * SKIP (exit 77, reason printed) when the backend cannot run here, never a silent pass.
 * Public API only. */
#ifndef UGC_ITEST_H
#define UGC_ITEST_H

#include <stdlib.h>
#include <string.h>

#include "fixture.h"

/* The backend the environment asks for ("auto" when unset). */
static inline const char *itest_backend(void) {
  const char *name = getenv("UFFDGC_BACKEND");
  return name && *name ? name : "auto";
}

/* Skips before creating a heap when the requested backend cannot be tested here. */
static inline void itest_require_backend(void) {
  const char *name = itest_backend();
  if (strcmp(name, "auto") == 0 || strcmp(name, "stw") == 0)
    return;
#ifdef UGC_UNDER_SANITIZER
  /* userfaultfd faults and SIGBUS handlers are not meaningful under ASan/UBSan. */
  SKIP("backend %s uses userfaultfd/signals: not run under the sanitizer build", name);
#endif
  char reason[256] = "";
  if (!ugc_backend_available(name, reason, sizeof reason))
    SKIP("backend %s is not available: %s", name, reason[0] ? reason : "(no reason given)");
}

/* Creates the heap or skips/fails the test with the library's message. */
static inline ugc_heap *itest_heap_create(const ugc_config *config) {
  itest_require_backend();
  return fixture_heap(config);
}

static inline unsigned itest_env_unsigned(const char *name, unsigned fallback) {
  const char *text = getenv(name);
  if (!text || !*text)
    return fallback;
  unsigned long v = strtoul(text, NULL, 10);
  return v ? (unsigned)v : fallback;
}

#endif
