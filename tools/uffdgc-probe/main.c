/* uffdgc-probe: prints what this kernel offers and which backends uffdgc can use. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os/disable.h"
#include "os/procstat.h"
#include "os/remap.h"
#include "report.h"

const char *probe_errno_name(int err) {
  static __thread char buf[16];
  const char *name = strerrorname_np(err);
  if (name)
    return name;
  snprintf(buf, sizeof buf, "errno %d", err);
  return buf;
}

static void usage(FILE *out) {
  fprintf(out, "usage: uffdgc-probe [--json] [--no-measure] [--help]\n"
               "Prints what this kernel offers uffdgc: userfaultfd open paths, feature bits,\n"
               "ioctls, THP settings, MREMAP_DONTUNMAP cost by alignment, and which backends\n"
               "can run here.\n"
               "  --json        one JSON object instead of tables\n"
               "  --no-measure  skip the mremap timing (about 0.5 s)\n"
               "  --help        this text\n"
               "UFFDGC_DISABLE=name,... masks features as documented in src/os/disable.h.\n");
}

static void collect(probe_report *r, bool measure) {
  memset(r, 0, sizeof *r);
  if (ugc_kernel_release(r->kernel, sizeof r->kernel) != 0)
    strcpy(r->kernel, "unknown");
  r->disable_list = ugc_disable_list();
  r->caps_rc = ugc_uffd_probe(&r->caps);
  r->unprivileged_userfaultfd = ugc_proc_unprivileged_userfaultfd();
  if (ugc_thp_setting("enabled", r->thp_enabled, sizeof r->thp_enabled))
    strcpy(r->thp_enabled, "unknown");
  if (ugc_thp_setting("defrag", r->thp_defrag, sizeof r->thp_defrag))
    strcpy(r->thp_defrag, "unknown");
  if (ugc_thp_setting("shmem_enabled", r->thp_shmem, sizeof r->thp_shmem))
    strcpy(r->thp_shmem, "unknown");
  r->dontunmap_anon = ugc_remap_dontunmap_works(false);
  r->dontunmap_shmem = ugc_remap_dontunmap_works(true);
  if (measure)
    probe_measure_remap(r);
  else
    snprintf(r->measure_note, sizeof r->measure_note, "skipped (--no-measure)");

  for (int i = 0; ugc_backend_names[i] && r->backend_count < PROBE_MAX_BACKENDS; i++) {
    probe_backend *b = &r->backends[r->backend_count++];
    b->name = ugc_backend_names[i];
    b->available = ugc_backend_availability(b->name, b->reason, sizeof b->reason) == 1;
    b->implemented = ugc_backend_is_implemented(b->name);
  }
  /* auto, as the library resolves it: the first backend in preference order that exists
   * and that the kernel offers. Each one passed over on the way is kept with its reason. */
  for (int i = 0; ugc_backend_preference[i]; i++)
    for (int j = 0; j < r->backend_count; j++) {
      const probe_backend *b = &r->backends[j];
      if (strcmp(b->name, ugc_backend_preference[i]) != 0)
        continue;
      if (!r->kernel_best && b->available)
        r->kernel_best = b->name;
      if (r->auto_pick || r->auto_tried_count >= PROBE_MAX_BACKENDS)
        continue;
      r->auto_tried[r->auto_tried_count++] = b;
      if (b->implemented && b->available)
        r->auto_pick = b->name;
    }
  r->backend_env = getenv("UFFDGC_BACKEND");
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"no-measure", no_argument, NULL, 'n'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  bool json = false, measure = true;
  opterr = 0;
  for (;;) {
    int c = getopt_long(argc, argv, "jnh", opts, NULL);
    if (c == -1)
      break;
    switch (c) {
    case 'j':
      json = true;
      break;
    case 'n':
      measure = false;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      fprintf(stderr, "uffdgc-probe: unknown option '%s'\n", argv[optind - 1]);
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "uffdgc-probe: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  probe_report r;
  collect(&r, measure);
  if (json)
    probe_print_json(&r);
  else
    probe_print_table(&r);
  return 0;
}
