/* The memfd-backed moving space of the sigsegv and minor backends (see file_space.h). */
#include "heap/file_space.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "heap/vm.h"
#include "os/log.h"
#include "os/madvise.h"
#include "os/remap.h"

void ugc_file_space_init(ugc_file_space *fs, uintptr_t base, size_t reserved, uintptr_t from_base,
                         bool protect_data) {
  memset(fs, 0, sizeof *fs);
  fs->protect_data = protect_data;
  fs->huge_pages = true;
  fs->base = base;
  fs->reserved_bytes = reserved;
  fs->from_base = from_base;
  fs->max_pieces = UGC_FILE_SPACE_MAX_PIECES;
  for (unsigned i = 0; i < UGC_FILE_SPACE_MAX_PIECES; i++) {
    fs->pieces[i].file.fd = -1;
    fs->old[i].file.fd = -1;
  }
}

/* Moves one mapping and leaves its source range mapped (empty): a plain move unmaps the
 * source, and until the caller maps over it another thread's mmap(NULL, ...) (a malloc
 * arena, a thread stack) may land in that hole, only to be replaced by the caller's fixed
 * mapping. Where MREMAP_DONTUNMAP fails (kernels before 5.13 for file mappings, its
 * memory accounting under strict overcommit) the plain move is the fallback. */
static int move_keeping_source(uintptr_t src, uintptr_t dst, size_t bytes) {
  if (ugc_remap_dontunmap((void *)src, (void *)dst, bytes, NULL) == 0)
    return 0;
  return ugc_remap_move((void *)src, (void *)dst, bytes, NULL);
}

/* Moves the heap view's mappings (one per piece, then the anonymous part) from `src` to
 * `dst`; the caller maps over `src` afterwards. On a failure the moved ones are moved back.
 * 0 or -errno. */
static int move_views(const ugc_file_space *fs, const ugc_file_piece *pieces, unsigned count,
                      uintptr_t src, uintptr_t dst) {
  size_t offset = 0;
  int rc = 0;
  unsigned moved = 0;
  for (; moved <= count; moved++) {
    size_t bytes = moved < count ? pieces[moved].bytes : fs->reserved_bytes - offset;
    if (bytes && (rc = move_keeping_source(src + offset, dst + offset, bytes)) != 0)
      break;
    offset += bytes;
  }
  if (rc == 0)
    return 0;
  offset = 0;
  for (unsigned i = 0; i < moved; i++) {
    if (move_keeping_source(dst + offset, src + offset, pieces[i].bytes) != 0)
      ugc_fatal("file space: cannot move the heap's file view back (mremap)");
    offset += pieces[i].bytes;
  }
  return rc;
}

/* Maps the new heap view for a compaction at `at` (a reservation of reserved_bytes outside
 * the heap range): the pieces' private file views below, protected when protect_data, and
 * fresh anonymous memory above. 0 or -errno.
 *
 * A protected view is split into many mappings while pages are published, and the pieces
 * must merge back into one, or the next flip moves thousands of mappings (and the process
 * keeps them). A piece that gets written (copy-on-write) gets an anon_vma, and pieces with
 * different anon_vmas never merge. So the view is mapped writable, one page is written (the
 * whole mapping gets its anon_vma before any split, and every piece inherits it) and
 * dropped again (it shows the file once more), and only then is the whole view protected:
 * mprotect of a whole mapping does not split it. This happens away from the heap range: a
 * system call of a thread that is not stopped (a reader into a pinned object) writing into
 * the writable view at the heap's address would give that page a private copy of a file
 * page nothing was built into yet, and the page built later through the alias would never
 * show (integration/pin[sigsegv]: a pinned buffer's page all zeros but the bytes read). */
static int map_heap_view(ugc_file_space *fs, const ugc_file_piece *pieces, unsigned count,
                         uintptr_t at) {
  size_t offset = 0;
  for (unsigned i = 0; i < count; i++) {
    void *view;
    int rc = ugc_memfd_map_private(&pieces[i].file, (void *)(at + offset), (off_t)pieces[i].offset,
                                   pieces[i].bytes, PROT_READ | PROT_WRITE, &view);
    if (rc != 0)
      return rc;
    if (fs->protect_data) {
      *(volatile char *)view = 0;
      ugc_madv_dontneed(view, 4096);
      if (mprotect(view, pieces[i].bytes, PROT_NONE) != 0)
        return -errno;
    }
    offset += pieces[i].bytes;
  }
  size_t rest = fs->reserved_bytes - offset;
  if (rest) {
    int rc = ugc_vm_map_fixed((void *)(at + offset), rest, true);
    if (rc != 0)
      return rc;
    if (fs->huge_pages)
      ugc_madv_hugepage((void *)(at + offset), rest);
    else
      ugc_madv_nohugepage((void *)(at + offset), rest);
  }
  return 0;
}

/* The collector's MAP_SHARED view of the pieces, contiguous as in the heap view: a
 * reservation with each piece's file range mapped into it. NULL on failure (*rc set). */
static char *map_alias(const ugc_file_piece *pieces, unsigned count, size_t bytes, int *rc) {
  void *area = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (area == MAP_FAILED) {
    *rc = -errno;
    return NULL;
  }
  size_t offset = 0;
  for (unsigned i = 0; i < count; i++) {
    void *view;
    *rc = ugc_memfd_map(&pieces[i].file, (char *)area + offset, (off_t)pieces[i].offset,
                        pieces[i].bytes, PROT_READ | PROT_WRITE, &view);
    if (*rc != 0) {
      munmap(area, bytes);
      return NULL;
    }
    offset += pieces[i].bytes;
  }
  return area;
}

size_t ugc_file_space_keepable(const ugc_file_space *fs, size_t wanted, size_t data_bytes) {
  size_t keep = wanted < data_bytes ? wanted : data_bytes;
  if (keep > fs->file_bytes)
    keep = fs->file_bytes;
  keep &= ~(size_t)4095;
  size_t offset = 0;
  unsigned count = 0;
  for (; count < fs->piece_count && offset < keep; count++) {
    if (fs->pieces[count].shared) { /* written in place, the child would see it */
      keep = offset;
      break;
    }
    offset += fs->pieces[count].bytes;
  }
  if (keep && count + (data_bytes > keep) > fs->max_pieces)
    return 0;
  return keep;
}

int ugc_file_space_flip(ugc_file_space *fs, size_t data_bytes) {
  return ugc_file_space_flip_keeping(fs, data_bytes, 0);
}

/* Steps 1 and 2 of the flip, with step 3's mappings made at `staged`: 0, or -errno with
 * the heap as it was. */
static int stage(ugc_file_space *fs, size_t data_bytes, size_t keep_bytes) {
  ugc_file_piece next[UGC_FILE_SPACE_MAX_PIECES];
  unsigned count = 0;
  for (size_t offset = 0; offset < keep_bytes; count++) { /* the kept pieces, the last cut */
    next[count] = fs->pieces[count];
    if (offset + next[count].bytes > keep_bytes)
      next[count].bytes = keep_bytes - offset;
    offset += next[count].bytes;
  }
  unsigned kept = count;
  int rc = 0;
  if (data_bytes > keep_bytes) { /* the rest: a new file */
    ugc_file_piece fresh = {.file = {.fd = -1}, .offset = 0, .bytes = data_bytes - keep_bytes};
    rc = ugc_memfd_create(&fresh.file, "uffdgc-heap", fresh.bytes);
    if (rc != 0)
      return rc;
    next[count++] = fresh;
  }
  char *alias = NULL;
  if (data_bytes && !(alias = map_alias(next, count, data_bytes, &rc))) {
    if (count > kept)
      ugc_memfd_close(&next[kept].file);
    return rc;
  }
  void *staged =
      mmap(NULL, fs->reserved_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  rc = staged == MAP_FAILED ? -errno : map_heap_view(fs, next, count, (uintptr_t)staged);
  if (rc == 0)
    rc = move_views(fs, fs->pieces, fs->piece_count, fs->base, fs->from_base);
  if (rc != 0) {
    if (staged != MAP_FAILED)
      munmap(staged, fs->reserved_bytes);
    if (alias)
      munmap(alias, data_bytes);
    if (count > kept)
      ugc_memfd_close(&next[kept].file);
    return rc;
  }
  memcpy(fs->old, fs->pieces, sizeof fs->old);
  fs->old_count = fs->piece_count;
  fs->old_bytes = fs->file_bytes;
  fs->kept_pieces = kept;
  fs->kept_bytes = keep_bytes;
  for (unsigned i = 0; i < UGC_FILE_SPACE_MAX_PIECES; i++)
    fs->pieces[i] = i < count ? next[i] : (ugc_file_piece){.file = {.fd = -1}};
  fs->piece_count = count;
  fs->file_bytes = data_bytes;
  fs->alias = alias;
  fs->alias_bytes = data_bytes;
  fs->staged = (uintptr_t)staged;
  return 0;
}

/* Moves the staged view into the heap range one mapping at a time (mremap takes one
 * mapping): the file part ends a mapping at each piece's end. Fatal if a move fails. */
static void install(ugc_file_space *fs) {
  if (!fs->staged)
    return;
  uintptr_t offset = 0;
  while (offset < fs->reserved_bytes) {
    uintptr_t end = fs->reserved_bytes;
    if (offset < fs->file_bytes) {
      end = ugc_file_space_piece_end(fs, fs->base + offset) - fs->base;
    }
    if (ugc_remap_move((void *)(fs->staged + offset), (void *)(fs->base + offset), end - offset,
                       NULL) != 0)
      ugc_fatal("file space: cannot move the new heap view into place (mremap)");
    offset = end;
  }
  fs->staged = 0;
}

int ugc_file_space_flip_keeping(ugc_file_space *fs, size_t data_bytes, size_t keep_bytes) {
  int rc = stage(fs, data_bytes, keep_bytes);
  if (rc == 0)
    install(fs);
  return rc;
}

/* Forgets the old pieces after a compaction or an unflip (their descriptors are closed or
 * owned by the current pieces). */
static void forget_old(ugc_file_space *fs) {
  for (unsigned i = 0; i < UGC_FILE_SPACE_MAX_PIECES; i++)
    fs->old[i] = (ugc_file_piece){.file = {.fd = -1}};
  fs->old_count = fs->kept_pieces = 0;
  fs->old_bytes = fs->kept_bytes = 0;
}

static void unmap_alias(ugc_file_space *fs) {
  if (fs->alias)
    munmap(fs->alias, fs->alias_bytes);
  fs->alias = NULL;
  fs->alias_bytes = 0;
}

void ugc_file_space_unflip(ugc_file_space *fs) {
  if (fs->staged)
    munmap((void *)fs->staged, fs->reserved_bytes);
  fs->staged = 0;
  if (move_views(fs, fs->old, fs->old_count, fs->from_base, fs->base) != 0)
    ugc_fatal("file space: cannot move the heap back after a failed hand-off");
  ugc_vm_map_fixed((void *)fs->from_base, fs->reserved_bytes, false);
  unmap_alias(fs);
  for (unsigned i = fs->kept_pieces; i < fs->piece_count; i++) /* the new file */
    ugc_memfd_close(&fs->pieces[i].file);
  memcpy(fs->pieces, fs->old, sizeof fs->pieces);
  fs->piece_count = fs->old_count;
  fs->file_bytes = fs->old_bytes;
  forget_old(fs);
}

void ugc_file_space_clear_after_pause(ugc_file_space *fs, size_t data_bytes, uintptr_t old_top) {
  uintptr_t data_end = fs->base + data_bytes;
  uintptr_t file_end = fs->base + fs->file_bytes;
  uintptr_t old_end = (old_top + 4095) & ~(uintptr_t)4095; /* page-aligned, as the views */
  uintptr_t clear_end = file_end < old_end ? file_end : old_end;
  if (clear_end > data_end)
    memset((void *)data_end, 0, clear_end - data_end);
}

uintptr_t ugc_file_space_piece_end(const ugc_file_space *fs, uintptr_t addr) {
  uintptr_t end = fs->base;
  for (unsigned i = 0; i < fs->piece_count; i++) {
    end += fs->pieces[i].bytes;
    if (addr < end)
      return end;
  }
  return end;
}

/* Punches heap-view offsets [lo, hi) of the old pieces, where not kept and not shared. */
static void punch_old(ugc_file_space *fs, size_t lo, size_t hi) {
  if (lo < fs->kept_bytes)
    lo = fs->kept_bytes;
  size_t start = 0;
  for (unsigned i = 0; i < fs->old_count && lo < hi; i++) {
    const ugc_file_piece *piece = &fs->old[i];
    size_t end = start + piece->bytes;
    size_t from = lo > start ? lo : start, to = hi < end ? hi : end;
    if (from < to && !piece->shared && piece->file.fd >= 0)
      ugc_memfd_punch_hole(&piece->file, (off_t)(piece->offset + (from - start)), to - from);
    start = end;
  }
}

void ugc_file_space_release_from(ugc_file_space *fs, uintptr_t from, size_t bytes) {
  ugc_madv_dontneed((void *)from, bytes); /* private pages, copy-on-write copies included */
  size_t lo = from - fs->from_base;
  punch_old(fs, lo, lo + bytes);
}

void ugc_file_space_finish(ugc_file_space *fs) {
  unmap_alias(fs);
  if (ugc_vm_map_fixed((void *)fs->from_base, fs->reserved_bytes, false) != 0)
    ugc_madv_dontneed((void *)fs->from_base, fs->reserved_bytes);
  if (fs->kept_pieces) { /* what the last kept file holds past its kept range */
    size_t piece_end = 0;
    for (unsigned i = 0; i < fs->kept_pieces; i++)
      piece_end += fs->old[i].bytes;
    punch_old(fs, fs->kept_bytes, piece_end);
  }
  for (unsigned i = fs->kept_pieces; i < fs->old_count; i++)
    ugc_memfd_close(&fs->old[i].file);
  forget_old(fs);
}

void ugc_file_space_forked(ugc_file_space *fs) {
  for (unsigned i = 0; i < fs->piece_count; i++)
    fs->pieces[i].shared = true;
}

void ugc_file_space_destroy(ugc_file_space *fs) {
  unmap_alias(fs);
  for (unsigned i = 0; i < fs->piece_count; i++)
    ugc_memfd_close(&fs->pieces[i].file);
  for (unsigned i = fs->kept_pieces; i < fs->old_count; i++)
    ugc_memfd_close(&fs->old[i].file);
  fs->piece_count = fs->old_count = fs->kept_pieces = 0;
}
