/* The duration histogram the library's statistics and uffdgc-bench share: recording plainly
 * or atomically, merging and differences give the same buckets, and percentiles lie within
 * one bucket (1/8) above the exact value, never below it. */
#include <stdint.h>
#include <string.h>

#include "runtime/histogram.h"
#include "test.h"

enum { SAMPLES = 20000 };

static uint64_t next_value(uint64_t *state) {
  uint64_t x = *state; /* xorshift64*, then a random number of low bits: every magnitude */
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  x *= 0x2545F4914F6CDD1Dull;
  return x >> (x % 64);
}

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static ugc_histogram all, first, second, atomic, before, since;
static uint64_t values[SAMPLES];

int main(void) {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < SAMPLES; i++) {
    uint64_t v = i < 16 ? (uint64_t)i : next_value(&state);
    if (i == 16)
      v = UINT64_MAX; /* the top bucket exists */
    values[i] = v;
    ugc_stats_record_pause(&all, v);
    ugc_histogram_record_atomic(&atomic, v);
    ugc_stats_record_pause(i % 3 ? &first : &second, v);
    if (i == SAMPLES / 2 - 1)
      before = all;
  }
  CHECK_EQ_U64(all.count, SAMPLES);
  CHECK_EQ_U64(all.max_ns, UINT64_MAX);
  CHECK(memcmp(&atomic, &all, sizeof all) == 0);

  /* Two halves merged are the whole. */
  ugc_histogram_merge(&first, &second);
  CHECK(memcmp(&first, &all, sizeof all) == 0);

  /* The second half, from a copy taken half way. */
  ugc_histogram_since(&all, &before, &since);
  CHECK_EQ_U64(since.count, SAMPLES - SAMPLES / 2);
  uint64_t sum = 0, max = 0;
  for (int i = SAMPLES / 2; i < SAMPLES; i++) {
    sum += values[i];
    max = values[i] > max ? values[i] : max;
  }
  CHECK_EQ_U64(since.sum_ns, sum);
  CHECK(since.max_ns >= max && since.max_ns - max <= max / 8);

  /* Percentiles against the sorted samples. */
  qsort(values, SAMPLES, sizeof values[0], compare_u64);
  for (int percent = 0; percent < 100; percent++) {
    double p = percent / 100.0;
    uint64_t exact = values[(size_t)(p * SAMPLES)];
    uint64_t got = ugc_histogram_percentile(&all, p);
    CHECK(got >= exact);
    CHECK(got - exact <= exact / 8);
  }
  CHECK_EQ_U64(ugc_histogram_percentile(&all, 1.0), UINT64_MAX);
  CHECK_EQ_U64(ugc_histogram_percentile(&all, -1.0), 0);

  /* Small values are exact; one sample is its own percentile; empty gives 0. */
  ugc_histogram one = {0};
  ugc_stats_record_pause(&one, 1000);
  CHECK_EQ_U64(ugc_histogram_percentile(&one, 0.5), 1000);
  ugc_histogram empty = {0};
  CHECK_EQ_U64(ugc_histogram_percentile(&empty, 0.5), 0);
  CHECK_EQ_U64(ugc_histogram_percentile(NULL, 0.5), 0);
  TEST_DONE();
}
