/* mremap wrappers: the pause's hand-off (MREMAP_DONTUNMAP) and plain moves. */
#ifndef UGC_OS_REMAP_H
#define UGC_OS_REMAP_H

#include <stdbool.h>
#include <stddef.h>

/* Cost class of moving page tables between two addresses, set by their common alignment:
 * whole PUD entries (1 GiB), whole PMD entries (2 MiB) or one PTE at a time (4 KiB). */
typedef enum ugc_remap_class {
  UGC_REMAP_PUD = 0, /* both ends 1 GiB-aligned: about 5 us per GiB */
  UGC_REMAP_PMD,     /* both ends 2 MiB-aligned: about 0.25 ms per GiB */
  UGC_REMAP_PTE,     /* otherwise: about 5 ms per GiB */
} ugc_remap_class;

/* The class a move of `len` bytes from `src` to `dst` falls in. */
ugc_remap_class ugc_remap_class_of(const void *src, const void *dst, size_t len);

/* "1GiB", "2MiB" or "4KiB". */
const char *ugc_remap_class_name(ugc_remap_class c);

/* mremap(src, len, len, MAYMOVE|FIXED|DONTUNMAP, dst): moves the pages to `dst` and leaves
 * `src` mapped but empty (next access: missing fault on anonymous memory, minor fault on
 * shmem). A source still registered with userfaultfd moves one PTE at a time whatever its
 * alignment: unregister it first. Stores the cost class in *cls if non-NULL. -EOPNOTSUPP when
 * UFFDGC_DISABLE has "dontunmap". 0 or -errno. */
int ugc_remap_dontunmap(void *src, void *dst, size_t len, ugc_remap_class *cls);

/* mremap(src, len, len, MAYMOVE|FIXED, dst): moves the mapping, `src` becomes unmapped.
 * 0 or -errno. */
int ugc_remap_move(void *src, void *dst, size_t len, ugc_remap_class *cls);

/* A one-line explanation of an error of the two functions above, for messages. */
const char *ugc_remap_explain(int neg_errno);

/* Whether MREMAP_DONTUNMAP works here on private anonymous (shmem=false) or memfd shared
 * (shmem=true) memory; tested once on a scratch page, honours UFFDGC_DISABLE. */
bool ugc_remap_dontunmap_works(bool shmem);

#endif
