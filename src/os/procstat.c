/* Plain open/read into stack buffers: no stdio, no allocation, cheap enough to call at the
 * end of every cycle. */
#include "os/procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Reads up to len-1 bytes of `path` into buf, NUL-terminated. Bytes read or -errno. */
static long read_small_file(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  size_t got = 0;
  while (got < len - 1) {
    ssize_t n = read(fd, buf + got, len - 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  buf[got] = 0;
  return (long)got;
}

/* Value in kB of the "Key:" line of /proc/self/status, converted to bytes. */
static uint64_t status_field(const char *text, const char *key) {
  size_t klen = strlen(key);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, key, klen) == 0 && p[klen] == ':')
      return strtoull(p + klen + 1, NULL, 10) * 1024;
  return 0;
}

int ugc_proc_rss(ugc_rss *out) {
  char buf[4096];
  long n = read_small_file("/proc/self/status", buf, sizeof buf);
  if (n < 0)
    return (int)n;
  out->rss = status_field(buf, "VmRSS");
  out->rss_anon = status_field(buf, "RssAnon");
  out->rss_file = status_field(buf, "RssFile");
  out->rss_shmem = status_field(buf, "RssShmem");
  out->rss_peak = status_field(buf, "VmHWM");
  return 0;
}

int ugc_proc_reset_peak_rss(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  ssize_t n = write(fd, "5", 1); /* "5": VmHWM := VmRSS */
  int rc = n == 1 ? 0 : n < 0 ? -errno : -EIO;
  close(fd);
  return rc;
}

uint64_t ugc_proc_rss_bytes(void) {
  char buf[256];
  if (read_small_file("/proc/self/statm", buf, sizeof buf) <= 0)
    return 0;
  char *p = strchr(buf, ' '); /* second field: resident pages */
  if (!p)
    return 0;
  long page = sysconf(_SC_PAGESIZE);
  return strtoull(p + 1, NULL, 10) * (uint64_t)(page > 0 ? page : 4096);
}

long ugc_proc_vma_count(void) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  char buf[16384];
  long lines = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    for (ssize_t i = 0; i < n; i++)
      lines += buf[i] == '\n';
  }
  close(fd);
  return lines;
}

int ugc_thp_setting(const char *which, char *buf, size_t len) {
  char path[128], text[256];
  if (len == 0)
    return -EINVAL;
  snprintf(path, sizeof path, "/sys/kernel/mm/transparent_hugepage/%s", which);
  long n = read_small_file(path, text, sizeof text);
  if (n < 0)
    return (int)n;
  char *open_br = strchr(text, '['), *close_br = open_br ? strchr(open_br, ']') : NULL;
  if (!close_br)
    return -EPROTO;
  size_t w = (size_t)(close_br - open_br - 1);
  if (w >= len)
    w = len - 1;
  memcpy(buf, open_br + 1, w);
  buf[w] = 0;
  return 0;
}

int ugc_proc_unprivileged_userfaultfd(void) {
  char buf[32];
  long n = read_small_file("/proc/sys/vm/unprivileged_userfaultfd", buf, sizeof buf);
  if (n < 0)
    return (int)n;
  return atoi(buf) != 0;
}

int ugc_kernel_release(char *buf, size_t len) {
  struct utsname u;
  if (len == 0)
    return -EINVAL;
  if (uname(&u) != 0)
    return -errno;
  snprintf(buf, len, "%s", u.release);
  return 0;
}
