/* Byte sizes: parsing and formatting (see sizes.h). */
#include "runtime/sizes.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>

bool ugc_size_parse(const char *text, size_t *out) {
  if (!text || !isdigit((unsigned char)*text))
    return false;
  uint64_t value = 0;
  const char *p = text;
  for (; isdigit((unsigned char)*p); p++) {
    unsigned digit = (unsigned)(*p - '0');
    if (value > (UINT64_MAX - digit) / 10)
      return false;
    value = value * 10 + digit;
  }
  unsigned shift = 0;
  switch (toupper((unsigned char)*p)) {
  case 'K':
    shift = 10;
    break;
  case 'M':
    shift = 20;
    break;
  case 'G':
    shift = 30;
    break;
  case 'T':
    shift = 40;
    break;
  default:
    break;
  }
  if (shift) {
    p++;
    if (*p == 'i')
      p++;
    if (*p == 'B' || *p == 'b')
      p++;
  }
  if (*p || value > (uint64_t)SIZE_MAX >> shift)
    return false;
  *out = (size_t)(value << shift);
  return true;
}

char *ugc_size_format(size_t bytes, char *out, size_t out_len) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) {
    snprintf(out, out_len, "%zuB", bytes);
    return out;
  }
  double value = (double)bytes / 1024.0;
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < sizeof units / sizeof units[0]) {
    value /= 1024.0;
    unit++;
  }
  snprintf(out, out_len, value >= 100.0 ? "%.0f%s" : "%.1f%s", value, units[unit]);
  return out;
}
