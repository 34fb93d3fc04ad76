/* UFFDGC_INJECT: fault injection for tests. A comma-separated list of `point` or
 * `point:N`; ugc_inject(point) returns true on every call of a listed point (or only on its
 * N-th call), so tests can make a kernel operation fail at a chosen moment and check that
 * the library falls back or reports a clean error with the heap intact.
 *
 * Points (each names the place that consults it; the outcomes are tabled in
 * docs/design.md, "Kernel errors and their outcomes"):
 *   copy.mremap       the copy backend's hand-off mremap fails (ENOMEM)
 *   copy.register     registering the heap with userfaultfd fails (EBUSY)
 *   copy.unregister   unregistering the heap at the end of a compaction fails (ENOMEM)
 *   copy.page_states  no memory for the per-page states
 *   copy.stray_read   a read of the first heap page between mremap and registration maps
 *                     the zero page there (the trap the page protocol must survive)
 *   copy.reopen       opening the fork child's own userfaultfd fails (EMFILE)
 *   handoff.held_stretch  a hand-off around held spans (pinned objects' pages: stw, copy,
 *                     move) fails at its second stretch (ENOMEM), after the first moved:
 *                     what moved goes back (backend/handoff.c)
 *   copy.update_mremap    moving a large object or the non-moving space away (for its
 *                         references to be updated after the pause) fails (ENOMEM)
 *   copy.update_register  registering such a range fails (EBUSY)
 *   copy.update_slow_handoff  such a range's hand-off waits 2 ms after its pages left it
 *                     (widens the moment a system call of a thread the pause does not stop
 *                     could write into it: it must wait for its page, never be lost)
 *   compact.threads   creating a compaction GC thread fails (the pages are then built in
 *                     the pause, by the collecting thread)
 *   compact.late_start  the compaction GC threads sleep 50 ms before their first page, so
 *                     that a test's mutator surely faults pages in itself (not a failure)
 *   plan.tables       no memory for the compaction plan's tables
 *   plan.no_untouched the plan finds no untouched spans (compact/untouched.c): tests of what
 *                     builds those pages otherwise (move's whole huge chunks of the dense
 *                     prefix) keep their subject
 *   plan.small_rounds the plan is extended between the pauses in rounds of at most 3 pages
 *                     and as many rounds as that takes, not in a few large ones (tests the
 *                     round boundaries: runtime/concurrent_mark.c)
 *   uffd.<error>      a resolving ioctl (UFFDIO_COPY, ...) answers as the kernel would:
 *                     eagain (EAGAIN, no progress), partial (EAGAIN after half the range
 *                     was done), eexist, enoent, esrch, enomem, efault, ebusy; the ioctl
 *                     is not issued (partial: issued for the first half)
 *   move.busy         the move backend's UFFDIO_MOVE answers EBUSY (a page shared with a
 *                     forked child): the page is copied instead
 *   move.eexist_moved UFFDIO_MOVE moves one page and answers EEXIST with no progress, as
 *                     the kernel was seen to (compact/eexist.h): the page is taken as moved
 *   sigsegv.flip      mapping the heap for a sigsegv compaction fails (ENOMEM)
 *   sigsegv.mprotect  publishing built pages fails with ENOMEM (out of mappings)
 *   sigsegv.page_states  no memory for the sigsegv backend's page states
 *   sigsegv.update_mremap  moving a large object away (for its references to be updated
 *                          after the pause) fails (ENOMEM): it is updated in the pause
 *   sigsegv.update_mprotect  making such a range PROT_NONE fails (ENOMEM): the same
 *   minor.flip        mapping the heap for a minor compaction fails (ENOMEM)
 *   minor.register    registering the minor backend's heap view fails (EBUSY)
 *   minor.page_states no memory for the minor backend's page states
 *   minor.drop_mapped a page a SIGBUS fault just mapped loses its page-table entry again,
 *                     as under reclaim (one mutator thread only: see backend/minor.c)
 *   minor.no_keep     the minor backend keeps no dense prefix in its files: every page is
 *                     built into a new file, as before it kept them (for comparisons)
 *   minor.copy_kept   the minor backend copies every kept page onto itself, as before it
 *                     told its own pages from private copies (for comparisons)
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
static inline bool ugc_inject_armed(void) {
  return false;
}
static inline bool ugc_inject(const char *point) {
  (void)point;
  return false;
}
#else
/* True when any point is armed (parses UFFDGC_INJECT on the first call; afterwards a
 * plain load, safe in a signal handler). */
bool ugc_inject_armed(void);

/* True when the fault at `point` must be injected now. */
bool ugc_inject(const char *point);
#endif

/* Whether every entry of the comma-separated `list` is a known point, optionally with ":N"
 * (N from 1); if not, the first bad entry goes to bad_entry. */
bool ugc_inject_list_check(const char *list, char *bad_entry, size_t bad_len);

/* The known points, comma-separated, for messages. */
#define UGC_INJECT_KNOWN_POINTS                                                                    \
  "copy.mremap, copy.register, copy.unregister, copy.page_states, copy.stray_read, "               \
  "copy.reopen, handoff.held_stretch, compact.threads, compact.late_start, plan.tables, "          \
  "plan.no_untouched, "                                                                            \
  "plan.small_rounds, uffd.eagain, uffd.partial, "                                                 \
  "uffd.eexist, "                                                                                  \
  "uffd.enoent, uffd.esrch, uffd.enomem, uffd.efault, uffd.ebusy, copy.update_mremap, "            \
  "copy.update_register, move.busy, sigsegv.flip, sigsegv.mprotect, sigsegv.page_states, "         \
  "sigsegv.update_mremap, sigsegv.update_mprotect, minor.flip, minor.register, "                   \
  "minor.page_states, minor.drop_mapped, minor.no_keep, minor.copy_kept"

#endif
