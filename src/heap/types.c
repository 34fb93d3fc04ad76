/* The type table: registered object layouts, append-only (ids never change meaning). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "heap/object.h"
#include "os/log.h"

static void set_error(ugc_error *error, ugc_error_code code, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(ugc_error *error, ugc_error_code code, const char *name, const char *fmt,
                      ...) {
  if (!error)
    return;
  error->code = code;
  char cause[UGC_ERROR_MESSAGE_BYTES];
  va_list args;
  va_start(args, fmt);
  ugc_format_message_v(cause, sizeof cause, fmt, args);
  va_end(args);
  ugc_format_message(error->message, sizeof error->message, "ugc_type_register: type \"%s\": %s",
                     name ? name : "(unnamed)", cause);
}

int ugc_type_table_init(ugc_type_table *types) {
  /* Reserved once so that entries never move: readers index without a lock. */
  void *entries = mmap(NULL, ugc_type_table_bytes(), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (entries == MAP_FAILED)
    return -errno;
  types->entries = entries;
  ugc_type_info *filler = &types->entries[UGC_FILLER_TYPE];
  snprintf(filler->name, sizeof filler->name, "filler");
  filler->layout = UGC_LAYOUT_LEAF;
  atomic_store_explicit(&types->count, 1, memory_order_release);
  return 0;
}

void ugc_type_table_destroy(ugc_type_table *types) {
  if (!types->entries)
    return;
  uint32_t count = ugc_type_count(types);
  for (uint32_t i = 0; i < count; i++)
    free(types->entries[i].ref_offsets);
  munmap(types->entries, (size_t)UGC_TYPE_TABLE_CAPACITY * sizeof(ugc_type_info));
  types->entries = NULL;
}

/* Offsets of `count` slots: aligned, inside fixed_size, each once, none in `others`. */
static bool check_offsets(const ugc_type_desc *desc, const char *field, const uint32_t *offsets,
                          uint32_t count, const uint32_t *others, uint32_t other_count,
                          ugc_error *error) {
  for (uint32_t i = 0; i < count; i++) {
    uint32_t offset = offsets[i];
    if (offset % 8) {
      set_error(error, UGC_ERR_INVALID, desc->name, "%s[%u] = %u is not 8-byte aligned", field, i,
                offset);
      return false;
    }
    if ((size_t)offset + 8 > desc->fixed_size) {
      set_error(error, UGC_ERR_INVALID, desc->name,
                "%s[%u] = %u is outside fixed_size (the slot must end within it)", field, i,
                offset);
      return false;
    }
    for (uint32_t j = 0; j < i; j++)
      if (offsets[j] == offset) {
        set_error(error, UGC_ERR_INVALID, desc->name, "%s[%u] = %u appears twice", field, i,
                  offset);
        return false;
      }
    for (uint32_t j = 0; j < other_count; j++)
      if (others[j] == offset) {
        set_error(error, UGC_ERR_INVALID, desc->name, "%s[%u] = %u is also in ref_offsets", field,
                  i, offset);
        return false;
      }
  }
  return true;
}

ugc_type_id ugc_type_table_add(ugc_type_table *types, const ugc_type_desc *desc, ugc_error *error) {
  if (!desc) {
    set_error(error, UGC_ERR_INVALID, NULL, "the description is NULL");
    return 0;
  }
  const char *name = desc->name;
  uint32_t count = ugc_type_count(types);
  if (count >= UGC_TYPE_TABLE_CAPACITY) {
    set_error(error, UGC_ERR_INVALID, name, "too many types (the table holds %u)",
              UGC_TYPE_TABLE_CAPACITY - 1);
    return 0;
  }
  switch (desc->layout) {
  case UGC_LAYOUT_FIXED:
  case UGC_LAYOUT_REF_ARRAY:
  case UGC_LAYOUT_LEAF:
  case UGC_LAYOUT_CUSTOM:
    break;
  default:
    set_error(error, UGC_ERR_INVALID, name, "unknown layout %lu", (unsigned long)desc->layout);
    return 0;
  }
  if (desc->fixed_size >= ((size_t)1 << 32)) {
    set_error(error, UGC_ERR_INVALID, name, "fixed_size %lu is too large (limit 4 GiB)",
              (unsigned long)desc->fixed_size);
    return 0;
  }
  if (desc->layout == UGC_LAYOUT_CUSTOM && !desc->trace) {
    set_error(error, UGC_ERR_INVALID, name, "layout CUSTOM needs a trace callback");
    return 0;
  }
  if (desc->layout != UGC_LAYOUT_CUSTOM && desc->trace) {
    set_error(error, UGC_ERR_INVALID, name, "a trace callback is only allowed with layout CUSTOM");
    return 0;
  }
  if (desc->pointer_tag & ~desc->pointer_tag_mask) {
    set_error(error, UGC_ERR_INVALID, name,
              "pointer_tag %#lx has bits outside pointer_tag_mask %#lx (no value would be a "
              "reference)",
              (unsigned long)desc->pointer_tag, (unsigned long)desc->pointer_tag_mask);
    return 0;
  }
  if (desc->reference_offset & desc->tag_mask) {
    set_error(error, UGC_ERR_INVALID, name,
              "reference_offset %#lx has bits inside tag_mask %#lx (they would be stripped as "
              "tag bits)",
              (unsigned long)desc->reference_offset, (unsigned long)desc->tag_mask);
    return 0;
  }
  bool has_offsets = desc->layout == UGC_LAYOUT_FIXED || desc->layout == UGC_LAYOUT_REF_ARRAY;
  if (!has_offsets && desc->ref_count) {
    set_error(error, UGC_ERR_INVALID, name,
              "ref_count is %u but layout LEAF/CUSTOM takes no ref_offsets", desc->ref_count);
    return 0;
  }
  if (desc->ref_count && !desc->ref_offsets) {
    set_error(error, UGC_ERR_INVALID, name, "ref_count is %u but ref_offsets is NULL",
              desc->ref_count);
    return 0;
  }
  if (desc->layout == UGC_LAYOUT_REF_ARRAY && desc->fixed_size % 8) {
    set_error(error, UGC_ERR_INVALID, name,
              "REF_ARRAY fixed_size %lu is not a multiple of 8 (the array must be aligned)",
              (unsigned long)desc->fixed_size);
    return 0;
  }
  if (!check_offsets(desc, "ref_offsets", desc->ref_offsets, desc->ref_count, NULL, 0, error))
    return 0;
  if (desc->weak_count && !desc->weak_offsets) {
    set_error(error, UGC_ERR_INVALID, name, "weak_count is %u but weak_offsets is NULL",
              desc->weak_count);
    return 0;
  }
  if ((desc->weak_count || desc->ephemeron) && desc->layout != UGC_LAYOUT_FIXED) {
    set_error(error, UGC_ERR_INVALID, name, "weak_offsets and ephemeron need layout FIXED");
    return 0;
  }
  if (desc->ephemeron && (desc->ref_count != 2 || desc->weak_count)) {
    set_error(error, UGC_ERR_INVALID, name,
              "an ephemeron has exactly two ref_offsets (key, value) and no weak_offsets");
    return 0;
  }
  if (!check_offsets(desc, "weak_offsets", desc->weak_offsets, desc->weak_count, desc->ref_offsets,
                     desc->ref_count, error))
    return 0;
  ugc_type_info *info = &types->entries[count];
  memset(info, 0, sizeof *info);
  uint32_t slots = desc->ref_count + desc->weak_count;
  if (slots) {
    info->ref_offsets = malloc(slots * sizeof(uint32_t));
    if (!info->ref_offsets) {
      set_error(error, UGC_ERR_NOMEM, name, "out of memory for ref_offsets");
      return 0;
    }
    if (desc->ref_count)
      memcpy(info->ref_offsets, desc->ref_offsets, desc->ref_count * sizeof(uint32_t));
    if (desc->weak_count)
      memcpy(info->ref_offsets + desc->ref_count, desc->weak_offsets,
             desc->weak_count * sizeof(uint32_t));
  }
  snprintf(info->name, sizeof info->name, "%s", name ? name : "");
  info->layout = desc->layout;
  info->ref_count = slots;
  info->ephemeron = desc->ephemeron;
  info->strong_count = desc->ephemeron ? 0 : desc->ref_count;
  info->cleared_value = desc->cleared_value;
  info->fixed_size = desc->fixed_size;
  info->tags = ugc_tag_rule_of(desc);
  info->trace = desc->trace;
  /* Publish: readers load count with acquire and then see the complete entry. */
  atomic_store_explicit(&types->count, count + 1, memory_order_release);
  return count;
}
