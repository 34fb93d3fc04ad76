/* What an EEXIST from mapping a to-space page means (eexist.h). Everything here runs in
 * signal handlers too: no stdio, no allocation. */
#include "compact/eexist.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Appends " <label><value in hex>" to buf[*at] (async-signal-safe). */
static void append_hex(char *buf, size_t size, size_t *at, const char *label, uint64_t value) {
  char digits[17];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[value & 15];
    value >>= 4;
  } while (value && n < 16);
  for (const char *l = " "; *l && *at + 1 < size; l++)
    buf[(*at)++] = *l;
  for (; *label && *at + 1 < size; label++)
    buf[(*at)++] = *label;
  while (n > 0 && *at + 1 < size)
    buf[(*at)++] = digits[--n];
  buf[*at] = 0;
}

/* The kernel's view of the page at `address` (/proc/self/pagemap: bit 63 present, bit 62
 * swapped, bits 0-54 the frame number when privileged), for a fatal message; ~0 when it
 * cannot be read. open/pread/close are async-signal-safe. */
static uint64_t pagemap_entry(uintptr_t address) {
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ~(uint64_t)0;
  uint64_t entry = ~(uint64_t)0;
  if (pread(fd, &entry, sizeof entry, (off_t)(address / UGC_PAGE_SIZE * sizeof entry)) !=
      (ssize_t)sizeof entry)
    entry = ~(uint64_t)0;
  close(fd);
  return entry;
}

/* An EEXIST from UFFDIO_MOVE for a page that the same call did move: the destination page
 * is present and the source page gone, and no helper mapped it (checked by the caller).
 * Seen on Linux 6.18 about once in 80 runs of test_pin_io on move (a recycled page, its
 * 2 MiB destination region holding pinned pages): the kernel moved the page, then reported
 * it as not moved, with EEXIST. Nobody else maps a to-space page (the pause dropped what a
 * stray access mapped), so the page there is ours. Said once per process on stderr, and
 * counted. Async-signal-safe (pagemap reads). */
bool ugc_eexist_moved_anyway(ugc_concurrent *c, uintptr_t dst, const void *src) {
  uint64_t at_dst = pagemap_entry(dst), at_src = pagemap_entry((uintptr_t)src);
  bool present = at_dst != ~(uint64_t)0 && (at_dst >> 63) & 1;
  bool gone = at_src != ~(uint64_t)0 && !((at_src >> 62) & 3); /* neither present nor swapped */
  if (!present || !gone)
    return false;
  atomic_fetch_add_explicit(&c->counters.moves_misreported, 1, memory_order_relaxed);
  static atomic_bool said;
  if (!atomic_exchange(&said, true)) {
    static const char text[] = "uffdgc: UFFDIO_MOVE answered EEXIST for a page it had moved "
                               "(a kernel reporting quirk); taken as moved\n";
    ssize_t ignored = write(STDERR_FILENO, text, sizeof text - 1);
    (void)ignored;
  }
  return true;
}

/* An EEXIST nobody explains: says everything known about the page (kind of source, state
 * word, the kernel's entries for the page and its 2 MiB neighbourhood), then aborts. */
void ugc_eexist_unexplained(ugc_concurrent *c, size_t page, const char *source, bool move) {
  char text[640];
  size_t at = 0;
  text[0] = 0;
  uintptr_t address = c->space_base + page * UGC_PAGE_SIZE;
  uintptr_t region = address & ~(((uintptr_t)2 << 20) - 1);
  size_t present = 0;
  for (uintptr_t p = region; p < region + ((uintptr_t)2 << 20); p += UGC_PAGE_SIZE)
    present += pagemap_entry(p) >> 63 == 1;
  append_hex(text, sizeof text, &at, "page=", page);
  append_hex(text, sizeof text, &at, "of=", c->states.count);
  append_hex(text, sizeof text, &at, "word=", atomic_load(&c->states.words[page]));
  append_hex(text, sizeof text, &at, "move=", move);
  append_hex(text, sizeof text, &at, "dst=", address);
  append_hex(text, sizeof text, &at, "src=", (uintptr_t)source);
  append_hex(text, sizeof text, &at, "from_delta=", (uint64_t)c->from_delta);
  append_hex(text, sizeof text, &at, "dense_end=", c->plan->dense_end);
  append_hex(text, sizeof text, &at, "helpers=", atomic_load(&c->helpers_active));
  append_hex(text, sizeof text, &at, "pagemap=", pagemap_entry(address));
  append_hex(text, sizeof text, &at, "src_pagemap=", pagemap_entry((uintptr_t)source));
  append_hex(text, sizeof text, &at, "present_in_2M=", present);
  append_hex(text, sizeof text, &at,
             "prev_word=", page ? atomic_load(&c->states.words[page - 1]) : 0);
  append_hex(text, sizeof text, &at, "next_word=",
             page + 1 < c->states.count ? atomic_load(&c->states.words[page + 1]) : 0);
  static const char prefix[] = "uffdgc: concurrent compaction: unexplained EEXIST:";
  ssize_t ignored = write(STDERR_FILENO, prefix, sizeof prefix - 1);
  ignored = write(STDERR_FILENO, text, at);
  ignored = write(STDERR_FILENO, "\n", 1);
  (void)ignored;
  static const char fatal[] = "uffdgc: fatal: concurrent compaction: a to-space page was "
                              "mapped by someone who does not own it (EEXIST that is not a "
                              "helper's)\n";
  ignored = write(STDERR_FILENO, fatal, sizeof fatal - 1);
  abort();
}
