/* The log-linear duration histogram (ugc_histogram in uffdgc.h): recording, merging and
 * differences. The library's statistics and uffdgc-bench's own measurements share it. */
#ifndef UGC_RUNTIME_HISTOGRAM_H
#define UGC_RUNTIME_HISTOGRAM_H

#include <stdint.h>

#include "uffdgc.h"

/* Adds one duration, in ns. Plain updates: the caller keeps other writers out. Never
 * allocates, so it may run inside another collector's event callback. */
void ugc_stats_record_pause(ugc_histogram *histogram, uint64_t ns);

/* The same with atomic updates, for histograms that several threads (and signal handlers)
 * record into at once. */
void ugc_histogram_record_atomic(ugc_histogram *histogram, uint64_t ns);

/* Adds every sample of `from` to `into`. */
void ugc_histogram_merge(ugc_histogram *into, const ugc_histogram *from);

/* The samples `now` has that `before` (an earlier copy of it) had not: counts, sums and
 * buckets subtracted; max_ns is the top bucket's bound, at most now->max_ns. */
void ugc_histogram_since(const ugc_histogram *now, const ugc_histogram *before, ugc_histogram *out);

#endif
