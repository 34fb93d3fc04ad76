/* Configuration: defaults, environment overrides, validation. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/config.h"
#include "runtime/heap.h"

#define MiB ((size_t)1 << 20)

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
}

/* "512M", "2G", "64K", "1048576" (bytes). */
static bool parse_size(const char *text, size_t *out) {
  errno = 0;
  char *end;
  unsigned long long value = strtoull(text, &end, 10);
  if (end == text || errno || text[0] == '-')
    return false;
  unsigned shift = 0;
  switch (toupper((unsigned char)*end)) {
  case 'K':
    shift = 10;
    end++;
    break;
  case 'M':
    shift = 20;
    end++;
    break;
  case 'G':
    shift = 30;
    end++;
    break;
  case 'T':
    shift = 40;
    end++;
    break;
  default:
    break;
  }
  if (*end == 'i' && shift)
    end++;
  if ((*end == 'B' || *end == 'b') && shift)
    end++;
  if (*end || (shift && value > (~0ull >> shift)))
    return false;
  *out = (size_t)(value << shift);
  return true;
}

static bool parse_bool(const char *text, bool *out) {
  if (!strcmp(text, "1") || !strcmp(text, "yes") || !strcmp(text, "true") || !strcmp(text, "on")) {
    *out = true;
    return true;
  }
  if (!strcmp(text, "0") || !strcmp(text, "no") || !strcmp(text, "false") || !strcmp(text, "off") ||
      !*text) {
    *out = false;
    return true;
  }
  return false;
}

int ugc_config_resolve(ugc_config *config, ugc_error *error) {
  const char *value;
  bool flag;
  if ((value = getenv("UFFDGC_BACKEND")) && *value)
    config->backend = value;
  if ((value = getenv("UFFDGC_TRACE"))) {
    if (!parse_bool(value, &flag)) {
      ugc_set_error(error, UGC_ERR_INVALID, "ugc_heap_create: UFFDGC_TRACE=\"%s\": expected 1 or 0",
                    value);
      return -1;
    }
    config->trace = flag;
  }
  if ((value = getenv("UFFDGC_VERIFY"))) {
    if (!parse_bool(value, &flag)) {
      ugc_set_error(error, UGC_ERR_INVALID,
                    "ugc_heap_create: UFFDGC_VERIFY=\"%s\": expected 1 or 0", value);
      return -1;
    }
    config->verify = flag;
  }
  if ((value = getenv("UFFDGC_CONCURRENT_MARK"))) {
    if (!parse_bool(value, &flag)) {
      ugc_set_error(error, UGC_ERR_INVALID,
                    "ugc_heap_create: UFFDGC_CONCURRENT_MARK=\"%s\": expected 1 or 0", value);
      return -1;
    }
    config->concurrent_mark = flag;
  }
  if ((value = getenv("UFFDGC_HEAP_MAX"))) {
    size_t size;
    if (!parse_size(value, &size) || size == 0) {
      ugc_set_error(error, UGC_ERR_INVALID,
                    "ugc_heap_create: UFFDGC_HEAP_MAX=\"%s\": expected a size such as "
                    "512M or 2G",
                    value);
      return -1;
    }
    config->heap_max = size;
  }
  if ((value = getenv("UFFDGC_DELIVERY")) && *value)
    config->delivery = value;
  if ((value = getenv("UFFDGC_GC_THREADS"))) {
    char *end;
    errno = 0;
    long threads = strtol(value, &end, 10);
    if (end == value || *end || errno || threads < 0 || threads > 64) {
      ugc_set_error(error, UGC_ERR_INVALID,
                    "ugc_heap_create: UFFDGC_GC_THREADS=\"%s\": expected 0 (automatic) to 64",
                    value);
      return -1;
    }
    config->gc_threads = (unsigned)threads;
  }

  /* Defaults for zero fields, then the checks. */
  if (!config->backend || !*config->backend)
    config->backend = "auto";
  if (!config->delivery || !*config->delivery)
    config->delivery = "sigbus";
  if (strcmp(config->delivery, "sigbus") && strcmp(config->delivery, "thread")) {
    ugc_set_error(error, UGC_ERR_INVALID,
                  "ugc_heap_create: delivery \"%s\" (UFFDGC_DELIVERY or config.delivery): "
                  "expected \"sigbus\" or \"thread\"",
                  config->delivery);
    return -1;
  }
  if (config->gc_threads == 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    config->gc_threads = cpus < 1 ? 1 : cpus > 8 ? 8 : (unsigned)cpus;
  }
  if (config->gc_threads > 64) {
    ugc_set_error(error, UGC_ERR_INVALID, "ugc_heap_create: gc_threads %u: at most 64",
                  config->gc_threads);
    return -1;
  }
  if (config->heap_max < MiB || config->heap_max > ((size_t)1 << 46)) {
    ugc_set_error(error, UGC_ERR_INVALID, "ugc_heap_create: heap_max %zu: expected 1 MiB to 64 TiB",
                  config->heap_max);
    return -1;
  }
  config->heap_max = (config->heap_max + 4095) & ~(size_t)4095;
  if (config->heap_initial == 0 || config->heap_initial > config->heap_max)
    config->heap_initial = config->heap_max;
  if (config->nonmoving_max == 0)
    config->nonmoving_max = 64 * MiB;
  if (config->nonmoving_max > ((size_t)1 << 40)) {
    ugc_set_error(error, UGC_ERR_INVALID, "ugc_heap_create: nonmoving_max %zu: at most 1 TiB",
                  config->nonmoving_max);
    return -1;
  }
  if (config->large_threshold == 0)
    config->large_threshold = 128 * 1024;
  if (config->large_threshold < 256 || config->large_threshold > 16 * MiB) {
    ugc_set_error(error, UGC_ERR_INVALID,
                  "ugc_heap_create: large_threshold %zu: expected 256 bytes to 16 MiB",
                  config->large_threshold);
    return -1;
  }
  if (config->growth_factor == 0)
    config->growth_factor = 2.0;
  if (!(config->growth_factor >= 1.0 && config->growth_factor <= 1000.0)) {
    ugc_set_error(error, UGC_ERR_INVALID, "ugc_heap_create: growth_factor %g: expected 1.0 to 1000",
                  config->growth_factor);
    return -1;
  }
  if (!config->trace_file)
    config->trace_file = stderr;
  return 0;
}
