/* Monotonic clock for statistics and measurements. */
#ifndef UGC_OS_TIME_H
#define UGC_OS_TIME_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds on CLOCK_MONOTONIC (arbitrary origin; only differences are meaningful). */
static inline uint64_t ugc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
