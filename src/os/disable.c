/* Parses UFFDGC_DISABLE once into a bit set of known names. */
#include "os/disable.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os/log.h"

/* Keep in sync with the list in disable.h. */
static const char *const known_names[] = {
    "uffd",      "dev",  "syscall", "user_mode_only", "sigbus",    "thread",
    "minor",     "move", "wp",      "poison",         "thread_id", "shmem",
    "dontunmap", "thp",  "memfd",   "copy",           "sigsegv",
};
#define KNOWN_COUNT (sizeof known_names / sizeof known_names[0])
_Static_assert(KNOWN_COUNT <= 64, "disabled set is one 64-bit word");

static pthread_once_t parse_once = PTHREAD_ONCE_INIT;
static uint64_t disabled_bits;
static char raw_value[256];

static int known_index(const char *name, size_t len) {
  for (size_t i = 0; i < KNOWN_COUNT; i++)
    if (strlen(known_names[i]) == len && memcmp(known_names[i], name, len) == 0)
      return (int)i;
  return -1;
}

static void parse_env(void) {
  const char *env = secure_getenv("UFFDGC_DISABLE"); /* NULL in setuid programs */
  if (!env)
    return;
  strncpy(raw_value, env, sizeof raw_value - 1);
  const char *p = env;
  while (*p) {
    while (*p == ' ' || *p == ',')
      p++;
    const char *start = p;
    while (*p && *p != ',')
      p++;
    const char *end = p;
    while (end > start && end[-1] == ' ')
      end--;
    if (end == start)
      continue;
    int idx = known_index(start, (size_t)(end - start));
    if (idx >= 0)
      disabled_bits |= 1ull << idx;
    else
      ugc_warn("UFFDGC_DISABLE: unknown name '%.*s' ignored (known: " UGC_DISABLE_KNOWN_NAMES ")",
               (int)(end - start), start);
  }
}

bool ugc_feature_disabled(const char *name) {
  pthread_once(&parse_once, parse_env);
  int idx = known_index(name, strlen(name));
  return idx >= 0 && (disabled_bits >> idx & 1);
}

bool ugc_disable_list_check(const char *list, char *bad_name, size_t bad_len) {
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == ',')
      p++;
    const char *start = p;
    while (*p && *p != ',')
      p++;
    const char *end = p;
    while (end > start && end[-1] == ' ')
      end--;
    if (end > start && known_index(start, (size_t)(end - start)) < 0) {
      snprintf(bad_name, bad_len, "%.*s", (int)(end - start), start);
      return false;
    }
  }
  return true;
}

bool ugc_feature_name_known(const char *name) {
  return known_index(name, strlen(name)) >= 0;
}

const char *ugc_disable_list(void) {
  pthread_once(&parse_once, parse_env);
  return raw_value;
}
