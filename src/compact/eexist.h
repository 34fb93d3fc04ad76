/* EEXIST from mapping a to-space page (UFFDIO_COPY, UFFDIO_MOVE): somebody mapped the page
 * first. The driver (concurrent.c) explains a helper's copy itself; what is left is here:
 * a MOVE that moved the page and still answered EEXIST (a kernel quirk: the page is ours),
 * and the unexplained case, which would lose writes and is fatal, with everything known
 * about the page written out first. */
#ifndef UGC_COMPACT_EEXIST_H
#define UGC_COMPACT_EEXIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compact/concurrent.h"

/* Whether the MOVE of the page at `src` to `dst` that answered EEXIST did move it: `dst` is
 * present and `src` gone (no helper mapped `dst`: the caller checked). Counted in
 * moves_misreported; said once per process on stderr. */
bool ugc_eexist_moved_anyway(ugc_concurrent *c, uintptr_t dst, const void *src);

/* An EEXIST nobody explains: writes the page's state, the kernel's entries for it and its
 * 2 MiB neighbourhood, then aborts. */
void __attribute__((noreturn))
ugc_eexist_unexplained(ugc_concurrent *c, size_t page, const char *source, bool move);

#endif
