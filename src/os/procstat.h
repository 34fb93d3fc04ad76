/* Readers for /proc and /sys: memory use, mapping count, THP and userfaultfd settings; and
 * the one writer, the peak RSS reset. */
#ifndef UGC_OS_PROCSTAT_H
#define UGC_OS_PROCSTAT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ugc_rss {
  uint64_t rss;       /* VmRSS, bytes */
  uint64_t rss_anon;  /* RssAnon, bytes */
  uint64_t rss_file;  /* RssFile, bytes */
  uint64_t rss_shmem; /* RssShmem, bytes (memfd heaps count here) */
  uint64_t rss_peak;  /* VmHWM, bytes: the largest rss since start or the last reset */
} ugc_rss;

/* Fills *out from /proc/self/status. 0 or -errno. */
int ugc_proc_rss(ugc_rss *out);

/* Restarts rss_peak (VmHWM) from the current RSS (Linux 4.0+): a forked child otherwise
 * inherits its parent's peak. 0 or -errno. */
int ugc_proc_reset_peak_rss(void);

/* Resident set size in bytes from /proc/self/statm (cheaper than ugc_proc_rss); 0 on error. */
uint64_t ugc_proc_rss_bytes(void);

/* Number of mappings (VMAs) of this process: lines of /proc/self/maps. -errno on error. */
long ugc_proc_vma_count(void);

/* The selected value of /sys/kernel/mm/transparent_hugepage/<which> ("enabled", "defrag",
 * "shmem_enabled"): the bracketed word, e.g. "madvise". 0 or -errno. */
int ugc_thp_setting(const char *which, char *buf, size_t len);

/* vm.unprivileged_userfaultfd: 0 or 1, or -errno when it cannot be read. */
int ugc_proc_unprivileged_userfaultfd(void);

/* The kernel release (uname -r) into buf. 0 or -errno. */
int ugc_kernel_release(char *buf, size_t len);

#endif
