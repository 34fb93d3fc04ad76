#include "os/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static const char ellipsis[] = "...";

int ugc_format_message_v(char *buf, size_t size, const char *fmt, va_list args) {
  if (!size)
    return 0;
  int full = vsnprintf(buf, size, fmt, args);
  if (full < 0 || (size_t)full < size || size <= sizeof ellipsis)
    return full;
  /* Cut after the last whole word that leaves room for the ellipsis. */
  size_t end = size - sizeof ellipsis; /* index where "..." would start */
  while (end > 0 && buf[end] != ' ')
    end--;
  while (end > 0 && buf[end - 1] == ' ')
    end--;
  if (end == 0) /* one endless word: keep what fits */
    end = size - sizeof ellipsis;
  memcpy(buf + end, ellipsis, sizeof ellipsis);
  return full;
}

int ugc_format_message(char *buf, size_t size, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  int full = ugc_format_message_v(buf, size, fmt, args);
  va_end(args);
  return full;
}

const char *ugc_errno_name(int err, char *scratch, size_t scratch_size) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name)
    return name;
#endif
  snprintf(scratch, scratch_size, "errno %d", err);
  return scratch;
}

static void describe_limit(char *buf, size_t size, int resource) {
  struct rlimit limit;
  if (getrlimit(resource, &limit) != 0)
    snprintf(buf, size, "unknown");
  else if (limit.rlim_cur == RLIM_INFINITY)
    snprintf(buf, size, "unlimited");
  else
    snprintf(buf, size, "%llu KiB", (unsigned long long)limit.rlim_cur >> 10);
}

void ugc_describe_map_failure(char *buf, size_t size, size_t bytes, int err) {
  char scratch[24], memlock[32], as[32];
  describe_limit(memlock, sizeof memlock, RLIMIT_MEMLOCK);
  describe_limit(as, sizeof as, RLIMIT_AS);
  const char *hint = "";
  if (err == EAGAIN)
    hint = " (under mlockall(MCL_FUTURE) every new mapping counts against RLIMIT_MEMLOCK, "
           "reserved address space too: create the heap before mlockall, or raise the limit)";
  else if (err == ENOMEM)
    hint = " (address space or vm.max_map_count exhausted, or vm.overcommit_memory=2)";
  ugc_format_message(
      buf, size, "mmap of %zu KiB failed: %s (%s); RLIMIT_MEMLOCK %s, RLIMIT_AS %s%s", bytes >> 10,
      ugc_errno_name(err, scratch, sizeof scratch), strerror(err), memlock, as, hint);
}
