/* Parses the command line. Every bad option or value is reported on stderr by name and
 * makes the program exit with status 2. */
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
          "                        (default auto)\n"
          "  --delivery LIST       fault delivery of the concurrent backends: sigbus,\n"
          "                        thread or both (sigbus,thread: one row each); sets\n"
          "                        config.delivery (default: UFFDGC_DELIVERY, else sigbus)\n"
          "  --heap SIZE           maximum heap, with K/M/G suffix (default per workload)\n"
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

static bool parse_size(const char *text, size_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || end == text || text[0] == '-')
    return false;
  unsigned shift = 0;
  switch (*end) {
  case 'k':
  case 'K':
    shift = 10;
    end++;
    break;
  case 'm':
  case 'M':
    shift = 20;
    end++;
    break;
  case 'g':
  case 'G':
    shift = 30;
    end++;
    break;
  default:
    break;
  }
  if (shift && end[0] == 'i' && end[1] == 'B')
    end += 2;
  else if (shift && end[0] == 'B')
    end++;
  if (*end || v == 0 || v > (~0ull >> shift))
    return false;
  *out = (size_t)(v << shift);
  return true;
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
      if (!parse_size(value, &o->heap) || o->heap < (1u << 20))
        return usage_error("--heap: bad size '%s' (e.g. 64M, 1G; at least 1M)%s", value, "");
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
  return parse_backends(backends ? backends : default_backends, o);
}
