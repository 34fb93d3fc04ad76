/* Each run happens in a forked child: RSS peaks, VMA counts and crashes stay isolated, and
 * the library starts from a fresh process every time. The child sends its bench_result as
 * raw bytes over a pipe (same binary, same layout); the parent reports a crash, a timeout
 * or a short result as a failed row. */
#include "runner.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/procstat.h"

/* A run that takes longer than this is a hang (a deadlocked collector), not a result. */
enum { CHILD_TIMEOUT_S = 1800 };

static double seconds_of(struct timeval t) {
  return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

/* What the process used between two getrusage samples, into the result. */
static void record_usage(const struct rusage *before, const struct rusage *after, bench_result *r) {
  r->user_cpu_s = seconds_of(after->ru_utime) - seconds_of(before->ru_utime);
  r->sys_cpu_s = seconds_of(after->ru_stime) - seconds_of(before->ru_stime);
  r->minor_faults = (uint64_t)(after->ru_minflt - before->ru_minflt);
  r->major_faults = (uint64_t)(after->ru_majflt - before->ru_majflt);
}

/* In the child: set up the collector, run, measure. Returns the exit status. */
static int child_run(const bench_options *options, const bench_row *row, bench_result *r) {
  const bench_workload *w = row->workload;
  bool bdw = strcmp(row->backend_requested, "bdw") == 0;
  bench_ctx ctx = {0};
  ctx.backend = row->backend_requested;
  ctx.delivery = row->delivery;
  ctx.trigger_at_max = w->trigger_at_max;
  ctx.heap_max = options->heap ? options->heap : w->default_heap;
  ctx.threads = w->multi_threaded ? options->threads : 1;
  ctx.scale = options->scale;
  ctx.verify = options->verify;
  ctx.single_threaded = !w->multi_threaded;
  ctx.result = r;
  snprintf(r->workload, sizeof r->workload, "%s", w->name);
  snprintf(r->backend, sizeof r->backend, "%s", row->backend_requested);
  snprintf(r->backend_requested, sizeof r->backend_requested, "%s", row->backend_requested);
  struct utsname u;
  if (uname(&u) == 0)
    snprintf(r->kernel, sizeof r->kernel, "%s", u.release);
  r->threads = ctx.threads;
  r->heap_max_bytes = ctx.heap_max;

  /* The options choose the backend and heap size: the library's environment overrides
   * would silently make every row the same. */
  unsetenv("UFFDGC_BACKEND");
  unsetenv("UFFDGC_HEAP_MAX");
  /* The library lets UFFDGC_DELIVERY override config.delivery: --delivery must win. */
  if (row->delivery)
    unsetenv("UFFDGC_DELIVERY");
  const char *delivery = row->delivery ? row->delivery : getenv("UFFDGC_DELIVERY");
  if (!delivery || !*delivery)
    delivery = "sigbus"; /* the library's default */
  snprintf(r->delivery, sizeof r->delivery, "%s", bdw ? "" : delivery);
  ugc_proc_reset_peak_rss(); /* failing only makes the peak less precise */

  int setup = bdw ? bench_bdw_setup(&ctx) : bench_ugc_setup(&ctx, row->backend_requested);
  if (setup)
    return setup == -2 ? 4 : 3;
  ctx.unit_hist = bench_hist_new();
  ctx.unit_hist_during_cycle = bench_hist_new();
  ctx.unit_hist_idle = bench_hist_new();
  ctx.unit_hist_compacting = bench_hist_new();
  ctx.unit_hist_marking = bench_hist_new();
  struct rusage usage0, usage1;
  getrusage(RUSAGE_SELF, &usage0);
  ctx.t0 = bench_now_s();
  bench_sample_memory(&ctx);
  int status = bdw ? w->run_bdw(&ctx) : w->run(&ctx);
  r->wall_s = bench_now_s() - ctx.t0;
  if (bdw)
    bench_bdw_finish(&ctx);
  else
    bench_ugc_finish(&ctx);
  getrusage(RUSAGE_SELF, &usage1);
  record_usage(&usage0, &usage1, r);
  double cpu = r->user_cpu_s + r->sys_cpu_s;
  r->mutator_cpu_s = cpu > r->gc_cpu_s ? cpu - r->gc_cpu_s : 0;
  bench_hist_to_dist(ctx.unit_hist, &r->unit);
  bench_hist_to_dist(ctx.unit_hist_during_cycle, &r->unit_during_cycle);
  bench_hist_to_dist(ctx.unit_hist_idle, &r->unit_idle);
  bench_hist_to_dist(ctx.unit_hist_compacting, &r->unit_compacting);
  bench_hist_to_dist(ctx.unit_hist_marking, &r->unit_marking);
  ugc_rss rss = {0};
  ugc_proc_rss(&rss);
  if (rss.rss_peak > r->rss_peak_bytes) /* a workload may restart the peak (compact) */
    r->rss_peak_bytes = rss.rss_peak;
  r->ok = status == 0 && r->verify_failures == 0 && r->digest_mismatches == 0;
  if (!r->ok && !r->error[0])
    snprintf(r->error, sizeof r->error, "%s",
             status ? "workload failed" : "verification failed (see stderr)");
  return 0;
}

static bool write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

static size_t read_all(int fd, void *buf, size_t len) {
  char *p = buf;
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, p + got, len - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  return got;
}

/* One run in a child; fills *r. Returns false when the run failed. */
static bool run_once(const bench_options *options, bench_row *row, bench_result *r) {
  int fds[2];
  memset(r, 0, sizeof *r);
  if (pipe(fds) != 0) {
    snprintf(r->error, sizeof r->error, "pipe: %s", strerror(errno));
    return false;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(r->error, sizeof r->error, "fork: %s", strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return false;
  }
  if (pid == 0) {
    close(fds[0]);
    alarm(CHILD_TIMEOUT_S);
    int status = child_run(options, row, r);
    /* Even a failed setup sends its result: the error message travels with it. */
    bool sent = write_all(fds[1], r, sizeof *r);
    fflush(stdout);
    fflush(stderr);
    _exit(sent ? status : 5);
  }
  close(fds[1]);
  size_t got = read_all(fds[0], r, sizeof *r);
  close(fds[0]);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(wstatus)) {
    int sig = WTERMSIG(wstatus);
    snprintf(r->error, sizeof r->error, "child killed by signal %d (%s)%s", sig, strsignal(sig),
             sig == SIGALRM ? ": timed out" : "");
    r->ok = false;
    return false;
  }
  int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  if (got != sizeof *r) {
    memset(r, 0, sizeof *r);
    snprintf(r->error, sizeof r->error, "child exited with status %d without a result%s", code,
             code == 3 ? " (see its message above)" : "");
    return false;
  }
  if (code == 4) {
    /* The library refused the backend at heap creation: a skip, not a failure. */
    snprintf(row->skipped, sizeof row->skipped, "%s", r->error);
    return true;
  }
  if (code != 0) {
    r->ok = false;
    if (!r->error[0])
      snprintf(r->error, sizeof r->error, "child exited with status %d", code);
  }
  return r->ok;
}

static int by_wall(const void *a, const void *b) {
  double x = (*(bench_result *const *)a)->wall_s, y = (*(bench_result *const *)b)->wall_s;
  return (x > y) - (x < y);
}

const char *bench_row_label(const bench_row *row) {
  static char label[2 * BENCH_NAME_LEN + 8];
  const char *backend =
      row->result && row->result->backend[0] ? row->result->backend : row->backend_requested;
  const char *delivery = row->result && !row->skipped[0] ? row->result->delivery : row->delivery;
  bool thread = delivery && strcmp(delivery, "thread") == 0 && strcmp(backend, "stw") != 0 &&
                strcmp(backend, "bdw") != 0;
  snprintf(label, sizeof label, "%s%s", backend, thread ? "/thread" : "");
  return label;
}

void bench_run_row(const bench_options *options, bench_row *row) {
  unsigned n = options->repeat;
  bench_result **runs = calloc(n, sizeof *runs);
  row->failed = false;
  unsigned done = 0;
  for (unsigned i = 0; i < n; i++) {
    runs[i] = calloc(1, sizeof(bench_result));
    done++;
    bool ok = run_once(options, row, runs[i]);
    if (row->skipped[0])
      break;
    if (!ok) {
      row->failed = true;
      row->result = runs[i];
      runs[i] = NULL;
      break;
    }
  }
  if (!row->failed && !row->skipped[0]) {
    qsort(runs, done, sizeof *runs, by_wall);
    row->result = runs[done / 2];
    runs[done / 2] = NULL;
  }
  for (unsigned i = 0; i < done; i++)
    free(runs[i]);
  free(runs);
}
