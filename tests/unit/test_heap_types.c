/* Type registration: good layouts get increasing ids, bad ones a clear error. */
#include <string.h>

#include "test.h"
#include "uffdgc.h"

static void trace_nothing(void *obj, size_t bytes, ugc_tracer *tracer) {}

static void expect_error(ugc_heap *heap, const ugc_type_desc *desc, const char *fragment) {
  ugc_error error = {0};
  ugc_type_id id = ugc_type_register(heap, desc, &error);
  CHECK(id == 0);
  CHECK(error.code == UGC_ERR_INVALID);
  CHECK(strstr(error.message, "ugc_type_register") != NULL);
  if (!strstr(error.message, fragment)) {
    fprintf(stderr, "message \"%s\" lacks \"%s\"\n", error.message, fragment);
    ugc_test_failures++;
  }
}

int main(void) {
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = 16 << 20;
  ugc_error error;
  ugc_heap *heap = ugc_heap_create(&config, &error);
  REQUIRE(heap);

  uint32_t pair_refs[] = {0, 8};
  ugc_type_desc pair = {.name = "pair",
                        .layout = UGC_LAYOUT_FIXED,
                        .fixed_size = 16,
                        .ref_offsets = pair_refs,
                        .ref_count = 2};
  ugc_type_id a = ugc_type_register(heap, &pair, &error);
  ugc_type_desc leaf = {.name = "bytes", .layout = UGC_LAYOUT_LEAF};
  ugc_type_id b = ugc_type_register(heap, &leaf, &error);
  ugc_type_desc custom = {.name = "custom", .layout = UGC_LAYOUT_CUSTOM, .trace = trace_nothing};
  ugc_type_id c = ugc_type_register(heap, &custom, &error);
  uint32_t header_ref[] = {8};
  ugc_type_desc array = {.name = "array",
                         .layout = UGC_LAYOUT_REF_ARRAY,
                         .fixed_size = 16,
                         .ref_offsets = header_ref,
                         .ref_count = 1};
  ugc_type_id d = ugc_type_register(heap, &array, &error);
  CHECK(a == 1 && b == 2 && c == 3 && d == 4);

  uint32_t unaligned[] = {4};
  expect_error(heap,
               &(ugc_type_desc){.name = "u",
                                .layout = UGC_LAYOUT_FIXED,
                                .fixed_size = 16,
                                .ref_offsets = unaligned,
                                .ref_count = 1},
               "not 8-byte aligned");
  uint32_t outside[] = {16};
  expect_error(heap,
               &(ugc_type_desc){.name = "o",
                                .layout = UGC_LAYOUT_FIXED,
                                .fixed_size = 16,
                                .ref_offsets = outside,
                                .ref_count = 1},
               "outside fixed_size");
  expect_error(heap, &(ugc_type_desc){.name = "c", .layout = UGC_LAYOUT_CUSTOM},
               "needs a trace callback");
  expect_error(heap,
               &(ugc_type_desc){.name = "t", .layout = UGC_LAYOUT_LEAF, .trace = trace_nothing},
               "only allowed with layout CUSTOM");
  expect_error(
      heap,
      &(ugc_type_desc){.name = "n", .layout = UGC_LAYOUT_FIXED, .fixed_size = 16, .ref_count = 1},
      "ref_offsets is NULL");
  uint32_t twice[] = {0, 0};
  expect_error(heap,
               &(ugc_type_desc){.name = "d",
                                .layout = UGC_LAYOUT_FIXED,
                                .fixed_size = 16,
                                .ref_offsets = twice,
                                .ref_count = 2},
               "appears twice");
  expect_error(heap,
               &(ugc_type_desc){.name = "r", .layout = UGC_LAYOUT_REF_ARRAY, .fixed_size = 12},
               "not a multiple of 8");
  expect_error(heap, &(ugc_type_desc){.name = "x", .layout = (ugc_layout)42}, "unknown layout");
  expect_error(heap, NULL, "NULL");
  /* The message names the type. */
  memset(&error, 0, sizeof error);
  ugc_type_register(heap, &(ugc_type_desc){.name = "named-type", .layout = UGC_LAYOUT_CUSTOM},
                    &error);
  CHECK(strstr(error.message, "named-type") != NULL);

  /* A failed registration takes no id. */
  ugc_type_id e = ugc_type_register(heap, &leaf, &error);
  CHECK(e == 5);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
