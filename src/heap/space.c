#include "heap/space.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "heap/vm.h"
#include "os/disable.h"
#include "os/log.h"
#include "os/madvise.h"

static int fail(ugc_error *error, const char *what, size_t bytes) {
  if (error) {
    error->code = UGC_ERR_NOMEM;
    char why[320];
    ugc_describe_map_failure(why, sizeof why, bytes, errno);
    ugc_format_message(error->message, sizeof error->message,
                       "ugc_heap_create: cannot reserve %zu MiB of address space for %s: %s",
                       bytes >> 20, what, why);
  }
  return -1;
}

int ugc_moving_space_init(ugc_moving_space *space, size_t heap_max, size_t nonmoving_bytes,
                          ugc_error *error) {
  memset(space, 0, sizeof *space);
  size_t reserved = ugc_round_up(heap_max, UGC_VM_GiB);
  nonmoving_bytes = ugc_round_up(nonmoving_bytes, 2 * UGC_VM_MiB);
  /* One reservation for both spaces so that one card table covers them. */
  void *base = ugc_vm_reserve_aligned(reserved + nonmoving_bytes, UGC_VM_GiB);
  if (!base)
    return fail(error, "the moving space", reserved + nonmoving_bytes);
  space->base = (uintptr_t)base;
  space->reserved_bytes = reserved;
  space->top = space->base;
  space->limit = space->base + ugc_round_up(heap_max, 4096);
  space->nonmoving_base = space->base + reserved;
  space->nonmoving_bytes = nonmoving_bytes;
  if (ugc_vm_map_fixed(base, reserved, true) != 0)
    goto fail_all;
  /* Huge pages or not: decided with the backend (ugc_moving_space_use_huge_pages). */
  void *from = ugc_vm_reserve_aligned(reserved, UGC_VM_GiB);
  if (!from)
    goto fail_all;
  space->from_base = (uintptr_t)from;
  size_t bitmap_bytes = reserved / 64;
  void *bitmap = mmap(NULL, bitmap_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (bitmap == MAP_FAILED)
    goto fail_all;
  space->live_words = bitmap;
  /* The object-start bitmap: like the live-words bitmap, only touched pages cost memory. */
  void *starts = mmap(NULL, bitmap_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (starts == MAP_FAILED)
    goto fail_all;
  space->start_words = starts;
  space->covered_low = space->base;
  space->covered_bytes = reserved + nonmoving_bytes;
  void *cards = mmap(NULL, space->covered_bytes >> UGC_CARD_SHIFT, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (cards == MAP_FAILED)
    goto fail_all;
  space->cards = cards;
  void *spare = mmap(NULL, space->covered_bytes >> UGC_CARD_SHIFT, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (spare == MAP_FAILED)
    goto fail_all;
  space->cards_spare = spare;
  return 0;

fail_all:;
  int saved = errno;
  ugc_moving_space_destroy(space);
  errno = saved;
  return fail(error, "the moving space's from-space, bitmaps or cards", reserved);
}

/* Huge pages make a fault in the free part of the heap bring 2 MiB at once: `stw`, which
 * gives that part back after every compaction and faults it in again, runs 1.2-1.9x faster
 * with them here. `copy` keeps that memory for the next cycle instead (backend/retain.h),
 * and both concurrent backends build to-space as 4 KiB pages; on a VM whose host takes back
 * free guest memory, a first touch costs about 16 us per 4 KiB as huge pages against 2 us
 * as small ones: `copy` and `move` were faster without them on most workloads measured
 * (docs/design.md, "Huge pages"). */
void ugc_moving_space_use_huge_pages(ugc_moving_space *space, bool on) {
  space->huge_pages = on && !ugc_feature_disabled("thp");
  if (space->huge_pages)
    ugc_madv_hugepage((void *)space->base, space->reserved_bytes);
  else
    ugc_madv_nohugepage((void *)space->base, space->reserved_bytes);
}

void ugc_moving_space_destroy(ugc_moving_space *space) {
  if (space->base)
    ugc_vm_unmap((void *)space->base, space->reserved_bytes + space->nonmoving_bytes);
  if (space->from_base)
    ugc_vm_unmap((void *)space->from_base, space->reserved_bytes);
  if (space->live_words)
    ugc_vm_unmap(space->live_words, space->reserved_bytes / 64);
  if (space->start_words)
    ugc_vm_unmap(space->start_words, space->reserved_bytes / 64);
  if (space->cards)
    ugc_vm_unmap(space->cards, space->covered_bytes >> UGC_CARD_SHIFT);
  if (space->cards_spare)
    ugc_vm_unmap(space->cards_spare, space->covered_bytes >> UGC_CARD_SHIFT);
  memset(space, 0, sizeof *space);
}

/* Large clears give the pages back instead of writing zeros over them. */
static void clear_range(void *start, size_t bytes) {
  const size_t big = 1u << 20;
  if (bytes < 2 * big) {
    memset(start, 0, bytes);
    return;
  }
  uintptr_t lo = ugc_round_up((uintptr_t)start, 4096);
  uintptr_t hi = ((uintptr_t)start + bytes) & ~(uintptr_t)4095;
  memset(start, 0, lo - (uintptr_t)start);
  if (ugc_madv_dontneed((void *)lo, hi - lo) != 0)
    memset((void *)lo, 0, hi - lo);
  memset((void *)hi, 0, (uintptr_t)start + bytes - hi);
}

void ugc_moving_space_clear_bitmap(ugc_moving_space *space) {
  ugc_moving_space_clear_bitmap_to(space, space->top);
}

void ugc_moving_space_clear_bitmap_to(ugc_moving_space *space, uintptr_t end) {
  size_t words = ((end - space->base) >> 3);
  clear_range(space->live_words, ((words + 63) >> 6) * 8);
  clear_range(space->start_words, ((words + 63) >> 6) * 8);
}

void ugc_moving_space_clear_spare_cards(ugc_moving_space *space) {
  if (space->spare_moving_cards)
    clear_range(space->cards_spare, space->spare_moving_cards);
  if (space->spare_nm_cards)
    clear_range(space->cards_spare + space->spare_nm_first, space->spare_nm_cards);
  space->spare_moving_cards = space->spare_nm_cards = 0;
}

void ugc_moving_space_swap_cards(ugc_moving_space *space, uintptr_t moving_end,
                                 uintptr_t nonmoving_end) {
  ugc_moving_space_clear_spare_cards(space); /* a no-op when the last one was cleared */
  uint8_t *marked = space->cards;
  space->cards = space->cards_spare;
  space->cards_spare = marked;
  space->spare_moving_cards = (moving_end - space->base + 511) >> UGC_CARD_SHIFT;
  space->spare_nm_first = (space->nonmoving_base - space->base) >> UGC_CARD_SHIFT;
  space->spare_nm_cards = (nonmoving_end - space->nonmoving_base + 511) >> UGC_CARD_SHIFT;
}
