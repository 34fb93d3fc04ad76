/* The machine-readable report: one JSON object, keys stable for scripts and CI. */
#include <stdio.h>
#include <string.h>

#include "report.h"

static void json_string(const char *s) {
  if (!s) {
    fputs("null", stdout);
    return;
  }
  putchar('"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      printf("\\%c", ch);
    else if (ch < 0x20)
      printf("\\u%04x", ch);
    else
      putchar(ch);
  }
  putchar('"');
}

static const char *b(bool v) {
  return v ? "true" : "false";
}

static void json_attempt(const char *key, const ugc_uffd_attempt *a, bool last) {
  static const char *states[] = {"not_tried", "disabled", "failed", "ok"};
  printf("      \"%s\": {\"state\": \"%s\"", key, states[a->state]);
  if (a->state == UGC_ATTEMPT_FAILED) {
    printf(", \"errno\": ");
    json_string(probe_errno_name(a->err));
    printf(", \"error\": ");
    json_string(strerror(a->err));
  }
  printf("}%s\n", last ? "" : ",");
}

static void json_features(const ugc_uffd_caps *c) {
  printf("    \"features\": [\n");
  bool first = true;
  for (int bit = 0; bit < 64; bit++) {
    const char *name = ugc_uffd_feature_name(bit);
    bool has = c->kernel_features >> bit & 1;
    if (!name && !has)
      continue;
    printf("%s      {\"bit\": %d, \"name\": ", first ? "" : ",\n", bit);
    json_string(name);
    printf(", \"supported\": %s, \"masked\": %s}", b(has), b(c->masked_features >> bit & 1));
    first = false;
  }
  printf("\n    ],\n");
}

static void json_ioctls(const ugc_uffd_caps *c) {
  static const int nrs[] = {
      _UFFDIO_API,      _UFFDIO_REGISTER, _UFFDIO_UNREGISTER,   _UFFDIO_WAKE,     _UFFDIO_COPY,
      _UFFDIO_ZEROPAGE, _UFFDIO_MOVE,     _UFFDIO_WRITEPROTECT, _UFFDIO_CONTINUE, _UFFDIO_POISON};
  printf("    \"ioctls\": [\n");
  for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
    int nr = nrs[i];
    printf("      {\"name\": \"%s\", \"nr\": %d, \"api\": %s, \"anon_missing\": %s, "
           "\"anon_wp\": %s, \"shmem_missing\": %s, \"shmem_minor\": %s, \"masked\": %s}%s\n",
           ugc_uffd_ioctl_name(nr), nr, b(c->api_ioctls >> nr & 1),
           b(c->anon_missing_ioctls >> nr & 1), b(c->anon_wp_ioctls >> nr & 1),
           b(c->shmem_missing_ioctls >> nr & 1), b(c->shmem_minor_ioctls >> nr & 1),
           b(c->masked_ioctls >> nr & 1), i + 1 < sizeof nrs / sizeof nrs[0] ? "," : "");
  }
  printf("    ]\n");
}

void probe_print_json(const probe_report *r) {
  const ugc_uffd_caps *c = &r->caps;
  printf("{\n  \"kernel\": ");
  json_string(r->kernel);
  printf(",\n  \"uffdgc_disable\": ");
  json_string(r->disable_list);
  printf(",\n  \"userfaultfd\": {\n    \"available\": %s,\n    \"reason\": ", b(c->available));
  json_string(c->available ? NULL : c->reason);
  printf(",\n    \"path\": ");
  json_string(c->available ? ugc_uffd_path_name(c->open.path) : NULL);
  if (r->unprivileged_userfaultfd >= 0)
    printf(",\n    \"unprivileged_userfaultfd\": %d", r->unprivileged_userfaultfd);
  else
    printf(",\n    \"unprivileged_userfaultfd\": null");
  /* UFFD_USER_MODE_ONLY: faults inside system calls are not handled (EFAULT) */
  printf(",\n    \"kernel_faults_handled\": %s",
         b(c->available && c->open.path != UGC_UFFD_PATH_SYSCALL_USER_MODE_ONLY));
  printf(",\n    \"paths\": {\n");
  json_attempt("dev", &c->dev, false);
  json_attempt("syscall", &c->syscall, false);
  json_attempt("user_mode_only", &c->user_mode_only, true);
  printf("    },\n    \"features_raw\": \"0x%llx\",\n    \"features_usable\": \"0x%llx\",\n",
         (unsigned long long)c->kernel_features, (unsigned long long)c->features);
  json_features(c);
  json_ioctls(c);
  printf("  },\n  \"thp\": {\"enabled\": ");
  json_string(r->thp_enabled);
  printf(", \"defrag\": ");
  json_string(r->thp_defrag);
  printf(", \"shmem_enabled\": ");
  json_string(r->thp_shmem);
  printf("},\n  \"mremap_dontunmap\": {\n    \"anon\": %s,\n    \"shmem\": %s,\n",
         b(r->dontunmap_anon), b(r->dontunmap_shmem));
  printf("    \"measured\": %s,\n    \"note\": ", b(r->measured));
  json_string(r->measure_note[0] ? r->measure_note : NULL);
  printf(",\n    \"reservation_1gib_aligned\": %s,\n    \"us_64mib\": {",
         b(r->reservation_align >= ((size_t)1 << 30)));
  for (int i = 0; i < 3; i++) {
    printf("\"%s\": ", r->timing[i].label ? r->timing[i].label : "?");
    if (r->timing[i].us >= 0)
      printf("%.1f", r->timing[i].us);
    else
      printf("null");
    printf("%s", i < 2 ? ", " : "");
  }
  printf("},\n    \"speedup_1gib_vs_4kib\": ");
  if (r->timing[0].us > 0 && r->timing[2].us > 0)
    printf("%.2f", r->timing[2].us / r->timing[0].us);
  else
    printf("null");
  printf("\n  },\n  \"backends\": [\n");
  for (int i = 0; i < r->backend_count; i++) {
    const probe_backend *pb = &r->backends[i];
    printf("    {\"name\": \"%s\", \"available\": %s, \"reason\": ", pb->name, b(pb->available));
    json_string(pb->available ? NULL : pb->reason);
    printf(", \"implemented\": %s}%s\n", b(pb->implemented), i + 1 < r->backend_count ? "," : "");
  }
  printf("  ],\n  \"auto\": ");
  json_string(r->auto_pick);
  printf(",\n  \"auto_order\": [");
  for (int i = 0; ugc_backend_preference[i]; i++)
    printf("%s\"%s\"", i ? ", " : "", ugc_backend_preference[i]);
  printf("],\n  \"auto_passed_over\": [");
  for (int i = 0, n = 0; i < r->auto_tried_count; i++) {
    const probe_backend *pb = r->auto_tried[i];
    if (pb->name == r->auto_pick)
      continue;
    printf("%s\n    {\"name\": \"%s\", \"why\": ", n++ ? "," : "", pb->name);
    json_string(!pb->implemented ? "not implemented yet" : pb->reason);
    printf("}");
  }
  printf("],\n  \"backend_env\": ");
  json_string(r->backend_env && *r->backend_env ? r->backend_env : NULL);
  printf(",\n  \"kernel_best\": ");
  json_string(r->kernel_best);
  printf("\n}\n");
}
