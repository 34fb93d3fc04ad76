/* Address-space reservations: PROT_NONE ranges aligned to a power of two (1 GiB or 2 MiB)
 * so that mremap can move whole page-table entries (see design/kernel.md). */
#ifndef UGC_OS_RESERVE_H
#define UGC_OS_RESERVE_H

#include <stddef.h>

#define UGC_KiB ((size_t)1 << 10)
#define UGC_MiB ((size_t)1 << 20)
#define UGC_GiB ((size_t)1 << 30)

typedef struct ugc_reservation {
  void *base;             /* start of the reserved range (NULL when empty) */
  size_t size;            /* bytes reserved, a multiple of the page size */
  size_t align_requested; /* what the caller asked for */
  size_t align_obtained;  /* largest power of two (<= 1 GiB) that divides base */
} ugc_reservation;

/* (ugc_os_ prefix: the public API already has ugc_reserve.)
 * Reserves `size` bytes of PROT_NONE, MAP_NORESERVE address space aligned to `align` (a power
 * of two >= page size) by over-mapping and trimming; if the over-mapping cannot be had,
 * falls back to a plain mapping and reports the alignment obtained. 0 or -errno. */
int ugc_os_reserve(ugc_reservation *r, size_t size, size_t align);

/* Unmaps the whole reservation and clears *r. 0 or -errno. */
int ugc_os_release(ugc_reservation *r);

/* Makes [addr, addr+len) readable and writable in place (mprotect). 0 or -errno. */
int ugc_commit(void *addr, size_t len);

/* Replaces [addr, addr+len) with fresh zero-filled RW anonymous memory (mmap MAP_FIXED):
 * drops any previous contents and page tables. 0 or -errno. */
int ugc_commit_fresh(void *addr, size_t len);

/* Returns [addr, addr+len) to PROT_NONE reserved state and frees its memory. 0 or -errno. */
int ugc_uncommit(void *addr, size_t len);

/* Largest power of two, capped at 1 GiB, that divides `addr` (1 GiB for NULL). */
size_t ugc_alignment_of(const void *addr);

/* The system page size (cached). */
size_t ugc_page_size(void);

#endif
