/* A moving space mapped by the backend instead of private anonymous memory: the space
 * provider of the sigsegv and minor backends. Compacted data lives in a memfd; the
 * collector builds it through a shared alias view while the mutators cannot reach it yet
 * (sigsegv: their view of it is PROT_NONE; minor: it is readable and writable, and
 * registered with userfaultfd so that every access faults until the page is mapped).
 *
 * Between cycles the heap view [base, base + R) is P + 1 mappings (1 <= P <= 8 pieces):
 *   [base, base + F)      MAP_PRIVATE views of memfd ranges holding the compacted data, one
 *                         per piece (a piece: a range of one file; the files differ)
 *   [base + F, base + R)  private anonymous memory (allocation since then, THP as usual)
 * The private file views make fork() behave as with anonymous memory (the child gets a
 * copy-on-write snapshot); the price is a copy-on-write fault on the first write to each
 * compacted page after its compaction.
 *
 * The flip (in the compaction pause, world stopped) for D bytes of compacted data of which
 * the first K (the dense prefix, as far as it lies in the file part; 0 for sigsegv) are
 * kept where they are:
 *   1. a new memfd of D - K bytes, and a MAP_SHARED alias view of [base, base + D): the
 *      kept pieces' file ranges, then the new file (the collector writes there);
 *   2. the heap mappings move (mremap, page tables only) to the from-space reservation,
 *      so the old contents stay readable at old + (from_base - base) until consumed; the
 *      move keeps its source mapped (MREMAP_DONTUNMAP) so that the heap range is never a
 *      hole in which another thread's mmap(NULL, ...) could land and then be mapped over;
 *   3. the heap range gets [base, base + K) = the kept pieces' file ranges and
 *      [base + K, base + D) = the new file, MAP_PRIVATE (PROT_NONE when the space was
 *      initialised with protect_data, else readable and writable), and [base + D, base + R)
 *      = fresh anonymous memory, readable and writable. These mappings are made before
 *      step 2 at an address outside the heap (staged) and moved into place (mremap) after
 *      it, so that the heap range is never without a mapping.
 * From-space is released in chunks (MADV_DONTNEED, and fallocate(PUNCH_HOLE) on the old
 * files' ranges that are not kept, when no fork child may map them) and as a whole at the
 * end, when the files nothing keeps are closed. Mappings per cycle with P' pieces after the
 * flip and P before: heap P' + 1 (plus the splits of the protected part while pages are
 * published), from-space P + 1, alias P'; between cycles: heap P' + 1, from-space
 * reservation 1. Without keeping (sigsegv) P = P' = 1. */
#ifndef UGC_HEAP_FILE_SPACE_H
#define UGC_HEAP_FILE_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os/memfd.h"

/* At most this many file pieces make up the heap view's file part: each is one mapping in
 * the heap view, in from-space and in the alias during a compaction. */
#define UGC_FILE_SPACE_MAX_PIECES 8

/* A contiguous range of one memfd mapped at a contiguous part of the heap view. */
typedef struct ugc_file_piece {
  ugc_memfd file; /* fd -1: none */
  size_t offset;  /* file offset of the piece's first byte */
  size_t bytes;
  bool shared; /* a fork child may map the file: never punched, never written in place */
} ugc_file_piece;

typedef struct ugc_file_space {
  uintptr_t base, from_base;
  size_t reserved_bytes;
  /* The heap view's file part [base, base + file_bytes), piece after piece; a piece owns its
   * descriptor. */
  ugc_file_piece pieces[UGC_FILE_SPACE_MAX_PIECES];
  unsigned piece_count;
  size_t file_bytes; /* F above */
  /* During a compaction: the previous pieces, now behind from-space. The first kept_pieces
   * of them are (the first kept_bytes of the heap view: the same files, the last one maybe
   * cut short) also current pieces, which own their descriptors. */
  ugc_file_piece old[UGC_FILE_SPACE_MAX_PIECES];
  unsigned old_count, kept_pieces;
  size_t old_bytes, kept_bytes;
  char *alias; /* MAP_SHARED view of [base, base + file_bytes) while a compaction builds it */
  size_t alias_bytes;
  bool protect_data;   /* the flip maps the new data PROT_NONE (sigsegv) or RW (minor) */
  bool huge_pages;     /* the fresh memory above the data gets MADV_HUGEPAGE (default), else
                          MADV_NOHUGEPAGE: the moving space's choice (heap/space.h) */
  uintptr_t staged;    /* where the new heap view waits during the flip (step 3); else 0 */
  unsigned max_pieces; /* UGC_FILE_SPACE_MAX_PIECES unless a test lowers it */
} ugc_file_space;

/* Takes over the moving space [base, base + reserved) with its from-space reservation
 * (the space is still private anonymous memory; nothing changes until the first flip).
 * protect_data: whether each flip maps the new data PROT_NONE. */
void ugc_file_space_init(ugc_file_space *fs, uintptr_t base, size_t reserved, uintptr_t from_base,
                         bool protect_data);

/* The flip above for `data_bytes` (a page multiple) of compacted data. 0, or -errno with
 * the heap as it was. Afterwards fs->alias is where the data is built (data_bytes 0: no
 * file, no alias, the whole heap range is fresh anonymous memory). */
int ugc_file_space_flip(ugc_file_space *fs, size_t data_bytes);

/* How much of the first `wanted` bytes of the heap view (a page multiple: the dense prefix)
 * a flip for `data_bytes` can keep in the files that hold them: no more than the file part,
 * no piece a fork child may map, and at most max_pieces pieces afterwards (else 0: one fresh
 * file, which also collapses the pieces). */
size_t ugc_file_space_keepable(const ugc_file_space *fs, size_t wanted, size_t data_bytes);

/* The flip keeping [base, base + keep_bytes) (at most ugc_file_space_keepable) in its files:
 * the heap view maps the same file ranges again, privately, so that their pages are in the
 * page cache already and the collector updates them in place through the alias (whose
 * first keep_bytes are those files, MAP_SHARED); only [keep_bytes, data_bytes) is a new
 * file. From-space still shows the old contents of the kept pages until the collector writes
 * them (they are the same pages, unless a mutator's write made a private copy). */
int ugc_file_space_flip_keeping(ugc_file_space *fs, size_t data_bytes, size_t keep_bytes);

/* Undoes a flip whose compaction did not start (nothing was built in
 * the heap view): the old mappings come back from from-space. */
void ugc_file_space_unflip(ugc_file_space *fs);

/* After a compaction in the pause (the stw backend, when the flip could not be made) that
 * left `data_bytes` of data at base: stw dropped the heap view's pages above the data, and
 * in the file part a dropped page shows the file again, not zeros. Clears the file part
 * between the new data and the old top (`old_top`, an address in the heap view). */
void ugc_file_space_clear_after_pause(ugc_file_space *fs, size_t data_bytes, uintptr_t old_top);

/* The end of the piece of the heap view's file part that holds `addr` (in the heap view,
 * below base + file_bytes): a range an ioctl may treat as one mapping. Async-signal-safe. */
uintptr_t ugc_file_space_piece_end(const ugc_file_space *fs, uintptr_t addr);

/* Releases from-space [from, from + bytes) (addresses in from-space) that no build needs:
 * its private pages, and the old files' pages that no current piece keeps. */
void ugc_file_space_release_from(ugc_file_space *fs, uintptr_t from, size_t bytes);

/* After the last page is published: the alias goes, from-space becomes a bare reservation
 * again, the old files are closed, and what a kept file holds past its kept range is
 * punched. */
void ugc_file_space_finish(ugc_file_space *fs);

/* fork(): the current files are mapped by a child from now on (both sides call it). */
void ugc_file_space_forked(ugc_file_space *fs);

/* Closes the files (the heap's mappings are unmapped with the moving space). */
void ugc_file_space_destroy(ugc_file_space *fs);

#endif
