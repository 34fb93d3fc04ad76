/* Byte sizes as people write and read them: one parser for every size the library (and its
 * tools) accept, and one formatter for every size it prints. */
#ifndef UGC_RUNTIME_SIZES_H
#define UGC_RUNTIME_SIZES_H

#include <stdbool.h>
#include <stddef.h>

/* Parses a size: decimal digits, optionally followed by K, M, G or T (powers of 1024, either
 * case), optionally followed by "i" and/or "B" ("512M", "2GiB", "64k", "1048576"). No sign,
 * no spaces, no fraction. False when the text is not such a size or overflows size_t. */
bool ugc_size_parse(const char *text, size_t *out);

/* Writes `bytes` for a person: "512B", "12.0KiB", "3.5MiB", "256MiB" (the largest unit that
 * keeps the number at least 1; one decimal below 100). Returns out. */
char *ugc_size_format(size_t bytes, char *out, size_t out_len);

/* Limits for the heap sizes, shared by the configuration checks and the tools. */
#define UGC_HEAP_MAX_MIN ((size_t)1 << 20)        /* 1 MiB */
#define UGC_HEAP_MAX_LIMIT ((size_t)1 << 46)      /* 64 TiB */
#define UGC_NONMOVING_MAX_LIMIT ((size_t)1 << 40) /* 1 TiB */

#endif
