/* The pool of drained from-space (backend/retain.h, ugc_drained), on two plain anonymous
 * mappings standing for from-space and the heap:
 *   - the tail (free from the start) is taken first, then drained chunks, lowest first;
 *     a taken chunk arrives with its contents and leaves a hole behind (UFFDIO_MOVE);
 *   - a heap chunk reached while the pool is empty stays untouched (faults in fresh), and
 *     is not revisited; the chunk a allocation's start lies in is never taken for;
 *   - drained ranges keep only whole chunks; a chunk's first part waits for the rest;
 *     beyond the cap the oldest chunks go back to the kernel;
 *   - the recycled range covers exactly the chunks moved in (allocation zeroes it);
 *   - after close nothing moves, and what is added is released at once. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/retain.h"
#include "test.h"
#include "uffd/uffd.h"

#define MiB ((uintptr_t)1 << 20)
#define CHUNK UGC_RETAIN_CHUNK

/* A 2 MiB-aligned private anonymous area of `bytes`. */
static uintptr_t aligned_area(size_t bytes) {
  void *raw = mmap(NULL, bytes + CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(raw != MAP_FAILED);
  return ((uintptr_t)raw + CHUNK - 1) & ~(CHUNK - 1);
}

/* Resident pages of [addr, addr + len) (mincore). */
static size_t resident_pages(uintptr_t addr, size_t len) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = len / page, count = 0;
  unsigned char vec[4096];
  REQUIRE(pages <= sizeof vec);
  REQUIRE(mincore((void *)addr, len, vec) == 0);
  for (size_t i = 0; i < pages; i++)
    count += vec[i] & 1;
  return count;
}

static bool resident(uintptr_t addr, size_t len) {
  return resident_pages(addr, len) == len / (size_t)sysconf(_SC_PAGESIZE);
}

static bool nothing_resident(uintptr_t addr, size_t len) {
  return resident_pages(addr, len) == 0;
}

/* Every byte of the chunk at `addr` is `value`. */
static bool chunk_holds(uintptr_t addr, unsigned char value) {
  const unsigned char *p = (const unsigned char *)addr;
  for (size_t i = 0; i < CHUNK; i += 512)
    if (p[i] != value)
      return false;
  return p[CHUNK - 1] == value;
}

int main(void) {
  ugc_uffd uffd;
  int rc = ugc_uffd_create(&uffd, UFFD_FEATURE_MOVE, UGC_UFFD_ALLOW_USER_MODE_ONLY);
  if (rc != 0)
    SKIP("no userfaultfd here (%s)", strerror(-rc));
  if (!(uffd.features & UFFD_FEATURE_MOVE))
    SKIP("no UFFDIO_MOVE here: the pool is not used without it");

  uintptr_t from = aligned_area(24 * MiB), heap = aligned_area(24 * MiB);
  for (unsigned k = 0; k < 12; k++) /* from-space chunk k holds the byte 0x10 + k */
    memset((void *)(from + k * CHUNK), 0x10 + k, CHUNK);

  ugc_drained pool;
  ugc_drained_init(&pool);
  /* New top at 1 MiB: heap chunks from 2 MiB to 20 MiB; cap 2 chunks; tail = chunk 10. */
  ugc_drained_open(&pool, from, heap + 1 * MiB, heap + 20 * MiB, 2 * CHUNK, from + 10 * CHUNK,
                   from + 11 * CHUNK);
  uintptr_t low = 0, high = 0;
  ugc_retain_counts counts = {0};

  /* Allocation [1, 3) MiB reaches heap chunk 2 MiB: the tail moves there. */
  ugc_drained_take(&pool, &uffd, heap + 1 * MiB, heap + 3 * MiB, &low, &high, &counts);
  CHECK(chunk_holds(heap + 2 * MiB, 0x1a));
  CHECK(nothing_resident(from + 10 * CHUNK, CHUNK));
  CHECK(low == heap + 2 * MiB && high == heap + 4 * MiB);
  CHECK_EQ_U64(counts.moved_bytes, CHUNK);

  /* [3, 5) MiB reaches chunk 4 MiB with nothing drained: left alone, and passed. */
  ugc_drained_take(&pool, &uffd, heap + 3 * MiB, heap + 5 * MiB, &low, &high, &counts);
  CHECK(nothing_resident(heap + 4 * MiB, CHUNK));
  CHECK(high == heap + 4 * MiB);

  /* Drained: [0, 3) MiB keeps chunk 0 (its neighbour's first half waits), then [3, 8) MiB
   * makes four chunks: beyond the cap of two, chunks 0 and 1 go back to the kernel. */
  ugc_drained_add(&pool, from, 3 * MiB);
  CHECK(resident(from, 4 * MiB));
  ugc_drained_add(&pool, from + 3 * MiB, 5 * MiB);
  CHECK(nothing_resident(from, 2 * CHUNK));
  CHECK(resident(from + 2 * CHUNK, 2 * CHUNK));

  /* [5, 9) MiB: chunk 4 MiB was passed; chunks 6 and 8 MiB take from-space chunks 2, 3. */
  ugc_drained_take(&pool, &uffd, heap + 5 * MiB, heap + 9 * MiB, &low, &high, &counts);
  CHECK(nothing_resident(heap + 4 * MiB, CHUNK));
  CHECK(chunk_holds(heap + 6 * MiB, 0x12));
  CHECK(chunk_holds(heap + 8 * MiB, 0x13));
  CHECK(nothing_resident(from + 2 * CHUNK, 2 * CHUNK));
  CHECK(low == heap + 6 * MiB && high == heap + 10 * MiB);
  CHECK_EQ_U64(counts.moved_bytes, 3 * CHUNK);

  /* Empty again: the next chunk is left alone. */
  ugc_drained_take(&pool, &uffd, heap + 10 * MiB, heap + 11 * MiB, &low, &high, &counts);
  CHECK(nothing_resident(heap + 10 * MiB, CHUNK));

  /* A range that is not contiguous with the last one (the caller kept a part): the pool
   * starts over at the next boundary; the part before it is released. */
  ugc_drained_add(&pool, from + 9 * MiB, 3 * MiB); /* 9..12 MiB: chunk 10 MiB whole */
  CHECK(nothing_resident(from + 9 * MiB, 1 * MiB));
  ugc_drained_take(&pool, &uffd, heap + 12 * MiB, heap + 13 * MiB, &low, &high, &counts);
  CHECK(chunk_holds(heap + 12 * MiB, 0x15));

  /* Closed: nothing moves, and what is added goes back at once. */
  ugc_drained_add(&pool, from + 12 * MiB, 4 * MiB); /* chunks 6, 7 */
  ugc_drained_close(&pool);
  ugc_drained_take(&pool, &uffd, heap + 14 * MiB, heap + 17 * MiB, &low, &high, &counts);
  CHECK(nothing_resident(heap + 14 * MiB, 2 * CHUNK));
  CHECK(resident(from + 12 * MiB, 4 * MiB)); /* kept for the caller's release */
  ugc_drained_add(&pool, from + 16 * MiB, 2 * MiB);
  CHECK(nothing_resident(from + 16 * MiB, CHUNK));
  CHECK_EQ_U64(counts.moved_bytes, 4 * CHUNK);
  printf("moved %llu chunks in %llu calls\n", (unsigned long long)(counts.moved_bytes / CHUNK),
         (unsigned long long)counts.move_calls);

  ugc_drained_destroy(&pool);
  ugc_uffd_close(&uffd);
  return ugc_test_failures ? 1 : 0;
}
