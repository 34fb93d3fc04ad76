/* Times MREMAP_DONTUNMAP of 64 MiB of populated anonymous memory between reservations at
 * three relative alignments. Page-table moves dominate: whole PMD entries when both ends
 * are 2 MiB-aligned, single PTEs otherwise. Best of three runs. */
#include <stdio.h>
#include <string.h>

#include "os/remap.h"
#include "os/reserve.h"
#include "os/time.h"
#include "report.h"

#define MEASURE_LEN (64 * UGC_MiB)
#define MEASURE_RUNS 3

/* One populated move from src to dst; microseconds or a negative errno. */
static double one_move(char *src, char *dst) {
  int rc = ugc_commit_fresh(src, MEASURE_LEN);
  if (rc != 0)
    return rc;
  size_t page = ugc_page_size();
  for (size_t off = 0; off < MEASURE_LEN; off += page)
    src[off] = 1;
  uint64_t t0 = ugc_now_ns();
  rc = ugc_remap_dontunmap(src, dst, MEASURE_LEN, NULL);
  uint64_t t1 = ugc_now_ns();
  ugc_uncommit(src, MEASURE_LEN);
  ugc_uncommit(dst, MEASURE_LEN);
  return rc == 0 ? (double)(t1 - t0) / 1000.0 : rc;
}

void probe_measure_remap(probe_report *r) {
  static const struct {
    const char *label;
    size_t src_off, dst_off;
  } cases[3] = {
      {"1GiB", 0, 0},
      {"2MiB", 2 * UGC_MiB, 4 * UGC_MiB},
      {"4KiB", 4 * UGC_KiB, 8 * UGC_KiB}, /* different offsets: no PMD-level moves either */
  };
  for (int i = 0; i < 3; i++)
    r->timing[i] = (probe_timing){cases[i].label, -1};
  if (!r->dontunmap_anon) {
    snprintf(r->measure_note, sizeof r->measure_note, "MREMAP_DONTUNMAP unavailable");
    return;
  }
  ugc_reservation a, b;
  size_t size = MEASURE_LEN + 8 * UGC_MiB;
  if (ugc_os_reserve(&a, size, UGC_GiB) != 0 || ugc_os_reserve(&b, size, UGC_GiB) != 0) {
    snprintf(r->measure_note, sizeof r->measure_note, "could not reserve address space");
    return;
  }
  r->reservation_align = a.align_obtained < b.align_obtained ? a.align_obtained : b.align_obtained;
  for (int i = 0; i < 3; i++) {
    double best = -1;
    for (int run = 0; run < MEASURE_RUNS; run++) {
      double us = one_move((char *)a.base + cases[i].src_off, (char *)b.base + cases[i].dst_off);
      if (us < 0) {
        snprintf(r->measure_note, sizeof r->measure_note, "mremap failed: %s",
                 ugc_remap_explain((int)us));
        best = -1;
        break;
      }
      if (best < 0 || us < best)
        best = us;
    }
    r->timing[i].us = best;
  }
  r->measured = r->timing[0].us >= 0;
  ugc_os_release(&a);
  ugc_os_release(&b);
}
