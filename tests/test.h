/* Minimal test support: checks that report file:line, and an explicit skip.
 * A skip exits 77, which CTest reports as "Skipped" (see tests/CMakeLists.txt). */
#ifndef UGC_TEST_H
#define UGC_TEST_H
#include <stdio.h>
#include <stdlib.h>

static int ugc_test_failures;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                     \
      ugc_test_failures++;                                                                         \
    }                                                                                              \
  } while (0)

#define CHECK_EQ_U64(a, b)                                                                         \
  do {                                                                                             \
    unsigned long long check_a = (unsigned long long)(a), check_b = (unsigned long long)(b);       \
    if (check_a != check_b) {                                                                      \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%llu != %llu)\n", __FILE__, __LINE__, #a,    \
              #b, check_a, check_b);                                                               \
      ugc_test_failures++;                                                                         \
    }                                                                                              \
  } while (0)

#define REQUIRE(cond)                                                                              \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);                   \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

#define SKIP(...)                                                                                  \
  do {                                                                                             \
    printf("SKIP: ");                                                                              \
    printf(__VA_ARGS__);                                                                           \
    printf("\n");                                                                                  \
    fflush(stdout);                                                                                \
    exit(77);                                                                                      \
  } while (0)

/* Ends main(): prints a summary line and turns failures into the exit status. */
#define TEST_DONE()                                                                                \
  do {                                                                                             \
    if (ugc_test_failures) {                                                                       \
      fprintf(stderr, "FAILED: %d check(s)\n", ugc_test_failures);                                 \
      return 1;                                                                                    \
    }                                                                                              \
    printf("OK\n");                                                                                \
    return 0;                                                                                      \
  } while (0)

#endif
