/* The table of workloads, in the order `--workload all` runs them. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

int gcbench_run(bench_ctx *ctx);
int binarytrees_run(bench_ctx *ctx);
int frag_run(bench_ctx *ctx);
int latency_run(bench_ctx *ctx);
int mt_run(bench_ctx *ctx);
int cold_run(bench_ctx *ctx);
int compact_run(bench_ctx *ctx);

#ifdef BENCH_HAVE_BDW
int gcbench_run_bdw(bench_ctx *ctx);
int frag_run_bdw(bench_ctx *ctx);
#define BDW(fn) fn
const bool bench_have_bdw = true;
#else
#define BDW(fn) NULL
const bool bench_have_bdw = false;
/* Without libgc-dev the bdw rows are skipped (exit status 4 of the child), never a link
 * error: the runner calls these for a row the user asked for explicitly. */
int bench_bdw_setup(bench_ctx *ctx) {
  snprintf(ctx->result->error, sizeof ctx->result->error,
           "bdwgc not built in (install libgc-dev, then run make again)");
  return -2;
}
void bench_bdw_finish(bench_ctx *ctx) {
  (void)ctx;
}
#endif

#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)

const bench_workload bench_workloads[] = {
    {.name = "gcbench",
     .desc = "GCBench: long-lived tree + array, temporary trees top-down and bottom-up",
     .run = gcbench_run,
     .run_bdw = BDW(gcbench_run_bdw),
     .default_heap = 64 * MIB},
    {.name = "binarytrees",
     .desc = "binary-trees, depth 14 + scale",
     .run = binarytrees_run,
     .default_heap = 128 * MIB},
    {.name = "frag",
     .desc = "mixed sizes, drop a random 75%, refill; RSS after each collection",
     .run = frag_run,
     .run_bdw = BDW(frag_run_bdw),
     .default_heap = 128 * MIB},
    {.name = "latency",
     .desc = "timed units of pointer chasing + allocation over a large live graph",
     .run = latency_run,
     .default_heap = 128 * MIB},
    {.name = "mt",
     .desc = "--threads mutators each running gcbench on one heap",
     .run = mt_run,
     .default_heap = 128 * MIB,
     .multi_threaded = true},
    {.name = "cold",
     .desc = "large rarely-touched live set next to a churning part",
     .run = cold_run,
     .default_heap = 128 * MIB},
    {.name = "compact",
     .desc = "1 GiB heap ~25% live, slid every cycle; --threads mutators chase it meanwhile",
     .run = compact_run,
     .default_heap = 1 * GIB,
     .multi_threaded = true,
     .trigger_at_max = true,
     .opt_in = false},
};
const size_t bench_workload_count = sizeof bench_workloads / sizeof bench_workloads[0];

const bench_workload *bench_workload_find(const char *name) {
  for (size_t i = 0; i < bench_workload_count; i++)
    if (strcmp(bench_workloads[i].name, name) == 0)
      return &bench_workloads[i];
  return NULL;
}
