/* uffdgc-probe: what this kernel offers, gathered once, printed as a table or JSON. */
#ifndef UGC_PROBE_REPORT_H
#define UGC_PROBE_REPORT_H

#include <stdbool.h>

#include "backend/availability.h"
#include "uffd/uffd.h"

#define PROBE_MAX_BACKENDS 8

/* One mremap timing: class name and microseconds (negative: not measured). */
typedef struct probe_timing {
  const char *label; /* "1GiB", "2MiB", "4KiB" */
  double us;
} probe_timing;

typedef struct probe_backend {
  const char *name;
  bool available;   /* the kernel offers what it needs */
  char reason[256]; /* why not, when not available */
  bool implemented; /* the library has it (ugc_backend_is_implemented) */
} probe_backend;

typedef struct probe_report {
  char kernel[128];
  const char *disable_list;
  ugc_uffd_caps caps;
  int caps_rc;
  int unprivileged_userfaultfd; /* 0/1 or -errno */
  char thp_enabled[32], thp_defrag[32], thp_shmem[32];
  bool dontunmap_anon, dontunmap_shmem;
  bool measured;
  char measure_note[160];   /* why not measured, or a remark */
  size_t reservation_align; /* alignment a 1 GiB-aligned reservation obtained */
  probe_timing timing[3];
  probe_backend backends[PROBE_MAX_BACKENDS];
  int backend_count;
  const char *auto_pick;   /* NULL: none */
  const char *kernel_best; /* first available in auto order, implemented or not */
  /* The backends auto considers, in its order, up to and including the one it picks. */
  const probe_backend *auto_tried[PROBE_MAX_BACKENDS];
  int auto_tried_count;
  const char *backend_env; /* UFFDGC_BACKEND, which overrides auto in the library */
} probe_report;

/* Times mremap(DONTUNMAP) of 64 MiB populated memory per alignment class. */
void probe_measure_remap(probe_report *r);

/* Prints the report as aligned tables on stdout. */
void probe_print_table(const probe_report *r);

/* Prints the report as one JSON object on stdout. */
void probe_print_json(const probe_report *r);

/* "EPERM" style name of an errno value (or its number). */
const char *probe_errno_name(int err);

#endif
