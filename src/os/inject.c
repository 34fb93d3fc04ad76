/* UFFDGC_INJECT parsing and counting (see inject.h). */
#include "os/inject.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os/log.h"

static const char *const known_points[] = {"copy.mremap",
                                           "copy.register",
                                           "copy.unregister",
                                           "copy.page_states",
                                           "copy.stray_read",
                                           "copy.reopen",
                                           "handoff.held_stretch",
                                           "compact.threads",
                                           "compact.late_start",
                                           "plan.tables",
                                           "plan.no_untouched",
                                           "plan.small_rounds",
                                           "uffd.eagain",
                                           "uffd.partial",
                                           "uffd.eexist",
                                           "uffd.enoent",
                                           "uffd.esrch",
                                           "uffd.enomem",
                                           "uffd.efault",
                                           "uffd.ebusy",
                                           "copy.update_mremap",
                                           "copy.update_register",
                                           "copy.update_slow_handoff",
                                           "move.busy",
                                           "move.eexist_moved",
                                           "sigsegv.flip",
                                           "sigsegv.mprotect",
                                           "sigsegv.page_states",
                                           "minor.flip",
                                           "minor.register",
                                           "minor.page_states",
                                           "minor.drop_mapped",
                                           "minor.no_keep",
                                           "sigsegv.update_mremap",
                                           "sigsegv.update_mprotect",
                                           "minor.copy_kept"};
#define POINT_COUNT (sizeof known_points / sizeof known_points[0])

static int point_index(const char *name, size_t length) {
  for (size_t i = 0; i < POINT_COUNT; i++)
    if (strlen(known_points[i]) == length && !strncmp(known_points[i], name, length))
      return (int)i;
  return -1;
}

bool ugc_inject_list_check(const char *list, char *bad_entry, size_t bad_len) {
  while (*list) {
    size_t length = strcspn(list, ",");
    size_t name_length = strcspn(list, ",:");
    if (name_length > length)
      name_length = length;
    bool ok = point_index(list, name_length) >= 0;
    if (ok && name_length < length) { /* ":N", N a positive decimal number */
      const char *digits = list + name_length + 1;
      size_t digit_count = strspn(digits, "0123456789");
      ok = digit_count > 0 && digit_count == length - name_length - 1 && digit_count < 10 &&
           strtoul(digits, NULL, 10) > 0;
    }
    if (!ok && length) {
      snprintf(bad_entry, bad_len, "%.*s", (int)length, list);
      return false;
    }
    list += length;
    if (*list == ',')
      list++;
  }
  return true;
}

#ifndef UGC_NO_FAULT_INJECTION
/* Compiled out of builds without fault injection (inject.h). */

typedef struct injection {
  bool armed;
  unsigned long nth; /* 0: every call */
  _Atomic unsigned long calls;
} injection;

static injection injections[POINT_COUNT];
static bool any_armed;
static pthread_once_t parse_once = PTHREAD_ONCE_INIT;

static void parse(void) {
  /* NULL under secure execution: a setuid program's caller must not inject faults. */
  const char *value = secure_getenv("UFFDGC_INJECT");
  if (!value)
    return;
  while (*value) {
    size_t length = strcspn(value, ",");
    size_t name_length = strcspn(value, ",:");
    if (name_length > length)
      name_length = length;
    int index = point_index(value, name_length);
    if (index < 0) {
      ugc_warn("UFFDGC_INJECT: unknown point \"%.*s\" ignored", (int)name_length, value);
    } else {
      injections[index].armed = true;
      injections[index].nth = name_length < length ? strtoul(value + name_length + 1, NULL, 10) : 0;
      any_armed = true;
    }
    value += length;
    if (*value == ',')
      value++;
  }
}

bool ugc_inject_armed(void) {
  pthread_once(&parse_once, parse);
  return any_armed;
}

bool ugc_inject(const char *point) {
  pthread_once(&parse_once, parse);
  if (!any_armed)
    return false;
  int index = point_index(point, strlen(point));
  if (index < 0 || !injections[index].armed)
    return false;
  unsigned long call = atomic_fetch_add(&injections[index].calls, 1) + 1;
  return injections[index].nth == 0 || injections[index].nth == call;
}

#endif
