/* Shared definitions of the uffdgc-bench workloads and the driver.
 *
 * A workload is written once against the allocator shim (bench/shim.h) and compiled twice:
 * normally for uffdgc, and with BENCH_BDW defined for bdwgc (only the workloads whose
 * `run_bdw` is set). Each run happens in a forked child that fills one bench_result and
 * sends it to the parent as raw bytes over a pipe: parent and child are the same binary, so
 * the layout is shared, and the parent turns results into tables, JSON and plots. */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_QUANTILES 101    /* q[i] = the i-th percentile, for plots */
#define BENCH_RSS_SAMPLES 1024 /* RSS time series capacity (frag plots) */
#define BENCH_PAUSE_SPANS 4096 /* pause timeline capacity (MMU plots) */
#define BENCH_NAME_LEN 32

/* The library's duration histogram (ugc_histogram), opaque here. */
typedef struct ugc_histogram bench_hist;

/* A distribution of durations, in nanoseconds. */
typedef struct bench_dist {
  uint64_t count, p50, p95, p99, max, sum;
  uint64_t q[BENCH_QUANTILES];
} bench_dist;

/* One stop as a mutator thread saw it: from entering the call that stopped it (an
 * allocation or safepoint that parked, an explicit collection) to leaving it, in seconds
 * since the workload started. `thread` numbers the workload's mutator threads from 0. */
typedef struct bench_pause_span {
  double start_s, end_s;
  uint32_t thread;
} bench_pause_span;

typedef struct bench_rss_sample {
  double t_s;   /* seconds since the workload started */
  uint64_t rss; /* bytes */
} bench_rss_sample;

/* Mirrors ugc_compaction_stats, so bdw-only builds and the parent need no library types. */
typedef struct bench_compaction {
  uint64_t pages_total, pages_in_place, pages_slid_whole, pages_recycled, pages_fresh;
  uint64_t pages_moved_huge;      /* of pages_in_place: moved as whole 2 MiB chunks (move) */
  uint64_t pages_retained_reused; /* kept from-space moved back for allocation (copy, move) */
  uint64_t pages_recycled_huge;   /* of pages_recycled: moved as whole 2 MiB chunks (move) */
  uint64_t pages_untouched; /* of pages_in_place: neither read nor written (stw, copy, move) */
  uint64_t pages_by_mutator, pages_by_gc;
  uint64_t pages_by_waiting_mutators; /* of pages_by_gc */
  uint64_t copy_ioctls, move_ioctls, continue_ioctls, zeropage_ioctls, madvise_calls;
  uint64_t moves_misreported; /* MOVEs that moved their page and answered EEXIST (move) */
  uint64_t bytes_copied;
  double concurrent_s;
  double forwarding_s, memcpy_s, map_s, madvise_s, wait_s;
  double handoff_s, handoff_max_s; /* kernel work of the compaction pauses: sum, largest */
  uint64_t mprotect_calls, heap_vmas_peak, runs_extended; /* sigsegv backend */
} bench_compaction;

typedef struct bench_result {
  char workload[BENCH_NAME_LEN];
  char backend[BENCH_NAME_LEN];           /* what ran ("stw", "bdw", ...) */
  char backend_requested[BENCH_NAME_LEN]; /* what was asked ("auto", ...) */
  char delivery[BENCH_NAME_LEN];          /* fault delivery asked for: "sigbus", "thread" */
  /* The library's settings as the heap resolved them (ugc_heap_config); bdw: empty, 0. */
  char huge_pages[4]; /* "on" or "off": the moving space's transparent huge pages */
  unsigned gc_threads, compact_threads;
  int concurrent_mark;
  char kernel[72];
  char error[512]; /* empty when the run succeeded (holds a whole ugc_error message) */
  bool ok;
  unsigned threads;
  uint64_t heap_max_bytes;
  double wall_s, mutator_cpu_s, gc_cpu_s, gc_total_pause_s;
  /* The whole process during the workload (getrusage): CPU in user mode and in the kernel,
   * and page faults served without I/O (minor) or with it (major). */
  double user_cpu_s, sys_cpu_s;
  uint64_t minor_faults, major_faults;
  uint64_t gc_cycles;
  uint64_t mark_concurrent_cycles;      /* cycles that marked while mutators ran (2 stops each) */
  uint64_t mark_remark_retries;         /* stops given up before a remark (1 stop each) */
  uint64_t alloc_waits;                 /* allocations that waited for a cycle at heap_max */
  double alloc_wait_s;                  /* the time they waited */
  uint64_t alloc_waits_marking;         /* of them, those that began while marking ran */
  double alloc_wait_build_s;            /* of alloc_wait_s, spent building compaction pages */
  uint64_t mark_assists;                /* slow-path allocations whose thread helped marking */
  double mark_assist_mb, mark_assist_s; /* the scan work they did, and its time */
  bench_dist pause, pause_mark, pause_compact, stall, unit;
  /* latency: the timed units split by whether a cycle (its first pause to its compaction's
   * end: marking, pauses, concurrent compaction) overlapped them, and how many cycles
   * overlapped the timed phase. */
  bench_dist unit_during_cycle, unit_idle;
  /* The units during a cycle that overlapped its compaction (the end of the compaction
   * pause to the last page mapped: stalls on pages not built yet), a subset of the above;
   * the others (unit_marking) overlapped only marking and the pauses. */
  bench_dist unit_compacting, unit_marking;
  uint64_t timed_cycles;
  bench_compaction compaction;
  uint64_t live_bytes_peak, heap_used_bytes, rss_peak_bytes, rss_after_gc_bytes;
  /* compact: the largest RSS peak of one collection cycle (from its start to its
   * compaction's end), and that cycle's live bytes + allocation headroom (what the heap
   * holds when it starts: what the last cycle left live + bytes allocated since). */
  uint64_t rss_cycle_peak_bytes, cycle_footprint_bytes;
  uint64_t shmem_peak_bytes, vma_peak;
  uint64_t verify_cycles, verify_failures; /* verifier: library's + our explicit checks */
  uint64_t digest_checks, digest_mismatches;
  uint32_t rss_count;
  bench_rss_sample rss[BENCH_RSS_SAMPLES];
  uint32_t pause_span_count; /* spans seen; the first BENCH_PAUSE_SPANS are kept */
  bench_pause_span pause_spans[BENCH_PAUSE_SPANS];
} bench_result;

/* Everything a workload needs for one run. */
typedef struct bench_ctx {
  const char *backend;  /* "stw", ..., or "bdw" */
  size_t heap_max;      /* bytes */
  const char *delivery; /* config.delivery; NULL = the library's default (or env) */
  unsigned threads;
  unsigned scale;
  bool verify;
  bool single_threaded;      /* digests around explicit collections are meaningful */
  bool trigger_at_max;       /* the workload's bench_workload.trigger_at_max */
  void *heap;                /* ugc_heap * when running on uffdgc */
  uint32_t types[4];         /* uffdgc type ids: node, array, leaf (index by BENCH_T_*) */
  double t0;                 /* monotonic seconds at workload start */
  uint64_t last_cycles;      /* collections seen by the last RSS sample */
  uint32_t threads_attached; /* shim_attach calls so far: numbers the mutator threads */
  bench_hist *unit_hist;     /* latency workload: unit durations */
  bench_hist *unit_hist_during_cycle, *unit_hist_idle;  /* the same, split (see result) */
  bench_hist *unit_hist_compacting, *unit_hist_marking; /* see result->unit_compacting */
  /* Bumped by the event listener at every cycle_start and compaction_done: odd while a
   * cycle is in progress (uffdgc only; stays 0 for bdwgc). */
  uint64_t cycle_events;
  /* Bumped at every pause_done (the cycle's last pause) and compaction_done: odd while a
   * compaction runs after its pause. */
  uint64_t compaction_events;
  bench_result *result;
  /* uffdgc: when a workload sets this (a ugc_stats copy), the result's collector
   * statistics come from it instead of from after the driver's final collection. */
  const void *stats_snapshot;
} bench_ctx;

enum { BENCH_T_NODE = 1, BENCH_T_ARRAY = 2, BENCH_T_LEAF = 3 };

typedef struct bench_workload {
  const char *name;
  const char *desc;
  int (*run)(bench_ctx *ctx);     /* uffdgc variant; 0 on success */
  int (*run_bdw)(bench_ctx *ctx); /* bdwgc variant, NULL when not capable or not built */
  size_t default_heap;            /* used when --heap is not given */
  bool multi_threaded;
  bool trigger_at_max; /* uffdgc: collect only when the heap is full (explicit
                          collections are the measured ones) */
  bool opt_in;         /* not part of `--workload all`: name it */
} bench_workload;

/* Workload table (bench/workloads.c). */
extern const bench_workload bench_workloads[];
extern const size_t bench_workload_count;
const bench_workload *bench_workload_find(const char *name);
/* Whether this binary was built with the bdwgc variants. */
extern const bool bench_have_bdw;

/* Heap setup and result collection for each collector (bench/shim_ugc.c, shim_bdw.c).
 * setup returns 0, or -1 with ctx->result->error filled; UGC_ERR_UNAVAILABLE gives -2. */
int bench_ugc_setup(bench_ctx *ctx, const char *backend);
void bench_ugc_finish(bench_ctx *ctx);
int bench_bdw_setup(bench_ctx *ctx);
void bench_bdw_finish(bench_ctx *ctx);

/* Monotonic clock. */
double bench_now_s(void);
uint64_t bench_now_ns(void);

/* Appends a pause span (bench_now_ns() values) to the result's timeline; any thread. */
void bench_record_pause(bench_ctx *ctx, uint32_t thread, uint64_t start_ns, uint64_t end_ns);
/* Appends an RSS sample and updates the shmem / VMA peaks (read by os/procstat.h). */
void bench_sample_memory(bench_ctx *ctx);

/* Durations the bench measures itself (latency units, bdwgc pauses) go into the library's
 * histogram, ugc_histogram (runtime/histogram.c), the one its pause statistics use. These
 * calls (bench/hist.c) let code that does not see the library's types (the bdw build) use it;
 * bench_hist_to_dist also summarises the library's own statistics. */
bench_hist *bench_hist_new(void);
void bench_hist_free(bench_hist *h);
void bench_hist_add(bench_hist *h, uint64_t ns);
void bench_hist_to_dist(const bench_hist *h, bench_dist *out);
void bench_hist_merge(bench_hist *into, const bench_hist *from);

/* Per-page costs and throughput of compaction, derived from bench_compaction. */
typedef struct bench_compaction_rates {
  uint64_t pages_built;     /* to-space pages built and mapped (GC threads + mutators) */
  double compacted_bytes;   /* pages_built * 4 KiB: the live data compacted */
  double compaction_s;      /* concurrent backends: concurrent_s; stw: the page-building
                               part of its pause (map + memcpy + madvise) */
  double gb_per_s;          /* compacted_bytes / compaction_s, 1e9 bytes per second */
  double ns_per_page_build; /* breakdown memcpy / pages_built */
  double ns_per_page_map;   /* breakdown map / pages_built */
  double work_s;            /* memcpy + map + madvise: compaction work summed over threads */
  double kernel_share;      /* (map + madvise) / work_s: the ioctls' and madvise's part */
} bench_compaction_rates;
void bench_compaction_rates_of(const bench_compaction *c, bench_compaction_rates *out);

/* System CPU over the process's CPU (user + system) during the workload; 0 without CPU. */
double bench_sys_share(const bench_result *r);
/* Peak RSS over peak live bytes; 0 when nothing was live. */
double bench_rss_peak_over_live(const bench_result *r);

/* xorshift64*: a fixed, fast sequence so every run of a workload does the same work. */
static inline uint64_t bench_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Fatal error inside a child: prints "uffdgc-bench: <workload>/<backend>: msg", exits 3. */
void bench_fail(bench_ctx *ctx, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

#endif
