/* Memory measurements from /proc/self for the running child: RSS, shmem, mappings. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

uint64_t bench_rss_bytes(void) {
  /* statm is one short line: cheaper than status, good enough for frequent samples. */
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = 0;
  unsigned long long size = 0, resident = 0;
  if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
    return 0;
  return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t bench_status_field(const char *field) {
  FILE *f = fopen("/proc/self/status", "re");
  if (!f)
    return 0;
  char line[256];
  size_t len = strlen(field);
  uint64_t value = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, field, len) == 0 && line[len] == ':') {
      unsigned long long kb = 0;
      if (sscanf(line + len + 1, "%llu", &kb) == 1)
        value = kb * 1024;
      break;
    }
  }
  fclose(f);
  return value;
}

uint64_t bench_vma_count(void) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  char buf[65536];
  uint64_t lines = 0;
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; i++)
      lines += buf[i] == '\n';
  close(fd);
  return lines;
}

void bench_reset_peak_rss(void) {
  /* "5" resets VmHWM to the current RSS (Linux 4.0+); a forked child would otherwise
   * inherit its parent's peak. Failure only makes the peak less precise. */
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, "5", 1) < 0) {
    }
    close(fd);
  }
}

static pthread_mutex_t sample_lock = PTHREAD_MUTEX_INITIALIZER;

void bench_sample_memory(bench_ctx *ctx) {
  bench_result *r = ctx->result;
  uint64_t rss = bench_rss_bytes();
  uint64_t shmem = bench_status_field("RssShmem");
  uint64_t vmas = bench_vma_count();
  double t = bench_now_s() - ctx->t0;
  pthread_mutex_lock(&sample_lock);
  if (shmem > r->shmem_peak_bytes)
    r->shmem_peak_bytes = shmem;
  if (vmas > r->vma_peak)
    r->vma_peak = vmas;
  if (r->rss_count < BENCH_RSS_SAMPLES) {
    r->rss[r->rss_count].t_s = t;
    r->rss[r->rss_count].rss = rss;
    r->rss_count++;
  }
  pthread_mutex_unlock(&sample_lock);
}
