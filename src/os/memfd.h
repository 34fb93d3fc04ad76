/* memfd-backed heap memory: one file, several MAP_SHARED views of it (the heap view the
 * mutators use and an alias view the collector writes through). */
#ifndef UGC_OS_MEMFD_H
#define UGC_OS_MEMFD_H

#include <stddef.h>
#include <sys/types.h>

typedef struct ugc_memfd {
  int fd;      /* -1 when closed */
  size_t size; /* current file size in bytes */
} ugc_memfd;

/* Creates a sealable, close-on-exec memfd of `size` bytes, sealed against shrinking
 * (F_SEAL_SHRINK). Fails with -EOPNOTSUPP when UFFDGC_DISABLE has "memfd". 0 or -errno. */
int ugc_memfd_create(ugc_memfd *m, const char *name, size_t size);

/* Grows the file to `new_size` (shrinking is refused by the seal). 0 or -errno. */
int ugc_memfd_grow(ugc_memfd *m, size_t new_size);

/* Maps [offset, offset+len) of the file MAP_SHARED with `prot`: at `addr` with MAP_FIXED
 * (e.g. inside a reservation) or anywhere when addr is NULL. Stores the view in *out.
 * 0 or -errno. */
int ugc_memfd_map(const ugc_memfd *m, void *addr, off_t offset, size_t len, int prot, void **out);

/* The same, MAP_PRIVATE: writes through this view are copy-on-write and never reach the
 * file, while pages not yet written show what other views wrote into it. */
int ugc_memfd_map_private(const ugc_memfd *m, void *addr, off_t offset, size_t len, int prot,
                          void **out);

/* Frees the file's pages in [offset, offset+len) (fallocate PUNCH_HOLE|KEEP_SIZE): every
 * view then reads zeros there. 0 or -errno. */
int ugc_memfd_punch_hole(const ugc_memfd *m, off_t offset, size_t len);

/* Closes the descriptor (existing views stay valid until unmapped). */
void ugc_memfd_close(ugc_memfd *m);

#endif
