/* Minimum mutator utilisation (MMU) of a run, from its pause timeline: for a window width
 * w, the smallest fraction of any w-long interval of the run in which the mutator was not
 * stopped (Cheng and Blelloch's measure for incremental and concurrent collectors). With
 * several mutator threads it is computed per thread, and the worst thread is reported: a
 * thread that triggers a collection waits for the others to reach a safepoint, and that
 * wait is its own loss, not theirs. Page-fault stalls of concurrent compaction are not in
 * the timeline (the stall distribution shows them). */
#ifndef UFFDGC_BENCH_MMU_H
#define UFFDGC_BENCH_MMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"

/* One thread's pauses, sorted, overlaps merged, clipped to the run. */
typedef struct bench_timeline {
  bench_pause_span *spans;
  double *before; /* before[i]: total pause time of spans[0..i) */
  size_t count;
  double length_s; /* the run's length the MMU covers */
  bool truncated;  /* more spans than the result could hold: only the first part covered */
} bench_timeline;

/* Builds the timeline of one thread of r (false when it has no pause spans). */
bool bench_timeline_of(const bench_result *r, uint32_t thread, bench_timeline *t);
void bench_timeline_free(bench_timeline *t);

/* The window widths the MMU is reported for (JSON and plots): 0.1 ms to 100 s, eight
 * per decade, in seconds. Returns how many were written to out (at most max). */
size_t bench_mmu_windows(double *out, size_t max);

/* The windows printed in the latency footer and its JSON "mmu_at": 1, 10 and 100 ms. */
enum { BENCH_MMU_REPORTED = 3 };
void bench_mmu_reported_windows(double out[BENCH_MMU_REPORTED]);

/* MMU for window width w seconds, between 0 and 1; negative when w is longer than the run. */
double bench_mmu(const bench_timeline *t, double w);

/* The MMU of r's worst thread for each of the n windows (seconds) into out; -1 where a
 * window is longer than the run. False when r has no pause spans. *truncated is set when
 * the timeline held more spans than the result could keep. */
bool bench_mmu_curve(const bench_result *r, const double *windows, size_t n, double *out,
                     bool *truncated);

#endif
