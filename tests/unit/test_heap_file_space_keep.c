/* The memfd space provider keeps a prefix of the heap in the files that hold it
 * (heap/file_space.c, ugc_file_space_flip_keeping; the minor backend's dense prefix):
 *   - after a flip keeping K bytes, the heap view shows the kept bytes without any write
 *     (same file pages), the alias writes into them, the rest is a new, empty file;
 *   - from-space shows the old contents until finish, and release_from never punches a kept
 *     range (the page stays readable in the heap view);
 *   - each keeping flip adds one piece; keepable answers 0 once a flip would need more than
 *     max_pieces, and that flip's fresh file collapses the pieces to one;
 *   - after fork (ugc_file_space_forked) nothing is kept;
 *   - unflip puts the old pieces back. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "heap/file_space.h"
#include "heap/vm.h"
#include "os/memfd.h"
#include "test.h"

enum { RESERVED = 1 << 30, MIB = 1 << 20 };

static unsigned char at(uintptr_t address) {
  return *(volatile unsigned char *)address;
}

int main(void) {
  ugc_memfd probe = {.fd = -1};
  if (ugc_memfd_create(&probe, "probe", 4096) != 0)
    SKIP("memfd_create unavailable");
  ugc_memfd_close(&probe);
  void *base = ugc_vm_reserve_aligned(RESERVED, RESERVED);
  void *from = ugc_vm_reserve_aligned(RESERVED, RESERVED);
  REQUIRE(base && from);
  REQUIRE(ugc_vm_map_fixed(base, RESERVED, true) == 0);
  uintptr_t heap = (uintptr_t)base;
  ugc_file_space fs;
  ugc_file_space_init(&fs, heap, RESERVED, (uintptr_t)from, false);

  /* Nothing to keep before the first file. */
  CHECK_EQ_U64(ugc_file_space_keepable(&fs, 2 * MIB, 2 * MIB), 0);
  REQUIRE(ugc_file_space_flip(&fs, 2 * MIB) == 0);
  memset(fs.alias, 0x11, MIB);
  memset(fs.alias + MIB, 0x22, MIB);
  ugc_file_space_finish(&fs);
  CHECK_EQ_U64(fs.piece_count, 1);
  CHECK(at(heap) == 0x11 && at(heap + MIB) == 0x22);
  memset((void *)(heap + 2 * MIB), 0x33, 4096); /* anonymous: allocated since */
  memset((void *)heap, 0x44, 4096);             /* a private copy of a kept page */

  /* Keep 1 MiB of 3: the wanted prefix is cut to the file part. */
  CHECK_EQ_U64(ugc_file_space_keepable(&fs, 3 * MIB, 3 * MIB), 2 * MIB);
  REQUIRE(ugc_file_space_flip_keeping(&fs, 3 * MIB, MIB) == 0);
  CHECK_EQ_U64(fs.piece_count, 2);
  CHECK(at(heap + 4096) == 0x11); /* the file's page, no build yet */
  CHECK(at(heap) == 0x11);        /* the private copy went to from-space */
  CHECK(at(heap + MIB) == 0);     /* the new file */
  CHECK(at(heap + 2 * MIB) == 0); /* fresh anonymous memory */
  CHECK(at((uintptr_t)from) == 0x44 && at((uintptr_t)from + 4096) == 0x11);
  CHECK(at((uintptr_t)from + MIB) == 0x22 && at((uintptr_t)from + 2 * MIB) == 0x33);
  fs.alias[0] = 0x55; /* the build writes the kept page in place: the page the heap maps */
  CHECK(at(heap) == 0x55);
  CHECK(at((uintptr_t)from) == 0x44); /* from-space keeps the private copy until released */
  CHECK(ugc_file_space_piece_end(&fs, heap) == heap + MIB);
  CHECK(ugc_file_space_piece_end(&fs, heap + MIB) == heap + 3 * MIB);
  ugc_file_space_release_from(&fs, (uintptr_t)from, 2 * MIB);
  madvise((void *)heap, MIB, MADV_DONTNEED);
  CHECK(at(heap + 8192) == 0x11); /* kept: not punched */
  CHECK(at(heap) == 0x55);
  ugc_file_space_finish(&fs);

  /* Pieces grow by one per keeping flip up to max_pieces; then one fresh file. */
  fs.max_pieces = 4;
  size_t data = 3 * MIB;
  for (unsigned piece_count = 2; piece_count < 4; piece_count++) {
    size_t keep = ugc_file_space_keepable(&fs, data, data + MIB);
    CHECK_EQ_U64(keep, data);
    REQUIRE(ugc_file_space_flip_keeping(&fs, data + MIB, keep) == 0);
    ugc_file_space_finish(&fs);
    data += MIB;
    CHECK_EQ_U64(fs.piece_count, piece_count + 1);
  }
  CHECK(at(heap + 8192) == 0x11);
  CHECK_EQ_U64(ugc_file_space_keepable(&fs, data, data + MIB), 0);
  CHECK_EQ_U64(ugc_file_space_keepable(&fs, data, data), data); /* no new piece needed */
  REQUIRE(ugc_file_space_flip_keeping(&fs, data + MIB, 0) == 0);
  CHECK_EQ_U64(fs.piece_count, 1);
  memcpy(fs.alias, (void *)fs.from_base, data);
  ugc_file_space_finish(&fs);
  CHECK(at(heap + 8192) == 0x11);

  /* A failed hand-off: unflip brings the old pieces back. */
  REQUIRE(ugc_file_space_flip_keeping(&fs, data + MIB, data) == 0);
  CHECK_EQ_U64(fs.piece_count, 2);
  ugc_file_space_unflip(&fs);
  CHECK_EQ_U64(fs.piece_count, 1);
  CHECK(at(heap + 8192) == 0x11);

  /* After fork nothing is kept. */
  ugc_file_space_forked(&fs);
  CHECK_EQ_U64(ugc_file_space_keepable(&fs, data, data + MIB), 0);
  ugc_file_space_destroy(&fs);
  TEST_DONE();
}
