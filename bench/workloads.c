/* The table of workloads, in the order `--workload all` runs them. */
#include <string.h>

#include "bench.h"

int gcbench_run(bench_ctx *ctx);
int binarytrees_run(bench_ctx *ctx);
int frag_run(bench_ctx *ctx);
int latency_run(bench_ctx *ctx);
int mt_run(bench_ctx *ctx);
int cold_run(bench_ctx *ctx);

#ifdef BENCH_HAVE_BDW
int gcbench_run_bdw(bench_ctx *ctx);
int frag_run_bdw(bench_ctx *ctx);
#define BDW(fn) fn
const bool bench_have_bdw = true;
#else
#define BDW(fn) NULL
const bool bench_have_bdw = false;
#endif

#define MIB ((size_t)1 << 20)

const bench_workload bench_workloads[] = {
    {"gcbench", "GCBench: long-lived tree + array, temporary trees top-down and bottom-up",
     gcbench_run, BDW(gcbench_run_bdw), 64 * MIB, false},
    {"binarytrees", "binary-trees, depth 14 + scale", binarytrees_run, NULL, 128 * MIB, false},
    {"frag", "mixed sizes, drop a random 75%, refill; RSS after each collection", frag_run,
     BDW(frag_run_bdw), 128 * MIB, false},
    {"latency", "timed units of pointer chasing + allocation over a large live graph",
     latency_run, NULL, 128 * MIB, false},
    {"mt", "--threads mutators each running gcbench on one heap", mt_run, NULL, 128 * MIB,
     true},
    {"cold", "large rarely-touched live set next to a churning part", cold_run, NULL,
     128 * MIB, false},
};
const size_t bench_workload_count = sizeof bench_workloads / sizeof bench_workloads[0];

const bench_workload *bench_workload_find(const char *name) {
  for (size_t i = 0; i < bench_workload_count; i++)
    if (strcmp(bench_workloads[i].name, name) == 0)
      return &bench_workloads[i];
  return NULL;
}
