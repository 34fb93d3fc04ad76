/* madvise helpers with process-wide call counters (for the collector's statistics). */
#ifndef UGC_OS_MADVISE_H
#define UGC_OS_MADVISE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ugc_madvise_stats {
  uint64_t dontneed_calls, dontneed_bytes;
  uint64_t dontfork_calls;
  uint64_t hugepage_calls, nohugepage_calls;
  uint64_t failures; /* calls that returned an error */
} ugc_madvise_stats;

/* MADV_DONTNEED: drops the pages (anonymous: next read is zero). 0 or -errno. */
int ugc_madv_dontneed(void *addr, size_t len);

/* MADV_DONTFORK: a child does not inherit the range (keeps pages exclusive for MOVE). */
int ugc_madv_dontfork(void *addr, size_t len);

/* MADV_HUGEPAGE, or MADV_NOHUGEPAGE when UFFDGC_DISABLE has "thp". 0 or -errno. */
int ugc_madv_hugepage(void *addr, size_t len);

/* MADV_NOHUGEPAGE. 0 or -errno. */
int ugc_madv_nohugepage(void *addr, size_t len);

/* Copies the counters accumulated since process start. */
void ugc_madvise_get_stats(ugc_madvise_stats *out);

#endif
