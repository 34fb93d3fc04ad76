/* Diagnostics are formatted into one buffer and written with a single write() so that lines
 * from several threads do not interleave. */
#include "os/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

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

static void emit(const char *level, const char *fmt, va_list ap) {
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "uffdgc: %s", level);
  if (n < 0)
    n = 0;
  /* Room for the newline; a message too long is cut after a word and ends with "...". */
  int m = ugc_format_message_v(buf + n, sizeof buf - 1 - (size_t)n, fmt, ap);
  size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
  if (len > sizeof buf - 2)
    len = strlen(buf);
  buf[len++] = '\n';
  ssize_t ignored = write(STDERR_FILENO, buf, len);
  (void)ignored;
}

void ugc_warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("warning: ", fmt, ap);
  va_end(ap);
}

void ugc_log_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("error: ", fmt, ap);
  va_end(ap);
}

void ugc_fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("fatal: ", fmt, ap);
  va_end(ap);
  abort();
}

void ugc_log_error_signal_safe(const char *who, const char *what, int err) {
  char message[240];
  size_t length = 0;
  const char *parts[] = {"uffdgc: error: ", who, ": ", what, ": errno "};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    for (const char *p = parts[i]; *p && length < sizeof message - 16; p++)
      message[length++] = *p;
  char digits[12];
  int count = 0;
  unsigned value = err < 0 ? (unsigned)-err : (unsigned)err;
  do {
    digits[count++] = (char)('0' + value % 10);
    value /= 10;
  } while (value && count < (int)sizeof digits);
  while (count)
    message[length++] = digits[--count];
  message[length++] = '\n';
  ssize_t ignored = write(STDERR_FILENO, message, length);
  (void)ignored;
}
