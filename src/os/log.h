/* Diagnostics to stderr with a "uffdgc: " prefix. Usable by every layer. */
#ifndef UGC_OS_LOG_H
#define UGC_OS_LOG_H

/* Prints "uffdgc: warning: <message>\n" to stderr. */
void ugc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "uffdgc: error: <message>\n" to stderr (the library goes on). */
void ugc_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "uffdgc: fatal: <message>\n" to stderr and aborts the process. */
void ugc_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
