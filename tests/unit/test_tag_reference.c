/* Decoding and encoding slot values under a tag rule (ugc_tag_reference, ugc_tag_rewrite):
 *  - references round-trip under rules with and without a reference offset, low and high tag
 *    bits, and a rewrite to a new payload keeps the value's tag bits;
 *  - immediates, and NULL under any tag and offset, decode to 0;
 *  - with reference_offset 0 the decoding is the rule without offsets, value for value;
 *  - the write barrier's marking half records the payload addresses of the overwritten and
 *    the stored reference, and no immediate;
 *  - a type or a heap whose reference offset has bits in its tag mask is refused. */
#include <string.h>

#include "runtime/heap.h"
#include "test.h"
#include "uffdgc.h"

#define FIX(n) ((uintptr_t)(n) << 2)

static const ugc_tag_rule untagged = {0, 0, 0, 0};
static const ugc_tag_rule fixnum_low_bit = {.tag_mask = 1, .pointer_tag_mask = 1};
static const ugc_tag_rule scheme48 = {
    .tag_mask = 3, .pointer_tag_mask = 3, .pointer_tag = 3, .reference_offset = 8};
static const ugc_tag_rule offset_only = {.reference_offset = 24};
static const ugc_tag_rule high_tags = {.tag_mask = UINT64_C(0xFFFF) << 48,
                                       .pointer_tag_mask = UINT64_C(0xFFFF) << 48,
                                       .pointer_tag = UINT64_C(0xFFF9) << 48,
                                       .reference_offset = 16};

static void check_round_trip(const ugc_tag_rule *rule, uintptr_t payload, uintptr_t moved) {
  uintptr_t value = ugc_tag_rewrite(rule->pointer_tag, payload, rule);
  CHECK_EQ_U64(value & rule->pointer_tag_mask, rule->pointer_tag);
  CHECK_EQ_U64(value & ~rule->tag_mask, payload + rule->reference_offset);
  CHECK_EQ_U64(ugc_tag_reference(value, rule), payload);
  uintptr_t rewritten = ugc_tag_rewrite(value, moved, rule);
  CHECK_EQ_U64(rewritten & rule->tag_mask, value & rule->tag_mask);
  CHECK_EQ_U64(ugc_tag_reference(rewritten, rule), moved);
}

/* The decoding rule as it was before reference offsets. */
static uintptr_t without_offsets(uintptr_t value, const ugc_tag_rule *rule) {
  return (value & rule->pointer_tag_mask) == rule->pointer_tag ? value & ~rule->tag_mask : 0;
}

static uint64_t next_random(uint64_t *state) {
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return *state;
}

static void check_refused(void) {
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = 16u << 20;
  config.root_tag_mask = 7;
  config.root_reference_offset = 12; /* bit 2 is a tag bit */
  ugc_error error;
  memset(&error, 0, sizeof error);
  CHECK(ugc_heap_create(&config, &error) == NULL);
  CHECK(error.code == UGC_ERR_INVALID);
  CHECK(strstr(error.message, "root_reference_offset") != NULL);

  config.root_reference_offset = 8;
  ugc_heap *heap = ugc_heap_create(&config, &error);
  REQUIRE(heap);
  ugc_type_desc leaf = {
      .name = "leaf", .layout = UGC_LAYOUT_LEAF, .tag_mask = 3, .reference_offset = 10};
  CHECK(ugc_type_register(heap, &leaf, &error) == 0);
  CHECK(error.code == UGC_ERR_INVALID);
  CHECK(strstr(error.message, "reference_offset") != NULL);
  leaf.reference_offset = 8;
  CHECK(ugc_type_register(heap, &leaf, &error) != 0);
  ugc_heap_destroy(heap);
}

/* What ugc_write_tagged does into a[1] while marking runs. */
static void store_while_marking(ugc_mutator *m, uintptr_t *a, uintptr_t value) {
  ugc_write_tagged_marking(m, a, &a[1], value);
  a[1] = value;
}

/* ugc_write_tagged's slow half, called directly: it records what it decodes, whether or not
 * marking runs (outside marking nothing counts as allocated black). */
static void check_barrier_records_payloads(void) {
  ugc_config config;
  ugc_config_init(&config);
  config.heap_max = 16u << 20;
  config.backend = "stw";
  ugc_heap *heap = ugc_heap_create(&config, NULL);
  REQUIRE(heap);
  static const uint32_t slots[] = {8};
  ugc_type_desc box = {.name = "box",
                       .layout = UGC_LAYOUT_FIXED,
                       .fixed_size = 16,
                       .ref_offsets = slots,
                       .ref_count = 1,
                       .tag_mask = 3,
                       .pointer_tag_mask = 3,
                       .pointer_tag = 3,
                       .reference_offset = 8};
  ugc_type_id type = ugc_type_register(heap, &box, NULL);
  REQUIRE(type);
  ugc_mutator *m = ugc_thread_attach(heap, NULL);
  REQUIRE(m);
  uintptr_t *a = ugc_alloc(m, type, 16), *b = ugc_alloc(m, type, 16);
  REQUIRE(a && b);
  a[1] = ugc_tag_rewrite(3, (uintptr_t)b, &scheme48);
  uint64_t before = m->satb_recorded;
  store_while_marking(m, a, ugc_tag_rewrite(3, (uintptr_t)a, &scheme48));
  REQUIRE(m->satb && m->satb_recorded == before + 2);
  CHECK_EQ_U64(m->satb->values[m->satb->count - 2], (uintptr_t)b);
  CHECK_EQ_U64(m->satb->values[m->satb->count - 1], (uintptr_t)a);
  store_while_marking(m, a, FIX(12)); /* records a, the value overwritten */
  CHECK_EQ_U64(m->satb_recorded, before + 3);
  CHECK_EQ_U64(m->satb->values[m->satb->count - 1], (uintptr_t)a);
  store_while_marking(m, a, 6); /* a fixnum overwritten by #f: nothing */
  CHECK_EQ_U64(m->satb_recorded, before + 3);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
}

int main(void) {
  const uintptr_t payload = UINT64_C(0x7f0012345678), moved = UINT64_C(0x7f0000000010);
  const ugc_tag_rule *rules[] = {&untagged, &fixnum_low_bit, &scheme48, &offset_only, &high_tags};
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    check_round_trip(rules[i], payload & ~(uintptr_t)7, moved);

  /* Scheme48: a reference is header + 8 + 3, the header being the payload's first word. */
  CHECK_EQ_U64(ugc_tag_rewrite(3, 0x1000, &scheme48), 0x100b);
  CHECK_EQ_U64(ugc_tag_reference(0x100b, &scheme48), 0x1000);
  /* Immediates and NULLs are 0, whatever the offset. */
  CHECK_EQ_U64(ugc_tag_reference(FIX(0x1008 >> 2), &scheme48), 0); /* a fixnum, tag 0 */
  CHECK_EQ_U64(ugc_tag_reference(6, &scheme48), 0);                /* #f, tag 2 */
  CHECK_EQ_U64(ugc_tag_reference(3, &scheme48), 0);                /* a tagged NULL */
  CHECK_EQ_U64(ugc_tag_reference(0, &offset_only), 0);
  CHECK_EQ_U64(ugc_tag_reference(UINT64_C(0xFFF9) << 48, &high_tags), 0);
  CHECK_EQ_U64(ugc_tag_reference(0x1001, &fixnum_low_bit), 0);

  /* Without an offset every value decodes as it did before offsets existed. */
  const ugc_tag_rule *plain[] = {
      &untagged, &fixnum_low_bit,
      &(ugc_tag_rule){.tag_mask = 3, .pointer_tag_mask = 3, .pointer_tag = 3}};
  uint64_t state = 0x9e3779b97f4a7c15u;
  for (int n = 0; n < 1000000; n++) {
    uintptr_t value = next_random(&state);
    if (n & 1)
      value &= 0xFFF; /* small values: NULL and tagged NULLs included */
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
      if (ugc_tag_reference(value, plain[i]) != without_offsets(value, plain[i])) {
        fprintf(stderr, "value %#lx rule %zu differs\n", (unsigned long)value, i);
        ugc_test_failures++;
        n = 1000000;
      }
  }
  check_refused();
  check_barrier_records_payloads();
  TEST_DONE();
}
