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
  fs->base = base;
  fs->reserved_bytes = reserved;
  fs->from_base = from_base;
  fs->current.fd = -1;
  fs->old.fd = -1;
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

/* Moves the heap view's two mappings (file part, anonymous part) from `src` to `dst`; the
 * caller maps over `src` afterwards. On a failure of the second move the first is moved
 * back. 0 or -errno. */
static int move_views(ugc_file_space *fs, uintptr_t src, uintptr_t dst, size_t file_bytes) {
  size_t anon_bytes = fs->reserved_bytes - file_bytes;
  if (file_bytes) {
    int rc = move_keeping_source(src, dst, file_bytes);
    if (rc != 0)
      return rc;
  }
  if (anon_bytes) {
    int rc = move_keeping_source(src + file_bytes, dst + file_bytes, anon_bytes);
    if (rc != 0) {
      if (file_bytes && move_keeping_source(dst, src, file_bytes) != 0)
        ugc_fatal("file space: cannot move the heap's file view back (mremap)");
      return rc;
    }
  }
  return 0;
}

/* Maps the new heap view for a compaction of `data_bytes` at `at` (a reservation of
 * reserved_bytes outside the heap range): the private file view below, fresh anonymous
 * memory above. 0 or -errno.
 *
 * The file view is split into many mappings while pages are published, and the pieces must
 * merge back into one, or the next flip moves thousands of mappings (and the process keeps
 * them). A piece that gets written (copy-on-write) gets an anon_vma, and pieces with
 * different anon_vmas never merge. So the view is mapped writable, one page is written
 * (the whole mapping gets its anon_vma before any split, and every piece inherits it) and
 * dropped again (it shows the file once more), and only then is the whole view protected:
 * mprotect of a whole mapping does not split it. This happens away from the heap range: a
 * system call of a thread that is not stopped (a reader into a pinned object) writing into
 * the writable view at the heap's address would give that page a private copy of a file
 * page nothing was built into yet, and the page built later through the alias would never
 * show (integration/pin[sigsegv]: a pinned buffer's page all zeros but the bytes read). */
static int map_heap_view(ugc_file_space *fs, const ugc_memfd *file, size_t data_bytes,
                         uintptr_t at) {
  void *view;
  int rc = data_bytes ? ugc_memfd_map_private(file, (void *)at, 0, data_bytes,
                                              PROT_READ | PROT_WRITE, &view)
                      : 0;
  if (rc != 0)
    return rc;
  if (data_bytes) {
    *(volatile char *)view = 0;
    ugc_madv_dontneed(view, 4096);
    if (fs->protect_data && mprotect(view, data_bytes, PROT_NONE) != 0)
      return -errno;
  }
  size_t rest = fs->reserved_bytes - data_bytes;
  if (rest) {
    rc = ugc_vm_map_fixed((void *)(at + data_bytes), rest, true);
    if (rc != 0)
      return rc;
    ugc_madv_hugepage((void *)(at + data_bytes), rest);
  }
  return 0;
}

int ugc_file_space_stage(ugc_file_space *fs, size_t data_bytes) {
  ugc_memfd next = {.fd = -1, .size = 0};
  void *alias = NULL;
  int rc = 0;
  if (data_bytes) { /* none: the whole heap becomes fresh anonymous memory */
    rc = ugc_memfd_create(&next, "uffdgc-heap", data_bytes);
    if (rc != 0)
      return rc;
    rc = ugc_memfd_map(&next, NULL, 0, data_bytes, PROT_READ | PROT_WRITE, &alias);
    if (rc != 0) {
      ugc_memfd_close(&next);
      return rc;
    }
  }
  void *staged =
      mmap(NULL, fs->reserved_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  rc = staged == MAP_FAILED ? -errno : map_heap_view(fs, &next, data_bytes, (uintptr_t)staged);
  if (rc == 0)
    rc = move_views(fs, fs->base, fs->from_base, fs->file_bytes);
  if (rc != 0) {
    if (staged != MAP_FAILED)
      munmap(staged, fs->reserved_bytes);
    if (alias)
      munmap(alias, data_bytes);
    ugc_memfd_close(&next);
    return rc;
  }
  fs->old = fs->current;
  fs->old_bytes = fs->file_bytes;
  fs->old_shared = fs->current_shared;
  fs->current = next;
  fs->file_bytes = data_bytes;
  fs->current_shared = false;
  fs->alias = alias;
  fs->staged = (uintptr_t)staged;
  return 0;
}

/* Moves the staged view piece by piece: mremap takes one mapping at a time, and the file
 * part may be split where pages were published early. */
void ugc_file_space_install(ugc_file_space *fs, ugc_view_split_fn next_split, void *ctx) {
  if (!fs->staged)
    return;
  uintptr_t offset = 0;
  while (offset < fs->reserved_bytes) {
    uintptr_t end = offset < fs->file_bytes ? fs->file_bytes : fs->reserved_bytes;
    if (next_split && offset < fs->file_bytes) {
      uintptr_t split = next_split(ctx, fs->base + offset) - fs->base;
      if (split > offset && split < end)
        end = split;
    }
    if (ugc_remap_move((void *)(fs->staged + offset), (void *)(fs->base + offset), end - offset,
                       NULL) != 0)
      ugc_fatal("file space: cannot move the new heap view into place (mremap)");
    offset = end;
  }
  fs->staged = 0;
}

int ugc_file_space_flip(ugc_file_space *fs, size_t data_bytes) {
  int rc = ugc_file_space_stage(fs, data_bytes);
  if (rc == 0)
    ugc_file_space_install(fs, NULL, NULL);
  return rc;
}

void ugc_file_space_unflip(ugc_file_space *fs) {
  if (fs->staged)
    munmap((void *)fs->staged, fs->reserved_bytes);
  fs->staged = 0;
  if (move_views(fs, fs->from_base, fs->base, fs->old_bytes) != 0)
    ugc_fatal("file space: cannot move the heap back after a failed hand-off");
  ugc_vm_map_fixed((void *)fs->from_base, fs->reserved_bytes, false);
  if (fs->alias)
    munmap(fs->alias, fs->file_bytes);
  fs->alias = NULL;
  ugc_memfd_close(&fs->current);
  fs->current = fs->old;
  fs->file_bytes = fs->old_bytes;
  fs->current_shared = fs->old_shared;
  fs->old.fd = -1;
  fs->old_bytes = 0;
}

void ugc_file_space_clear_after_pause(ugc_file_space *fs, size_t data_bytes, uintptr_t old_top) {
  uintptr_t data_end = fs->base + data_bytes;
  uintptr_t file_end = fs->base + fs->file_bytes;
  uintptr_t old_end = (old_top + 4095) & ~(uintptr_t)4095; /* page-aligned, as the views */
  uintptr_t clear_end = file_end < old_end ? file_end : old_end;
  if (clear_end > data_end)
    memset((void *)data_end, 0, clear_end - data_end);
}

void ugc_file_space_release_from(ugc_file_space *fs, uintptr_t from, size_t bytes) {
  ugc_madv_dontneed((void *)from, bytes); /* anonymous pages, copy-on-write copies included */
  uintptr_t file_end = fs->from_base + fs->old_bytes;
  if (fs->old.fd < 0 || fs->old_shared || from >= file_end)
    return;
  size_t in_file = from + bytes <= file_end ? bytes : file_end - from;
  ugc_memfd_punch_hole(&fs->old, (off_t)(from - fs->from_base), in_file);
}

void ugc_file_space_finish(ugc_file_space *fs) {
  if (fs->alias)
    munmap(fs->alias, fs->file_bytes);
  fs->alias = NULL;
  if (ugc_vm_map_fixed((void *)fs->from_base, fs->reserved_bytes, false) != 0)
    ugc_madv_dontneed((void *)fs->from_base, fs->reserved_bytes);
  ugc_memfd_close(&fs->old);
  fs->old_bytes = 0;
}

void ugc_file_space_forked(ugc_file_space *fs) {
  fs->current_shared = true;
}

void ugc_file_space_destroy(ugc_file_space *fs) {
  if (fs->alias)
    munmap(fs->alias, fs->file_bytes);
  fs->alias = NULL;
  ugc_memfd_close(&fs->current);
  ugc_memfd_close(&fs->old);
}
