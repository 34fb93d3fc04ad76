/* Configuration: defaults, environment overrides, validation.
 *
 * One policy for every value (docs/api.md, "Configuration values"): a variable that is unset
 * or empty, and a config field left at zero (NULL), takes its default; any other value that
 * is not valid makes ugc_heap_create fail with UGC_ERR_INVALID and a message naming the
 * variable or field, the value as given and what is accepted. Nothing is clamped or ignored
 * with a warning. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/availability.h"
#include "os/disable.h"
#include "os/inject.h"
#include "runtime/config.h"
#include "runtime/heap.h"
#include "runtime/sizes.h"

#define MiB ((size_t)1 << 20)
#define GC_THREADS_MAX 64u
#define GC_THREADS_AUTO_MAX 8u

void ugc_config_init(ugc_config *config) {
  memset(config, 0, sizeof *config);
  config->heap_max = 256 * MiB;
  config->heap_initial = 32 * MiB;
  config->nonmoving_max = 64 * MiB;
  config->large_threshold = 128 * 1024;
  config->backend = "auto";
  config->delivery = "sigbus";
  config->gc_threads = 0;
  config->growth_factor = 2.0;
  config->concurrent_mark = 1;
  config->mark_assist = 1;
  config->safepoint_timeout_ms = 10000;
}

/* The value of variable `name`, or NULL when it is unset or empty. secure_getenv: in a
 * setuid, setgid or file-capability program (secure execution) the caller's environment
 * does not configure the heap. */
static const char *env(const char *name) {
  const char *value = secure_getenv(name);
  return value && *value ? value : NULL;
}

static int bad_env(ugc_error *error, const char *name, const char *value, const char *accepted) {
  ugc_set_error(error, UGC_ERR_INVALID, "ugc_heap_create: %s=\"%s\": expected %s", name, value,
                accepted);
  return -1;
}

static bool parse_bool(const char *text, bool *out) {
  if (!strcmp(text, "0") || !strcmp(text, "1")) {
    *out = text[0] == '1';
    return true;
  }
  return false;
}

/* A thread count from the environment: decimal, 0 to GC_THREADS_MAX. */
static int parse_thread_count(const char *value, const char *name, const char *accepted,
                              unsigned *out, ugc_error *error) {
  char *end;
  errno = 0;
  long threads = strtol(value, &end, 10);
  if (value[0] < '0' || value[0] > '9' || *end || errno || threads > (long)GC_THREADS_MAX)
    return bad_env(error, name, value, accepted);
  *out = (unsigned)threads;
  return 0;
}

static bool backend_name_known(const char *name) {
  if (!strcmp(name, "auto"))
    return true;
  for (size_t i = 0; ugc_backend_names[i]; i++)
    if (!strcmp(name, ugc_backend_names[i]))
      return true;
  return false;
}

static bool delivery_known(const char *name) {
  return !strcmp(name, "sigbus") || !strcmp(name, "thread");
}

#define BACKENDS_ACCEPTED "auto, stw, sigsegv, copy, minor or move"
#define DELIVERY_ACCEPTED "sigbus or thread"
#define VERIFY_ACCEPTED "1 (on), 2 (on, compactions finished in the pause) or 0 (off)"
#define CONCURRENT_MARK_ACCEPTED "1 (mark while mutators run) or 0 (mark in the pause)"
#define MARK_ASSIST_ACCEPTED "1 (mutators help a concurrent marking) or 0"
#define HUGE_PAGES_ACCEPTED "auto (the backend's choice), 1 (on) or 0 (off)"
#define COMPACT_THREADS_ACCEPTED "0 (automatic: gc_threads - 1, at least 1) to 64"
#define GC_THREADS_ACCEPTED "0 (automatic: the number of CPUs, at most 8) to 64"
#define HEAP_MAX_ACCEPTED "a size from 1M to 64T (suffix K, M, G or T)"

/* The environment, each variable checked against its own rule. */
static int apply_environment(ugc_config *config, ugc_error *error) {
  const char *value;
  bool flag;
  if ((value = env("UFFDGC_BACKEND"))) {
    if (!backend_name_known(value))
      return bad_env(error, "UFFDGC_BACKEND", value, BACKENDS_ACCEPTED);
    config->backend = value;
  }
  if ((value = env("UFFDGC_DELIVERY"))) {
    if (!delivery_known(value))
      return bad_env(error, "UFFDGC_DELIVERY", value, DELIVERY_ACCEPTED);
    config->delivery = value;
  }
  if ((value = env("UFFDGC_TRACE"))) {
    if (!parse_bool(value, &flag))
      return bad_env(error, "UFFDGC_TRACE", value, "1 (on) or 0 (off)");
    config->trace = flag;
  }
  if ((value = env("UFFDGC_VERIFY"))) {
    if (!strcmp(value, "2"))
      config->verify = 2;
    else if (parse_bool(value, &flag))
      config->verify = flag;
    else
      return bad_env(error, "UFFDGC_VERIFY", value, VERIFY_ACCEPTED);
  }
  if ((value = env("UFFDGC_CONCURRENT_MARK"))) {
    if (!parse_bool(value, &flag))
      return bad_env(error, "UFFDGC_CONCURRENT_MARK", value, CONCURRENT_MARK_ACCEPTED);
    config->concurrent_mark = flag;
  }
  if ((value = env("UFFDGC_MARK_ASSIST"))) {
    if (!parse_bool(value, &flag))
      return bad_env(error, "UFFDGC_MARK_ASSIST", value, MARK_ASSIST_ACCEPTED);
    config->mark_assist = flag;
  }
  if ((value = env("UFFDGC_UNTOUCHED_CONCURRENT"))) {
    if (!parse_bool(value, &flag))
      return bad_env(error, "UFFDGC_UNTOUCHED_CONCURRENT", value, "1 (on) or 0 (off)");
    config->untouched_concurrent = flag;
  }
  if ((value = env("UFFDGC_THP"))) {
    if (!strcmp(value, "auto"))
      config->huge_pages = UGC_HUGE_PAGES_AUTO;
    else if (parse_bool(value, &flag))
      config->huge_pages = flag ? UGC_HUGE_PAGES_ON : UGC_HUGE_PAGES_OFF;
    else
      return bad_env(error, "UFFDGC_THP", value, HUGE_PAGES_ACCEPTED);
  }
  if ((value = env("UFFDGC_CHECK"))) {
    if (!parse_bool(value, &flag))
      return bad_env(error, "UFFDGC_CHECK", value, "1 (on) or 0 (off)");
    config->check = flag;
  }
  if ((value = env("UFFDGC_HEAP_MAX"))) {
    size_t size;
    if (!ugc_size_parse(value, &size) || size < UGC_HEAP_MAX_MIN || size > UGC_HEAP_MAX_LIMIT)
      return bad_env(error, "UFFDGC_HEAP_MAX", value, HEAP_MAX_ACCEPTED);
    config->heap_max = size;
  }
  if ((value = env("UFFDGC_GC_THREADS")) &&
      parse_thread_count(value, "UFFDGC_GC_THREADS", GC_THREADS_ACCEPTED, &config->gc_threads,
                         error) != 0)
    return -1;
  if ((value = env("UFFDGC_COMPACT_THREADS")) &&
      parse_thread_count(value, "UFFDGC_COMPACT_THREADS", COMPACT_THREADS_ACCEPTED,
                         &config->compact_threads, error) != 0)
    return -1;
  char bad[64];
  if ((value = env("UFFDGC_DISABLE")) && !ugc_disable_list_check(value, bad, sizeof bad)) {
    ugc_set_error(error, UGC_ERR_INVALID,
                  "ugc_heap_create: UFFDGC_DISABLE=\"%s\": unknown name \"%s\"; expected a "
                  "comma-separated list of: " UGC_DISABLE_KNOWN_NAMES,
                  value, bad);
    return -1;
  }
  if ((value = env("UFFDGC_INJECT")) && !ugc_inject_list_check(value, bad, sizeof bad)) {
    ugc_set_error(
        error, UGC_ERR_INVALID,
        "ugc_heap_create: UFFDGC_INJECT=\"%s\": bad entry \"%s\"; expected a "
        "comma-separated list of point or point:N (N from 1), points: " UGC_INJECT_KNOWN_POINTS,
        value, bad);
    return -1;
  }
  return 0;
}

static int bad_field(ugc_error *error, const char *field, const char *value, const char *accepted) {
  ugc_set_error(error, UGC_ERR_INVALID, "ugc_heap_create: config.%s = %s: expected %s", field,
                value, accepted);
  return -1;
}

/* A size field's value as given, and for a person. */
static int bad_size_field(ugc_error *error, const char *field, size_t bytes, const char *accepted) {
  char text[64], human[24];
  snprintf(text, sizeof text, "%zu (%s)", bytes, ugc_size_format(bytes, human, sizeof human));
  return bad_field(error, field, text, accepted);
}

/* The fields, after the environment: zero takes the default, anything else must be valid. */
static int check_fields(ugc_config *config, ugc_error *error) {
  char text[64];
  if (!config->backend || !*config->backend)
    config->backend = "auto";
  if (!backend_name_known(config->backend)) {
    snprintf(text, sizeof text, "\"%.48s\"", config->backend);
    return bad_field(error, "backend", text, BACKENDS_ACCEPTED);
  }
  if (!config->delivery || !*config->delivery)
    config->delivery = "sigbus";
  if (!delivery_known(config->delivery)) {
    snprintf(text, sizeof text, "\"%.48s\"", config->delivery);
    return bad_field(error, "delivery", text, DELIVERY_ACCEPTED);
  }
  if (config->verify < 0 || config->verify > 2) {
    snprintf(text, sizeof text, "%d", config->verify);
    return bad_field(error, "verify", text, VERIFY_ACCEPTED);
  }
  if (config->concurrent_mark != 0 && config->concurrent_mark != 1) {
    snprintf(text, sizeof text, "%d", config->concurrent_mark);
    return bad_field(error, "concurrent_mark", text, CONCURRENT_MARK_ACCEPTED);
  }
  if (config->huge_pages != UGC_HUGE_PAGES_AUTO && config->huge_pages != UGC_HUGE_PAGES_ON &&
      config->huge_pages != UGC_HUGE_PAGES_OFF) {
    snprintf(text, sizeof text, "%d", (int)config->huge_pages);
    return bad_field(error, "huge_pages", text,
                     "UGC_HUGE_PAGES_AUTO (0), UGC_HUGE_PAGES_ON (1) or UGC_HUGE_PAGES_OFF (2)");
  }
  if (config->mark_assist != 0 && config->mark_assist != 1) {
    snprintf(text, sizeof text, "%d", config->mark_assist);
    return bad_field(error, "mark_assist", text, MARK_ASSIST_ACCEPTED);
  }
  if (config->gc_threads > GC_THREADS_MAX) {
    snprintf(text, sizeof text, "%u", config->gc_threads);
    return bad_field(error, "gc_threads", text, GC_THREADS_ACCEPTED);
  }
  if (config->gc_threads == 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    config->gc_threads = cpus < 1                                    ? 1
                         : (unsigned long)cpus > GC_THREADS_AUTO_MAX ? GC_THREADS_AUTO_MAX
                                                                     : (unsigned)cpus;
  }
  if (config->compact_threads > GC_THREADS_MAX) {
    snprintf(text, sizeof text, "%u", config->compact_threads);
    return bad_field(error, "compact_threads", text, COMPACT_THREADS_ACCEPTED);
  }
  if (config->compact_threads == 0) /* compaction runs beside the application: leave a CPU */
    config->compact_threads = config->gc_threads > 1 ? config->gc_threads - 1 : 1;
  if (config->heap_max == 0)
    config->heap_max = 256 * MiB;
  if (config->heap_max < UGC_HEAP_MAX_MIN || config->heap_max > UGC_HEAP_MAX_LIMIT)
    return bad_size_field(error, "heap_max", config->heap_max, "1 MiB to 64 TiB");
  config->heap_max = (config->heap_max + 4095) & ~(size_t)4095;
  /* Not an error: heap_max may come from UFFDGC_HEAP_MAX, below the default heap_initial. */
  if (config->heap_initial == 0 || config->heap_initial > config->heap_max)
    config->heap_initial = config->heap_max;
  if (config->nonmoving_max == 0)
    config->nonmoving_max = 64 * MiB;
  if (config->nonmoving_max > UGC_NONMOVING_MAX_LIMIT)
    return bad_size_field(error, "nonmoving_max", config->nonmoving_max, "at most 1 TiB");
  if (config->large_threshold == 0)
    config->large_threshold = 128 * 1024;
  if (config->large_threshold < 256 || config->large_threshold > 16 * MiB)
    return bad_size_field(error, "large_threshold", config->large_threshold, "256 bytes to 16 MiB");
  if (config->safepoint_timeout_ms == 0)
    config->safepoint_timeout_ms = 10000;
  if (config->growth_factor == 0)
    config->growth_factor = 2.0;
  if (!(config->growth_factor >= 1.0 && config->growth_factor <= 1000.0)) {
    snprintf(text, sizeof text, "%g", config->growth_factor);
    return bad_field(error, "growth_factor", text, "1.0 to 1000");
  }
  if (config->root_pointer_tag & ~config->root_pointer_tag_mask) {
    snprintf(text, sizeof text, "%#lx", (unsigned long)config->root_pointer_tag);
    return bad_field(error, "root_pointer_tag", text, "bits inside root_pointer_tag_mask");
  }
  if (config->root_reference_offset & config->root_tag_mask) {
    snprintf(text, sizeof text, "%#lx", (unsigned long)config->root_reference_offset);
    return bad_field(error, "root_reference_offset", text, "no bit inside root_tag_mask");
  }
  if (!config->trace_file)
    config->trace_file = stderr;
  return 0;
}

int ugc_config_resolve(ugc_config *config, ugc_error *error) {
  if (apply_environment(config, error) != 0)
    return -1;
  return check_fields(config, error);
}
