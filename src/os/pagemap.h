/* Which pages of a private file mapping hold a private copy (written since they were
 * mapped, so copy-on-write gave the mapping an anonymous page of its own) rather than the
 * file's page: the PAGEMAP_SCAN ioctl of /proc/self/pagemap (Linux 6.7). */
#ifndef UGC_OS_PAGEMAP_H
#define UGC_OS_PAGEMAP_H

#include <stddef.h>
#include <stdint.h>

/* Sets bit i of `bits` (the caller clears them) for each page i of [start, start + bytes)
 * that is a private copy: present and anonymous, or swapped out (a file page is never a
 * swap entry in the page table). A page not present reads the file. 0, or -errno (ENOTTY:
 * the kernel has no PAGEMAP_SCAN); on failure the bits are unspecified. Not signal-safe
 * (opens /proc/self/pagemap: a descriptor kept open would follow the parent after fork). */
int ugc_pagemap_private_copies(uintptr_t start, size_t bytes, uint64_t *bits);

#endif
