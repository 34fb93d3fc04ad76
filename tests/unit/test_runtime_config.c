/* One policy for configuration values: every UFFDGC_* variable and every config field,
 * given a bad value, makes ugc_heap_create fail with UGC_ERR_INVALID and a message that names
 * the variable or field, shows the value as given and says what is accepted; an unset or
 * empty variable and a zero field take the default. Plus the size parser and formatter the
 * library and its tools share. */
#include <stdlib.h>
#include <string.h>

#include "runtime/sizes.h"
#include "test.h"
#include "uffdgc.h"

typedef struct env_case {
  const char *name, *value;
  const char *accepted; /* a fragment of what the message must say is accepted */
} env_case;

static const env_case bad_env[] = {
    {"UFFDGC_BACKEND", "nonsense", "auto, stw"},
    {"UFFDGC_BACKEND", "STW", "auto, stw"},
    {"UFFDGC_DELIVERY", "pigeon", "sigbus or thread"},
    {"UFFDGC_TRACE", "2", "1 (on) or 0 (off)"},
    {"UFFDGC_TRACE", "yes", "1 (on) or 0 (off)"},
    {"UFFDGC_TRACE", "maybe", "1 (on) or 0 (off)"},
    {"UFFDGC_CONCURRENT_MARK", "2", "1 (mark while mutators run) or 0 (mark in the pause)"},
    {"UFFDGC_CONCURRENT_MARK", "on", "1 (mark while mutators run) or 0"},
    {"UFFDGC_MARK_ASSIST", "2", "1 (mutators help a concurrent marking) or 0"},
    {"UFFDGC_UNTOUCHED_CONCURRENT", "yes", "1 (on) or 0 (off)"},
    {"UFFDGC_VERIFY", "on", "2 (on, compactions finished in the pause) or 0 (off)"},
    {"UFFDGC_VERIFY", "10", "2 (on, compactions finished in the pause) or 0 (off)"},
    {"UFFDGC_VERIFY", "3", "2 (on, compactions finished in the pause) or 0 (off)"},
    {"UFFDGC_HEAP_MAX", "lots", "1M to 64T"},
    {"UFFDGC_HEAP_MAX", "100T", "1M to 64T"},
    {"UFFDGC_HEAP_MAX", "512K", "1M to 64T"},
    {"UFFDGC_HEAP_MAX", "-1G", "1M to 64T"},
    {"UFFDGC_HEAP_MAX", "99999999999999999999", "1M to 64T"},
    {"UFFDGC_HEAP_MAX", "1.5G", "1M to 64T"},
    {"UFFDGC_GC_THREADS", "-3", "0 (automatic"},
    {"UFFDGC_GC_THREADS", "65", "to 64"},
    {"UFFDGC_GC_THREADS", "4x", "to 64"},
    {"UFFDGC_GC_THREADS", "+4", "to 64"},
    {"UFFDGC_COMPACT_THREADS", "-1", "0 (automatic: gc_threads - 1"},
    {"UFFDGC_COMPACT_THREADS", "65", "to 64"},
    {"UFFDGC_COMPACT_THREADS", "two", "to 64"},
    {"UFFDGC_THP", "yes", "auto (the backend's choice), 1 (on) or 0 (off)"},
    {"UFFDGC_DISABLE", "move,bogus", "uffd, dev"},
    {"UFFDGC_INJECT", "copy.nothing", "copy.mremap"},
    {"UFFDGC_INJECT", "copy.mremap:x", "point:N"},
    {"UFFDGC_INJECT", "copy.mremap:0", "point:N"},
};

/* Values that must be accepted (each then leaves a working heap). */
static const env_case good_env[] = {
    {"UFFDGC_BACKEND", "stw", NULL},
    {"UFFDGC_BACKEND", "", NULL},
    {"UFFDGC_DELIVERY", "thread", NULL},
    {"UFFDGC_TRACE", "0", NULL},
    {"UFFDGC_VERIFY", "0", NULL},
    {"UFFDGC_VERIFY", "2", NULL},
    {"UFFDGC_HEAP_MAX", "1T", NULL},
    {"UFFDGC_HEAP_MAX", "48MiB", NULL},
    {"UFFDGC_HEAP_MAX", "", NULL},
    {"UFFDGC_GC_THREADS", "64", NULL},
    {"UFFDGC_GC_THREADS", "0", NULL},
    {"UFFDGC_COMPACT_THREADS", "3", NULL},
    {"UFFDGC_COMPACT_THREADS", "0", NULL},
    {"UFFDGC_THP", "auto", NULL},
    {"UFFDGC_THP", "0", NULL},
    {"UFFDGC_MARK_ASSIST", "0", NULL},
    {"UFFDGC_UNTOUCHED_CONCURRENT", "1", NULL},
};

typedef struct field_case {
  const char *field; /* "config.<field>" must appear */
  void (*set)(ugc_config *config);
  const char *value; /* as the message must show it */
  const char *accepted;
} field_case;

static void big_threads(ugc_config *c) {
  c->gc_threads = 65;
}
static void big_compact_threads(ugc_config *c) {
  c->compact_threads = 65;
}
static void odd_huge_pages(ugc_config *c) {
  c->huge_pages = (ugc_huge_pages)3;
}
static void small_heap(ugc_config *c) {
  c->heap_max = 1000;
}
static void huge_heap(ugc_config *c) {
  c->heap_max = (size_t)100 << 40;
}
static void huge_nonmoving(ugc_config *c) {
  c->nonmoving_max = (size_t)2 << 40;
}
static void tiny_large(ugc_config *c) {
  c->large_threshold = 100;
}
static void huge_large(ugc_config *c) {
  c->large_threshold = 32 << 20;
}
static void low_growth(ugc_config *c) {
  c->growth_factor = 0.5;
}
static void odd_verify(ugc_config *c) {
  c->verify = 3;
}
static void odd_mark_assist(ugc_config *c) {
  c->mark_assist = -1;
}
static void odd_concurrent_mark(ugc_config *c) {
  c->concurrent_mark = 2;
}
static void odd_backend(ugc_config *c) {
  c->backend = "fast";
}
static void odd_delivery(ugc_config *c) {
  c->delivery = "carrier";
}

static const field_case bad_fields[] = {
    {"gc_threads", big_threads, "65", "to 64"},
    {"compact_threads", big_compact_threads, "65", "0 (automatic: gc_threads - 1"},
    {"huge_pages", odd_huge_pages, "3", "UGC_HUGE_PAGES_AUTO (0)"},
    {"heap_max", small_heap, "1000 (1000B)", "1 MiB to 64 TiB"},
    {"heap_max", huge_heap, "(100TiB)", "1 MiB to 64 TiB"},
    {"nonmoving_max", huge_nonmoving, "(2.0TiB)", "at most 1 TiB"},
    {"large_threshold", tiny_large, "100 (100B)", "256 bytes to 16 MiB"},
    {"large_threshold", huge_large, "(32.0MiB)", "256 bytes to 16 MiB"},
    {"growth_factor", low_growth, "0.5", "1.0 to 1000"},
    {"verify", odd_verify, "3", "2 (on, compactions finished in the pause) or 0 (off)"},
    {"concurrent_mark", odd_concurrent_mark, "2", "1 (mark while mutators run) or 0"},
    {"mark_assist", odd_mark_assist, "-1", "1 (mutators help a concurrent marking) or 0"},
    {"backend", odd_backend, "\"fast\"", "auto, stw"},
    {"delivery", odd_delivery, "\"carrier\"", "sigbus or thread"},
};

static void expect_fragment(const char *message, const char *fragment, const char *what) {
  if (fragment && !strstr(message, fragment)) {
    fprintf(stderr, "%s: message lacks \"%s\": %s\n", what, fragment, message);
    ugc_test_failures++;
  }
}

static void check_sizes(void) {
  static const struct {
    const char *text;
    size_t bytes;
  } good[] = {{"0", 0},
              {"1048576", 1048576},
              {"64K", 64 << 10},
              {"64k", 64 << 10},
              {"512M", 512u << 20},
              {"2G", (size_t)2 << 30},
              {"2GiB", (size_t)2 << 30},
              {"3MB", 3u << 20},
              {"1T", (size_t)1 << 40},
              {"16384T", (size_t)1 << 54}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    size_t out = 1;
    CHECK(ugc_size_parse(good[i].text, &out));
    CHECK_EQ_U64(out, good[i].bytes);
  }
  static const char *const bad[] = {"",
                                    "M",
                                    "-1",
                                    "+1",
                                    " 1",
                                    "1 ",
                                    "1X",
                                    "1.5G",
                                    "1e6",
                                    "1Gx",
                                    "1iB",
                                    "16777216T",
                                    "18446744073709551616"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t out = 7;
    if (ugc_size_parse(bad[i], &out)) {
      fprintf(stderr, "size \"%s\" accepted as %zu\n", bad[i], out);
      ugc_test_failures++;
    }
  }
  static const struct {
    size_t bytes;
    const char *text;
  } shown[] = {{0, "0B"},
               {1023, "1023B"},
               {1024, "1.0KiB"},
               {40 << 10, "40.0KiB"},
               {(size_t)3 << 19, "1.5MiB"},
               {(size_t)256 << 20, "256MiB"},
               {(size_t)2 << 30, "2.0GiB"}};
  for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
    char text[24];
    ugc_size_format(shown[i].bytes, text, sizeof text);
    if (strcmp(text, shown[i].text)) {
      fprintf(stderr, "%zu shown as %s, expected %s\n", shown[i].bytes, text, shown[i].text);
      ugc_test_failures++;
    }
  }
}

int main(void) {
  static const char *const vars[] = {"UFFDGC_BACKEND",
                                     "UFFDGC_DELIVERY",
                                     "UFFDGC_TRACE",
                                     "UFFDGC_VERIFY",
                                     "UFFDGC_HEAP_MAX",
                                     "UFFDGC_GC_THREADS",
                                     "UFFDGC_DISABLE",
                                     "UFFDGC_INJECT",
                                     "UFFDGC_CONCURRENT_MARK",
                                     "UFFDGC_MARK_ASSIST",
                                     "UFFDGC_UNTOUCHED_CONCURRENT",
                                     "UFFDGC_COMPACT_THREADS",
                                     "UFFDGC_THP"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    unsetenv(vars[i]);
  check_sizes();

  ugc_error error;
  for (size_t i = 0; i < sizeof bad_env / sizeof bad_env[0]; i++) {
    const env_case *c = &bad_env[i];
    setenv(c->name, c->value, 1);
    memset(&error, 0, sizeof error);
    ugc_heap *heap = ugc_heap_create(NULL, &error);
    CHECK(heap == NULL);
    if (heap)
      ugc_heap_destroy(heap);
    CHECK_EQ_U64(error.code, UGC_ERR_INVALID);
    char quoted[128];
    snprintf(quoted, sizeof quoted, "%s=\"%s\"", c->name, c->value);
    expect_fragment(error.message, quoted, c->name);
    expect_fragment(error.message, "expected", c->name);
    expect_fragment(error.message, c->accepted, c->name);
    unsetenv(c->name);
  }
  for (size_t i = 0; i < sizeof good_env / sizeof good_env[0]; i++) {
    const env_case *c = &good_env[i];
    setenv(c->name, c->value, 1);
    ugc_config config;
    ugc_config_init(&config);
    config.backend = "stw"; /* runs everywhere; UFFDGC_BACKEND still overrides it */
    memset(&error, 0, sizeof error);
    ugc_heap *heap = ugc_heap_create(&config, &error);
    if (!heap) {
      fprintf(stderr, "%s=\"%s\" refused: %s\n", c->name, c->value, error.message);
      ugc_test_failures++;
    } else {
      ugc_heap_destroy(heap);
    }
    unsetenv(c->name);
  }

  for (size_t i = 0; i < sizeof bad_fields / sizeof bad_fields[0]; i++) {
    const field_case *c = &bad_fields[i];
    ugc_config config;
    ugc_config_init(&config);
    c->set(&config);
    memset(&error, 0, sizeof error);
    ugc_heap *heap = ugc_heap_create(&config, &error);
    CHECK(heap == NULL);
    if (heap)
      ugc_heap_destroy(heap);
    CHECK_EQ_U64(error.code, UGC_ERR_INVALID);
    char name[64];
    snprintf(name, sizeof name, "config.%s", c->field);
    expect_fragment(error.message, name, c->field);
    expect_fragment(error.message, c->value, c->field);
    expect_fragment(error.message, "expected", c->field);
    expect_fragment(error.message, c->accepted, c->field);
  }

  /* Zero fields take their defaults. */
  ugc_config config;
  memset(&config, 0, sizeof config);
  config.backend = "stw";
  ugc_heap *heap = ugc_heap_create(&config, &error);
  REQUIRE(heap);
  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  CHECK_EQ_U64(stats.heap_max_bytes, (size_t)256 << 20);
  ugc_heap_destroy(heap);
  /* The environment overrides the field, and its message names the variable. */
  setenv("UFFDGC_HEAP_MAX", "48M", 1);
  heap = ugc_heap_create(&config, &error);
  REQUIRE(heap);
  ugc_stats_get(heap, &stats);
  CHECK_EQ_U64(stats.heap_max_bytes, (size_t)48 << 20);
  ugc_heap_destroy(heap);
  unsetenv("UFFDGC_HEAP_MAX");
  TEST_DONE();
}
