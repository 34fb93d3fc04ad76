/* A moving space mapped by the backend instead of private anonymous memory: the space
 * provider of the sigsegv and minor backends. Compacted data lives in a memfd; the
 * collector builds it through a shared alias view while the mutators cannot reach it yet
 * (sigsegv: their view of it is PROT_NONE; minor: it is readable and writable, and
 * registered with userfaultfd so that every access faults until the page is mapped).
 *
 * Between cycles the heap view [base, base + R) is two mappings:
 *   [base, base + F)      MAP_PRIVATE view of the memfd holding the last compaction's data
 *   [base + F, base + R)  private anonymous memory (allocation since then, THP as usual)
 * The private file view makes fork() behave as with anonymous memory (the child gets a
 * copy-on-write snapshot); the price is a copy-on-write fault on the first write to each
 * compacted page after its compaction.
 *
 * The flip (in the compaction pause, world stopped) for D bytes of compacted data:
 *   1. a new memfd of D bytes and its MAP_SHARED alias view (the collector writes there),
 *      and the new heap view (step 3's mappings) staged at an address outside the heap;
 *   2. both heap mappings move (mremap, page tables only) to the from-space reservation,
 *      so the old contents stay readable at old + (from_base - base) until consumed; the
 *      move keeps its source mapped (MREMAP_DONTUNMAP) so that the heap range is never a
 *      hole in which another thread's mmap(NULL, ...) could land and then be mapped over;
 *   3. the heap range gets [base, base + D) = the new file, MAP_PRIVATE (PROT_NONE when
 *      the space was initialised with protect_data, else readable and writable), and
 *      [base + D, base + R) = fresh anonymous memory, readable and writable: the staged
 *      view moves into place (mremap). Between 2 and 3 the caller may build pages and
 *      publish them in the staged view (pinned objects' pages: a system call that is
 *      running in another thread finds them built and accessible as soon as they arrive).
 * From-space is released in chunks (MADV_DONTNEED, and fallocate(PUNCH_HOLE) on the old
 * file when no fork child may map it) and as a whole at the end, when the old file is
 * closed. Mappings per cycle: heap 2 (plus the splits of the protected part while pages are
 * published), from-space 2, alias 1; between cycles: heap 2, from-space reservation 1. */
#ifndef UGC_HEAP_FILE_SPACE_H
#define UGC_HEAP_FILE_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os/memfd.h"

typedef struct ugc_file_space {
  uintptr_t base, from_base;
  size_t reserved_bytes;
  ugc_memfd current;   /* behind [base, base + file_bytes); fd -1 while none */
  size_t file_bytes;   /* F above */
  bool current_shared; /* a fork child may map `current`: never punch it */
  ugc_memfd old;       /* the previous file, now behind from-space (fd -1: none) */
  size_t old_bytes;
  bool old_shared;
  char *alias;       /* MAP_SHARED view of `current` while a compaction builds it; else NULL */
  uintptr_t staged;  /* where the new heap view waits between stage and install; else 0 */
  bool protect_data; /* the flip maps the new data PROT_NONE (sigsegv) or RW (minor) */
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

/* The flip in two steps: ugc_file_space_stage does 1 and 2 (0, or -errno with the heap as
 * it was), ugc_file_space_install does 3. In between, the heap range holds the old views'
 * empty sources, and the new view's page at heap address a is at a - base + fs->staged. */
int ugc_file_space_stage(ugc_file_space *fs, size_t data_bytes);

/* Returns the first address after `address` where the staged file view may be split into
 * another mapping (pages published while staged), or any address past its end. */
typedef uintptr_t (*ugc_view_split_fn)(void *ctx, uintptr_t address);

/* Moves the staged view into the heap range, one mapping at a time (next_split: where the
 * mappings of the file part end; NULL: it is one mapping). Fatal if a move fails. */
void ugc_file_space_install(ugc_file_space *fs, ugc_view_split_fn next_split, void *ctx);

/* Undoes a flip (staged or installed) whose compaction did not start (nothing was built in
 * the heap view): the old mappings come back from from-space. */
void ugc_file_space_unflip(ugc_file_space *fs);

/* After a compaction in the pause (the stw backend, when the flip could not be made) that
 * left `data_bytes` of data at base: stw dropped the heap view's pages above the data, and
 * in the file part a dropped page shows the file again, not zeros. Clears the file part
 * between the new data and the old top (`old_top`, an address in the heap view). */
void ugc_file_space_clear_after_pause(ugc_file_space *fs, size_t data_bytes, uintptr_t old_top);

/* Releases from-space [from, from + bytes) (addresses in from-space) that no build needs. */
void ugc_file_space_release_from(ugc_file_space *fs, uintptr_t from, size_t bytes);

/* After the last page is published: the alias goes, from-space becomes a bare reservation
 * again, the old file is closed. */
void ugc_file_space_finish(ugc_file_space *fs);

/* fork(): the current file is mapped by a child from now on (both sides call it). */
void ugc_file_space_forked(ugc_file_space *fs);

/* Closes the files (the heap's mappings are unmapped with the moving space). */
void ugc_file_space_destroy(ugc_file_space *fs);

#endif
