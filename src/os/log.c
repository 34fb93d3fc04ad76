/* Messages are formatted into one buffer and written with a single write() so that lines
 * from several threads do not interleave. */
#include "os/log.h"

#include <string.h>

#include "os/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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
