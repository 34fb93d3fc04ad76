/* Parses the command line. Every bad option or value is reported on stderr by name and
 * makes the program exit with status 2. */
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/sizes.h"

const char *const bench_backend_names[] = {"stw", "sigsegv", "copy", "minor", "move"};
const size_t bench_backend_name_count = sizeof bench_backend_names / sizeof bench_backend_names[0];

void bench_print_usage(FILE *out) {
  fprintf(out, "usage: uffdgc-bench [options]\n"
               "\n"
               "Runs garbage-collection workloads on uffdgc (and bdwgc for comparison), each\n"
               "(workload, backend) in its own child process, and prints a footer per run and a\n"
               "comparison table.\n"
               "\n"
               "options:\n"
               "  --workload NAME|all   workloads, comma-separated (default all):\n");
  for (size_t i = 0; i < bench_workload_count; i++)
    fprintf(out, "                          %-12s %s%s\n", bench_workloads[i].name,
            bench_workloads[i].desc, bench_workloads[i].opt_in ? " (not in all)" : "");
  fprintf(out,
          "  --backend NAME|all    auto, stw, sigsegv, copy, minor, move, comma-separated;\n"
          "                        all = every backend, unavailable ones listed as skipped\n"
          "                        (default UFFDGC_BACKEND when set, else auto)\n"
          "  --delivery LIST       fault delivery of the concurrent backends: sigbus,\n"
          "                        thread or both (sigbus,thread: one row each); sets\n"
          "                        config.delivery (default: UFFDGC_DELIVERY, else sigbus)\n"
          "  --heap SIZE           maximum heap: bytes with a K/M/G/T suffix, 1M to 64T, read\n"
          "                        as the library reads UFFDGC_HEAP_MAX (default per workload;\n"
          "                        UFFDGC_HEAP_MAX when set)\n"
          "  --threads N           mutator threads of mt and compact (default 2)\n"
          "  --scale N             work size; 1 is a quick smoke test (default %d)\n"
          "  --repeat N            run each row N times, report the median by wall time\n"
          "  --verify              heap verifier every cycle, graph digest around explicit\n"
          "                        collections; any failure gives a non-zero exit\n"
          "  --json FILE           write all results as a JSON array to FILE\n"
          "  --compare bdw         also run gcbench and frag on bdwgc%s\n"
          "  --plot DIR            write PNG charts (pauses, stalls, frag RSS) with gnuplot\n"
          "  --help                this text\n"
          "\n"
          "exit status: 0 all runs passed (skipped backends are fine), 1 a run failed or\n"
          "verification found a problem, 2 bad usage.\n",
          BENCH_DEFAULT_SCALE, bench_have_bdw ? "" : " (not built: install libgc-dev)");
}

static int usage_error(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "uffdgc-bench: ");
  fprintf(stderr, fmt, a, b);
  fprintf(stderr, "\n(see uffdgc-bench --help)\n");
  return 2;
}

/* Sizes as the library reads UFFDGC_HEAP_MAX: its own parser and its limits for heap_max. */
static bool parse_size(const char *text, size_t *out) {
  return ugc_size_parse(text, out) && *out >= UGC_HEAP_MAX_MIN && *out <= UGC_HEAP_MAX_LIMIT;
}

static bool parse_count(const char *text, unsigned max, unsigned *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(text, &end, 10);
  if (errno || end == text || *end || text[0] == '-' || v == 0 || v > max)
    return false;
  *out = (unsigned)v;
  return true;
}

static bool known_backend(const char *name) {
  if (strcmp(name, "auto") == 0)
    return true;
  for (size_t i = 0; i < bench_backend_name_count; i++)
    if (strcmp(name, bench_backend_names[i]) == 0)
      return true;
  return false;
}

/* Splits a comma list in place (the string is argv's) and adds each entry. */
static int parse_workloads(char *list, bench_options *o) {
  for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
       name = strtok_r(NULL, ",", &save)) {
    if (strcmp(name, "all") == 0) {
      for (size_t i = 0; i < bench_workload_count && o->workload_count < 32; i++)
        if (!bench_workloads[i].opt_in)
          o->workloads[o->workload_count++] = &bench_workloads[i];
      continue;
    }
    const bench_workload *w = bench_workload_find(name);
    if (!w)
      return usage_error("--workload: unknown workload '%s'%s", name, "");
    if (o->workload_count < 32)
      o->workloads[o->workload_count++] = w;
  }
  return o->workload_count ? 0 : usage_error("--workload: empty list%s%s", "", "");
}

static int parse_backends(char *list, bench_options *o) {
  for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
       name = strtok_r(NULL, ",", &save)) {
    if (strcmp(name, "all") == 0) {
      for (size_t i = 0; i < bench_backend_name_count && o->backend_count < BENCH_MAX_BACKENDS; i++)
        o->backends[o->backend_count++] = bench_backend_names[i];
      continue;
    }
    if (!known_backend(name))
      return usage_error("--backend: unknown backend '%s' (expected auto, stw, sigsegv, "
                         "copy, minor, move or all)%s",
                         name, "");
    if (o->backend_count < BENCH_MAX_BACKENDS)
      o->backends[o->backend_count++] = name;
  }
  return o->backend_count ? 0 : usage_error("--backend: empty list%s%s", "", "");
}

static int parse_deliveries(char *list, bench_options *o) {
  for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
       name = strtok_r(NULL, ",", &save)) {
    if (strcmp(name, "both") == 0) {
      o->deliveries[0] = "sigbus";
      o->deliveries[1] = "thread";
      o->delivery_count = 2;
      continue;
    }
    if (strcmp(name, "sigbus") != 0 && strcmp(name, "thread") != 0)
      return usage_error("--delivery: unknown mode '%s' (expected sigbus, thread or both)%s", name,
                         "");
    bool dup = false;
    for (size_t i = 0; i < o->delivery_count; i++)
      dup |= strcmp(o->deliveries[i], name) == 0;
    if (!dup && o->delivery_count < 2)
      o->deliveries[o->delivery_count++] = name;
  }
  return o->delivery_count ? 0 : usage_error("--delivery: empty list%s%s", "", "");
}

/* UFFDGC_BACKEND and UFFDGC_HEAP_MAX stand for --backend and --heap when those are not
 * given; when they are, the options win and a note says so. (The child unsets both: every
 * row runs what its options say.) */
static int apply_environment(char **backends, bench_options *o) {
  static char env_backend[64];
  const char *backend = getenv("UFFDGC_BACKEND");
  if (backend && *backend) {
    if (*backends) {
      fprintf(stderr, "uffdgc-bench: note: UFFDGC_BACKEND=%s is ignored: --backend %s decides\n",
              backend, *backends);
    } else {
      if (strlen(backend) >= sizeof env_backend || !known_backend(backend))
        return usage_error("UFFDGC_BACKEND=%s: unknown backend (expected auto, stw, sigsegv, "
                           "copy, minor or move; unset it or pass --backend)%s",
                           backend, "");
      snprintf(env_backend, sizeof env_backend, "%s", backend);
      *backends = env_backend;
      fprintf(stderr, "uffdgc-bench: note: backend %s from UFFDGC_BACKEND\n", backend);
    }
  }
  const char *heap = getenv("UFFDGC_HEAP_MAX");
  if (heap && *heap) {
    if (o->heap) {
      fprintf(stderr, "uffdgc-bench: note: UFFDGC_HEAP_MAX=%s is ignored: --heap decides\n", heap);
    } else {
      if (!parse_size(heap, &o->heap))
        return usage_error("UFFDGC_HEAP_MAX=%s: bad size (e.g. 64M, 1G, 1T; 1 MiB to 64 TiB)%s",
                           heap, "");
      fprintf(stderr, "uffdgc-bench: note: heap %s for every workload from UFFDGC_HEAP_MAX\n",
              heap);
    }
  }
  return 0;
}

/* --json and --plot are checked before any run: a typo must not cost the whole run. */
static int check_output_paths(const bench_options *o) {
  if (o->json_path) {
    struct stat st;
    bool existed = stat(o->json_path, &st) == 0;
    if (existed && S_ISDIR(st.st_mode))
      return usage_error("--json %s: is a directory (give a file name)%s", o->json_path, "");
    FILE *f = fopen(o->json_path, "a");
    if (!f)
      return usage_error("--json %s: cannot write there: %s", o->json_path, strerror(errno));
    fclose(f);
    if (!existed)
      unlink(o->json_path);
  }
  if (o->plot_dir) {
    if (mkdir(o->plot_dir, 0777) != 0 && errno != EEXIST)
      return usage_error("--plot %s: cannot create the directory: %s", o->plot_dir,
                         strerror(errno));
    struct stat st;
    if (stat(o->plot_dir, &st) != 0 || !S_ISDIR(st.st_mode))
      return usage_error("--plot %s: not a directory%s", o->plot_dir, "");
    if (access(o->plot_dir, W_OK) != 0)
      return usage_error("--plot %s: cannot write there: %s", o->plot_dir, strerror(errno));
  }
  return 0;
}

int bench_parse_options(int argc, char **argv, bench_options *o) {
  memset(o, 0, sizeof *o);
  o->threads = 2;
  o->scale = BENCH_DEFAULT_SCALE;
  o->repeat = 1;
  char *workloads = NULL, *backends = NULL, *deliveries = NULL;
  for (int i = 1; i < argc; i++) {
    char *arg = argv[i], *value = NULL;
    if (strncmp(arg, "--", 2) != 0)
      return usage_error("unexpected argument '%s'%s", arg, "");
    char *eq = strchr(arg, '=');
    if (eq) {
      *eq = 0;
      value = eq + 1;
    }
    if (strcmp(arg, "--help") == 0) {
      bench_print_usage(stdout);
      return 1;
    }
    if (strcmp(arg, "--verify") == 0) {
      if (value)
        return usage_error("%s takes no value%s", arg, "");
      o->verify = true;
      continue;
    }
    static const char *const with_value[] = {"--workload", "--backend", "--heap", "--threads",
                                             "--scale",    "--repeat",  "--json", "--compare",
                                             "--plot",     "--delivery"};
    bool known = false;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
      known |= strcmp(arg, with_value[k]) == 0;
    if (!known)
      return usage_error("unknown option '%s'%s", arg, "");
    if (!value) {
      if (i + 1 >= argc)
        return usage_error("%s needs a value%s", arg, "");
      value = argv[++i];
    }
    if (strcmp(arg, "--workload") == 0) {
      workloads = value;
    } else if (strcmp(arg, "--backend") == 0) {
      backends = value;
    } else if (strcmp(arg, "--delivery") == 0) {
      deliveries = value;
    } else if (strcmp(arg, "--heap") == 0) {
      if (!parse_size(value, &o->heap))
        return usage_error("--heap: bad size '%s' (e.g. 64M, 1G, 1T; 1 MiB to 64 TiB)%s", value,
                           "");
    } else if (strcmp(arg, "--threads") == 0) {
      if (!parse_count(value, 64, &o->threads))
        return usage_error("--threads: bad value '%s' (1 to 64)%s", value, "");
    } else if (strcmp(arg, "--scale") == 0) {
      if (!parse_count(value, 1000, &o->scale))
        return usage_error("--scale: bad value '%s' (1 to 1000)%s", value, "");
    } else if (strcmp(arg, "--repeat") == 0) {
      if (!parse_count(value, 100, &o->repeat))
        return usage_error("--repeat: bad value '%s' (1 to 100)%s", value, "");
    } else if (strcmp(arg, "--json") == 0) {
      o->json_path = value;
    } else if (strcmp(arg, "--compare") == 0) {
      if (strcmp(value, "bdw") != 0)
        return usage_error("--compare: unknown collector '%s' (only bdw)%s", value, "");
      o->compare_bdw = true;
    } else if (strcmp(arg, "--plot") == 0) {
      o->plot_dir = value;
    }
  }
  static char default_workloads[] = "all", default_backends[] = "auto";
  int status = parse_workloads(workloads ? workloads : default_workloads, o);
  if (status)
    return status;
  if (deliveries && (status = parse_deliveries(deliveries, o)) != 0)
    return status;
  if ((status = apply_environment(&backends, o)) != 0)
    return status;
  if ((status = parse_backends(backends ? backends : default_backends, o)) != 0)
    return status;
  return check_output_paths(o);
}
