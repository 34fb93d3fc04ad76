/* The human-readable report. */
#include <stdio.h>
#include <string.h>

#include "os/remap.h"
#include "report.h"

static const int ioctl_order[] = {
    _UFFDIO_API,      _UFFDIO_REGISTER, _UFFDIO_UNREGISTER,   _UFFDIO_WAKE,     _UFFDIO_COPY,
    _UFFDIO_ZEROPAGE, _UFFDIO_MOVE,     _UFFDIO_WRITEPROTECT, _UFFDIO_CONTINUE, _UFFDIO_POISON};

static const char *mark(uint64_t mask, int nr) {
  return (mask >> nr & 1) ? "yes" : "-";
}

static void print_attempt(const char *what, const ugc_uffd_attempt *a) {
  switch (a->state) {
  case UGC_ATTEMPT_OK:
    printf("  %-28s works\n", what);
    break;
  case UGC_ATTEMPT_DISABLED:
    printf("  %-28s disabled by UFFDGC_DISABLE\n", what);
    break;
  case UGC_ATTEMPT_FAILED:
    printf("  %-28s fails: %s (%s)\n", what, probe_errno_name(a->err), strerror(a->err));
    break;
  default:
    printf("  %-28s not tried\n", what);
    break;
  }
}

static bool in_preference(const char *name) {
  for (int i = 0; ugc_backend_preference[i]; i++)
    if (strcmp(ugc_backend_preference[i], name) == 0)
      return true;
  return false;
}

/* The pick, the order auto tries backends in, and why each earlier one was passed over. */
static void print_auto(const probe_report *r) {
  printf("\nauto would pick: %s\n", r->auto_pick ? r->auto_pick : "nothing (no backend can run)");
  printf("  auto tries");
  for (int i = 0; ugc_backend_preference[i]; i++)
    printf("%s %s", i ? "," : "", ugc_backend_preference[i]);
  printf(" in that order");
  int left_out = 0;
  for (int i = 0; i < r->backend_count; i++)
    if (!in_preference(r->backends[i].name))
      printf("%s%s", left_out++ ? ", " : " (never ", r->backends[i].name);
  printf("%s:\n", left_out ? ": only when named)" : "");
  for (int i = 0; i < r->auto_tried_count; i++) {
    const probe_backend *b = r->auto_tried[i];
    if (b->name == r->auto_pick)
      printf("  %-8s picked: implemented, and the kernel offers what it needs\n", b->name);
    else if (!b->implemented)
      printf("  %-8s passed over: not implemented yet\n", b->name);
    else
      printf("  %-8s passed over: cannot run here (%s)\n", b->name, b->reason);
  }
  printf("  (a backend that cannot start when a heap is created is passed over too; "
         "UFFDGC_TRACE=1 shows it)\n");
  if (r->backend_env && *r->backend_env)
    printf("UFFDGC_BACKEND=%s is set: heaps created here use it instead of auto\n", r->backend_env);
}

void probe_print_table(const probe_report *r) {
  const ugc_uffd_caps *c = &r->caps;
  printf("kernel                         %s\n", r->kernel);
  printf("UFFDGC_DISABLE                 %s\n", r->disable_list[0] ? r->disable_list : "(unset)");
  if (r->unprivileged_userfaultfd >= 0)
    printf("vm.unprivileged_userfaultfd    %d\n", r->unprivileged_userfaultfd);
  else
    printf("vm.unprivileged_userfaultfd    unreadable (%s)\n",
           probe_errno_name(-r->unprivileged_userfaultfd));

  printf("\nuserfaultfd: %s", c->available ? "available" : "unavailable");
  if (c->available)
    printf(" (opened via %s)\n", ugc_uffd_path_name(c->open.path));
  else
    printf(": %s\n", c->reason);
  print_attempt("/dev/userfaultfd", &c->dev);
  print_attempt("userfaultfd syscall", &c->syscall);
  print_attempt("UFFD_USER_MODE_ONLY syscall", &c->user_mode_only);
  if (c->available && c->open.path == UGC_UFFD_PATH_SYSCALL_USER_MODE_ONLY)
    printf("  note: only UFFD_USER_MODE_ONLY is open to this process: system calls into heap\n"
           "  objects not yet compacted fail with EFAULT in BOTH delivery modes (thread delivery\n"
           "  does not help). Ways out: pinned objects or own buffers for system calls,\n"
           "  ugc_collect(m, UGC_COLLECT_FINISH) before them, or full userfaultfd\n"
           "  (vm.unprivileged_userfaultfd=1, access to /dev/userfaultfd, CAP_SYS_PTRACE).\n");

  if (c->available) {
    printf("\nfeatures (UFFDIO_API: 0x%llx)\n", (unsigned long long)c->kernel_features);
    for (int bit = 0; bit < 64; bit++) {
      const char *name = ugc_uffd_feature_name(bit);
      bool has = c->kernel_features >> bit & 1;
      if (!name && !has)
        continue;
      const char *state = !has                              ? "unsupported"
                          : (c->masked_features >> bit & 1) ? "supported, masked by UFFDGC_DISABLE"
                                                            : "supported";
      printf("  %2d %-22s %s\n", bit, name ? name : "(unknown)", state);
    }
    printf("\nioctls        api   anon:missing anon:wp shmem:missing shmem:minor masked\n");
    for (size_t i = 0; i < sizeof ioctl_order / sizeof ioctl_order[0]; i++) {
      int nr = ioctl_order[i];
      printf("  %-12s %-5s %-12s %-7s %-13s %-11s %s\n", ugc_uffd_ioctl_name(nr),
             mark(c->api_ioctls, nr), mark(c->anon_missing_ioctls, nr), mark(c->anon_wp_ioctls, nr),
             mark(c->shmem_missing_ioctls, nr), mark(c->shmem_minor_ioctls, nr),
             mark(c->masked_ioctls, nr));
    }
  }

  printf("\ntransparent huge pages         enabled=%s defrag=%s shmem_enabled=%s\n", r->thp_enabled,
         r->thp_defrag, r->thp_shmem);
  printf("MREMAP_DONTUNMAP               anonymous: %s, shmem: %s\n",
         r->dontunmap_anon ? "works" : "unavailable", r->dontunmap_shmem ? "works" : "unavailable");
  if (r->measured) {
    printf("1 GiB-aligned reservation      alignment obtained: %s -> cost class %s\n",
           r->reservation_align >= ((size_t)1 << 30) ? "1GiB" : "less than 1GiB",
           r->reservation_align >= ((size_t)1 << 30) ? "1GiB (whole page-table moves)"
                                                     : "degraded");
    printf("mremap DONTUNMAP 64 MiB        ");
    for (int i = 0; i < 3; i++)
      printf("%s-aligned %.1f us%s", r->timing[i].label, r->timing[i].us, i < 2 ? ", " : "\n");
    if (r->timing[0].us > 0 && r->timing[2].us > 0)
      printf("                               aligned ends move %.1fx faster than 4 KiB-aligned "
             "(below 1 GiB, 1 GiB and 2 MiB alignment both move whole PMD entries)\n",
             r->timing[2].us / r->timing[0].us);
  } else {
    printf("mremap DONTUNMAP timing        not measured: %s\n", r->measure_note);
  }

  printf("\nbackends\n");
  for (int i = 0; i < r->backend_count; i++) {
    const probe_backend *b = &r->backends[i];
    printf("  %-8s %s; ", b->name, b->implemented ? "implemented" : "not implemented yet");
    if (b->available)
      printf("the kernel %s what it needs\n", b->implemented ? "offers" : "would offer");
    else
      printf("cannot run here: %s\n", b->reason);
  }
  print_auto(r);
}
