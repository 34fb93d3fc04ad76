/* The compaction pause's hand-off of the moving space to from-space (mremap with
 * MREMAP_DONTUNMAP), shared by the backends on private anonymous memory (stw, copy, move).
 *
 * Pinned objects' pages (the plan's held spans) never leave the heap range: a system call in
 * a thread the pause does not stop (a mutator in a blocking region doing read(2) into a
 * pinned buffer) may be writing into them, and a write into a page handed to from-space
 * would be lost, or fail with EFAULT while the heap page is missing. So the hand-off moves
 * the stretches between held spans, and each held span is copied into from-space (builds of
 * neighbouring pages read the headers of objects that run out of it). The backend then
 * updates the held pages in place (ugc_compact_update_page_in_place: only fillers over dead
 * words and reference slots are written, never a pinned object's bytes), reading headers
 * and slots in from-space, where the page before a span lies too: a span need not reach
 * down to the header of an object straddling into it (with 2-8 KiB strings that chain ran
 * over megabytes, copied in the pause: 4-5 ms of hand-off for one pinned string).
 *
 *   heap        |  stretch 0  |HELD|  stretch 1  |HELD|  stretch 2 ... reservation end |
 *                 mremap        copy  mremap       copy  mremap
 *   from-space  |  stretch 0  |copy|  stretch 1  |copy|  stretch 2 ...                 |
 *
 * The plan's untouched spans (compact.h: fully live LEAF data of the dense prefix, 2 MiB
 * aligned) stay too, but get no copy: no build reads them, and they are never built.
 *
 * Without held or untouched spans one mremap moves the whole 1 GiB-multiple reservation
 * (whole PUD entries); with k spans it takes k + 1 calls, at PMD or PTE granularity at the
 * edges. */
#ifndef UGC_BACKEND_HANDOFF_H
#define UGC_BACKEND_HANDOFF_H

#include <stddef.h>

#include "compact/compact.h"
#include "heap/space.h"

/* Hands [base, base + reserved_bytes) to from-space but the held spans, which keep their
 * pages and get a copy in from-space. Returns 0, or -errno with everything back where it was
 * (from-space a bare reservation again). `who` names the backend in fatal messages. */
int ugc_handoff_around_held(ugc_moving_space *space, const ugc_compact_plan *plan, const char *who);

/* Undoes a successful ugc_handoff_around_held when a later step of the pause failed: the
 * stretches move back, from-space becomes a bare reservation. The held pages stay as they
 * are (a system call may have written into them meanwhile). Fatal when the heap cannot be
 * put back. */
void ugc_handoff_undo(ugc_moving_space *space, const ugc_compact_plan *plan, const char *who);

/* The stretches the hand-off moves: [0, ugc_handoff_stretches(plan)); stretch r as offsets
 * [*start, *end) from the space's base, capped at `all` (the part of the range past the
 * last span), maybe empty. For a backend that empties the heap range itself. */
size_t ugc_handoff_stretches(const ugc_compact_plan *plan);
void ugc_handoff_stretch(const ugc_moving_space *space, const ugc_compact_plan *plan, size_t r,
                         size_t all, size_t *start, size_t *end);

/* MADV_DONTNEED over [base, base + bytes) but the held and untouched spans: drops pages that an
 * access mapped between the hand-off and a registration. Returns the number of calls. */
size_t ugc_handoff_drop_unheld(const ugc_moving_space *space, const ugc_compact_plan *plan,
                               size_t bytes);

#endif
