/* Messages. Diagnostics go to stderr with a "uffdgc: " prefix (usable by every layer).
 * Error messages are formatted into fixed buffers without losing their meaning: a message
 * too long for its buffer is cut after its last whole word and ends with "...", never in
 * the middle of a word; and a failed mapping is described with errno and the limits behind
 * it. */
#ifndef UGC_OS_LOG_H
#define UGC_OS_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* vsnprintf into buf[size]; when the text does not fit, it is cut after the last whole
 * word that leaves room for "..." and the "..." is appended. Returns the full length. */
int ugc_format_message_v(char *buf, size_t size, const char *fmt, va_list args)
    __attribute__((format(printf, 3, 0)));
int ugc_format_message(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "ENOMEM" style name of an errno value (its number when unknown). */
const char *ugc_errno_name(int err, char *scratch, size_t scratch_size);

/* Describes why mapping `bytes` failed with errno `err`, into buf: the errno name and text,
 * and the limits that cause it (RLIMIT_MEMLOCK under mlockall(MCL_FUTURE) gives EAGAIN,
 * RLIMIT_AS gives ENOMEM). */
void ugc_describe_map_failure(char *buf, size_t size, size_t bytes, int err);

/* Prints "uffdgc: warning: <message>\n" to stderr. */
void ugc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "uffdgc: error: <message>\n" to stderr (the library goes on). */
void ugc_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "uffdgc: fatal: <message>\n" to stderr and aborts the process. */
/* Writes "uffdgc: error: <who>: <what>: errno <n>" with write(2) only: async-signal-safe,
 * for fault paths that may run in a signal handler. */
void ugc_log_error_signal_safe(const char *who, const char *what, int err);

void ugc_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
