/* The move backend's page kinds and fallbacks, each scenario in a fresh child process (the
 * kernel probe, UFFDGC_INJECT and UFFDGC_DISABLE are read once per process):
 *   dense     every object live: most pages are moved back in place, none recycled;
 *   sparse    every other object dead: no dense page but the root table's, slid pages
 *             built in recycled pages;
 *   injected  every UFFDIO_MOVE answers EBUSY (UFFDGC_INJECT=move.busy): every page is
 *             copied instead, and the heap is intact;
 *   misreported  every UFFDIO_MOVE moves one page and answers EEXIST without progress
 *             (UFFDGC_INJECT=move.eexist_moved, the kernel quirk of compact/eexist.h): each
 *             such page is found moved and taken as moved, counted in moves_misreported;
 *   forked    a child forked before the cycle shares the heap's pages: the kernel refuses to
 *             move the shared pages the compaction did not write (EBUSY), they are copied;
 *   auto      auto picks move here, and copy with UFFDGC_DISABLE=move;
 *   cold      large leaf strings interleaved with garbage, in both delivery modes: their
 *             fully live pages are slid whole (pages_slid_whole > 0), and where
 *             /proc/self/pagemap shows frame numbers, those pages are the same physical
 *             pages after the compaction: moved, never copied or rebuilt; then half the
 *             blocks die and a second compaction runs while the mutator reads every block
 *             from the top (faults on pages slid whole).
 * Each checks the graph digest and the verifier around its collections. */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

#define BLOB_BYTES 248u /* leaf payload: 256 bytes with the header, 16 per page */
#define BLOBS 8192u     /* 2 MiB of blobs */

typedef struct heap_setup {
  ugc_heap *heap;
  ugc_mutator *m;
  ugc_type_id blob, table;
  void **roots; /* a reference array in the large-object space: off the moving space */
} heap_setup;

static heap_setup setup(const char *backend) {
  heap_setup s;
  ugc_config config = fixture_config((size_t)64 << 20, (size_t)32 << 20);
  config.backend = backend;
  config.gc_threads = 2; /* one compaction thread */
  s.heap = fixture_heap(&config);
  s.m = fixture_attach(s.heap);
  s.blob = fixture_leaf_type(s.heap, "blob");
  s.table = fixture_type(s.heap, "table", UGC_LAYOUT_REF_ARRAY, 0, NULL, 0);
  return s;
}

/* Allocates BLOBS blobs in address order, each filled from its index; keeps every one
 * (stride 1) or every other one (stride 2) in a root table. */
static void fill(heap_setup *s, unsigned stride) {
  s->roots = ugc_alloc(s->m, s->table, BLOBS * sizeof(void *));
  ugc_root(s->m, (void **)&s->roots);
  for (unsigned i = 0; i < BLOBS; i++) {
    uint64_t *blob = ugc_alloc(s->m, s->blob, BLOB_BYTES);
    for (unsigned w = 0; w < BLOB_BYTES / 8; w++)
      blob[w] = (uint64_t)i * 1000 + w;
    if (i % stride == 0)
      ugc_write(s->m, s->roots, &s->roots[i], blob);
  }
}

/* What the mutator does while the compaction runs (NULL: nothing). */
static void (*while_compacting)(heap_setup *s);

/* One full collection, finished; the compaction statistics it added go to *delta. */
static void collect_checked(heap_setup *s, ugc_compaction_stats *delta) {
  ugc_stats before, after;
  ugc_stats_get(s->heap, &before);
  uint64_t digest = ugc_graph_digest(s->m);
  ugc_collect(s->m, UGC_COLLECT_FULL);
  if (while_compacting)
    while_compacting(s);
  ugc_collect(s->m, UGC_COLLECT_FINISH);
  REQUIRE(ugc_graph_digest(s->m) == digest);
  ugc_error error;
  REQUIRE(ugc_verify(s->m, &error) == 0);
  ugc_stats_get(s->heap, &after);
  const uint64_t *b = (const uint64_t *)&before.compaction,
                 *a = (const uint64_t *)&after.compaction;
  uint64_t *d = (uint64_t *)delta;
  for (size_t i = 0; i < sizeof *delta / sizeof(uint64_t); i++)
    d[i] = a[i] - b[i];
  printf("  pages %llu: in place %llu, recycled %llu, slid whole %llu, fresh %llu; %llu MOVE, %llu "
         "COPY calls\n",
         (unsigned long long)delta->pages_total, (unsigned long long)delta->pages_in_place,
         (unsigned long long)delta->pages_recycled, (unsigned long long)delta->pages_slid_whole,
         (unsigned long long)delta->pages_fresh, (unsigned long long)delta->move_ioctls,
         (unsigned long long)delta->copy_ioctls);
  REQUIRE(delta->pages_in_place + delta->pages_recycled + delta->pages_slid_whole +
              delta->pages_fresh >=
          delta->pages_total);
}

static int scenario_dense(void) {
  heap_setup s = setup("move");
  fill(&s, 1);
  ugc_compaction_stats d;
  collect_checked(&s, &d);
  collect_checked(&s, &d); /* now every page of the moving space is full and live */
  CHECK(d.pages_in_place * 2 > d.pages_total);
  CHECK(d.pages_recycled == 0);
  CHECK(d.move_ioctls > 0);
  return ugc_test_failures;
}

/* Plain copy: the dense prefix counts as in place and not also as fresh (it was counted
 * twice, and the shares came to more than the pages). */
static int scenario_copy_shares(void) {
  heap_setup s = setup("copy");
  fill(&s, 1);
  ugc_compaction_stats d;
  collect_checked(&s, &d);
  collect_checked(&s, &d);
  CHECK(d.pages_in_place * 2 > d.pages_total);
  CHECK_EQ_U64(d.pages_in_place + d.pages_recycled + d.pages_slid_whole + d.pages_fresh,
               d.pages_total);
  return ugc_test_failures;
}

static int scenario_sparse(void) {
  heap_setup s = setup("move");
  fill(&s, 2);
  ugc_compaction_stats d;
  collect_checked(&s, &d);
  CHECK(d.pages_in_place * 10 < d.pages_total); /* the root table's pages only */
  CHECK(d.pages_recycled * 2 > d.pages_total);
  return ugc_test_failures;
}

static int scenario_injected(void) {
  heap_setup s = setup("move");
  fill(&s, 2);
  ugc_compaction_stats d;
  collect_checked(&s, &d);
  fill(&s, 1);
  collect_checked(&s, &d);
  collect_checked(&s, &d);
  CHECK(d.pages_in_place == 0);
  CHECK(d.pages_recycled == 0);
  CHECK(d.pages_fresh >= d.pages_total);
  return ugc_test_failures;
}

/* Every MOVE reports EEXIST for the page it moved: taken as moved (not copied, not fatal). */
static int scenario_misreported(void) {
  heap_setup s = setup("move");
  fill(&s, 1);
  ugc_compaction_stats d;
  collect_checked(&s, &d);
  collect_checked(&s, &d); /* every page full and live: moved back in place */
  printf("  %llu MOVEs answered EEXIST for a page they moved\n",
         (unsigned long long)d.moves_misreported);
  CHECK(d.moves_misreported > 0);
  CHECK(d.pages_in_place * 2 > d.pages_total);
  fill(&s, 2);
  collect_checked(&s, &d); /* slid pages built in recycled pages, moved into place */
  CHECK(d.moves_misreported > 0);
  return ugc_test_failures;
}

/* All live, nothing written by the compaction in most pages (leaf blobs, no dead words):
 * with a child sharing those pages, the kernel refuses to move them. */
static int scenario_forked(void) {
  heap_setup s = setup("move");
  fill(&s, 1);
  ugc_compaction_stats alone, shared;
  collect_checked(&s, &alone);
  collect_checked(&s, &alone);
  int to_child[2];
  REQUIRE(pipe(to_child) == 0);
  fflush(NULL);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) { /* keeps the heap's pages shared until the parent is done */
    char byte;
    close(to_child[1]);
    ssize_t ignored = read(to_child[0], &byte, 1);
    (void)ignored;
    _exit(0);
  }
  close(to_child[0]);
  collect_checked(&s, &shared);
  close(to_child[1]);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(alone.pages_in_place * 2 > alone.pages_total);
  CHECK(shared.pages_in_place * 10 < alone.pages_in_place);
  CHECK(shared.pages_fresh > alone.pages_fresh);
  return ugc_test_failures;
}

static int scenario_auto(bool disabled) {
  heap_setup s = setup(NULL);
  const char *expected = disabled ? "copy" : "move";
  printf("  auto picked %s\n", ugc_heap_backend(s.heap));
  CHECK(strcmp(ugc_heap_backend(s.heap), expected) == 0);
  fill(&s, 2);
  ugc_compaction_stats d;
  collect_checked(&s, &d);
  CHECK(disabled ? d.move_ioctls == 0 : d.move_ioctls > 0);
  return ugc_test_failures;
}

#define COLD_BLOCKS 1500u

/* Physical frame of the page at `address` (resident), or 0 when pagemap hides frames
 * (no CAP_SYS_ADMIN) or the page is not present. */
static uint64_t frame_of(int pagemap, uintptr_t address) {
  uint64_t entry = 0;
  if (pread(pagemap, &entry, sizeof entry, (off_t)(address / 4096 * sizeof entry)) !=
      (ssize_t)sizeof entry)
    return 0;
  return (entry >> 63) & 1 ? entry & ((UINT64_C(1) << 55) - 1) : 0;
}

static size_t cold_bytes(unsigned i) {
  return 4096 + (size_t)(i * 2654435761u % 8192);
}

/* Reads every block from the top down while the GC thread builds from the bottom up: the
 * mutator faults on pages slid whole and moves them itself. */
static void read_cold_blocks(heap_setup *s) {
  for (unsigned i = COLD_BLOCKS; i-- > 0;) {
    const unsigned char *block = s->roots[i];
    if (!block)
      continue;
    for (size_t k = 0; k < cold_bytes(i); k += 1024)
      REQUIRE(block[k] == (unsigned char)(i * 31 + k / 4096));
  }
}

static int scenario_cold(void) {
  heap_setup s = setup("move");
  s.roots = ugc_alloc(s.m, s.table, COLD_BLOCKS * sizeof(void *));
  ugc_root(s.m, (void **)&s.roots);
  for (unsigned i = 0; i < COLD_BLOCKS; i++) {
    unsigned char *block = ugc_alloc(s.m, s.blob, cold_bytes(i));
    for (size_t k = 0; k < cold_bytes(i); k++)
      block[k] = (unsigned char)(i * 31 + k / 4096);
    ugc_write(s.m, s.roots, &s.roots[i], block);
    ugc_alloc(s.m, s.blob, 64 + (i * 40503u) % 1024); /* garbage */
  }
  /* The frame of every page lying wholly inside a block, by block and page offset. */
  int pagemap = open("/proc/self/pagemap", O_RDONLY);
  uint64_t(*frames)[3] = calloc(COLD_BLOCKS, sizeof *frames);
  uintptr_t *old_addresses = calloc(COLD_BLOCKS, sizeof *old_addresses);
  REQUIRE(frames && old_addresses);
  size_t known = 0;
  for (unsigned i = 0; i < COLD_BLOCKS; i++) {
    uintptr_t at = (uintptr_t)s.roots[i];
    old_addresses[i] = at;
    uintptr_t page = (at + 4095) & ~(uintptr_t)4095;
    for (int k = 0; k < 3 && page + 4096 * (uintptr_t)(k + 1) <= at + cold_bytes(i); k++)
      known +=
          (frames[i][k] = pagemap >= 0 ? frame_of(pagemap, page + 4096 * (uintptr_t)k) : 0) != 0;
  }
  ugc_compaction_stats d;
  collect_checked(&s, &d);
  size_t kept = 0;
  /* The frames are compared for this first collection; a second one with a mutator reading
   * the blocks meanwhile checks the fault path on pages slid whole. */
  uint64_t first_whole = d.pages_slid_whole;
  for (unsigned i = 0; i < COLD_BLOCKS; i++) {
    uintptr_t at = (uintptr_t)s.roots[i];
    const unsigned char *block = (const unsigned char *)at;
    for (size_t k = 0; k < cold_bytes(i); k += 512)
      REQUIRE(block[k] == (unsigned char)(i * 31 + k / 4096));
    if ((at - old_addresses[i]) % 4096) /* not slid whole */
      continue;
    uintptr_t page = (at + 4095) & ~(uintptr_t)4095;
    for (int k = 0; k < 3; k++)
      kept += frames[i][k] && frame_of(pagemap, page + 4096 * (uintptr_t)k) == frames[i][k];
  }
  printf("  slid whole %llu of %llu pages; %zu of %zu block pages kept their frame\n",
         (unsigned long long)d.pages_slid_whole, (unsigned long long)d.pages_total, kept, known);
  CHECK(d.pages_slid_whole > 0);
  CHECK(d.pages_slid_whole * 20 > d.pages_total); /* about a third of the pages here */
  if (known) /* frames visible: each page slid whole is one of these, or a fallback */
    CHECK(kept * 10 >= d.pages_slid_whole * 9);
  else
    printf("  note: /proc/self/pagemap shows no frame numbers here (no CAP_SYS_ADMIN)\n");
  for (unsigned i = 0; i < COLD_BLOCKS; i += 2) /* every other block dies: slides again */
    ugc_write(s.m, s.roots, &s.roots[i], NULL);
  while_compacting = read_cold_blocks;
  ugc_compaction_stats again;
  collect_checked(&s, &again);
  while_compacting = NULL;
  printf("  again, a mutator reading: slid whole %llu, %llu pages built by the mutator\n",
         (unsigned long long)again.pages_slid_whole, (unsigned long long)again.pages_by_mutator);
  CHECK(first_whole > 0 && again.pages_slid_whole > 0);
  /* Nothing dies now: the region slid whole with padding stays in place (the padding counts
   * with the live words in the dense-prefix rule), instead of being rebuilt. */
  ugc_compaction_stats still;
  collect_checked(&s, &still);
  CHECK(still.pages_in_place * 10 >= still.pages_total * 9);
  if (pagemap >= 0)
    close(pagemap);
  free(frames);
  free(old_addresses);
  return ugc_test_failures;
}

typedef struct scenario {
  const char *name, *inject, *disable;
  int (*run)(void);
  const char *delivery; /* UFFDGC_DELIVERY, or NULL for the default */
} scenario;

static int auto_plain(void) {
  return scenario_auto(false);
}
static int auto_disabled(void) {
  return scenario_auto(true);
}

static const scenario scenarios[] = {
    {"dense", NULL, NULL, scenario_dense, NULL},
    {"copy-shares", NULL, NULL, scenario_copy_shares, NULL},
    {"sparse", NULL, NULL, scenario_sparse, NULL},
    {"injected", "move.busy", NULL, scenario_injected, NULL},
    {"misreported", "move.eexist_moved", NULL, scenario_misreported, NULL},
    {"forked", NULL, NULL, scenario_forked, NULL},
    {"auto", NULL, NULL, auto_plain, NULL},
    {"auto-disabled", NULL, "move", auto_disabled, NULL},
    {"cold", NULL, NULL, scenario_cold, NULL},
    {"cold-thread", NULL, NULL, scenario_cold, "thread"},
};

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  /* The parent makes no library call: each child probes and reads the variables itself. */
  int failed = 0;
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
    const scenario *sc = &scenarios[i];
    printf("%s:\n", sc->name);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      unsetenv("UFFDGC_BACKEND");
      unsetenv("UFFDGC_INJECT");
      unsetenv("UFFDGC_DISABLE");
      if (sc->inject)
        setenv("UFFDGC_INJECT", sc->inject, 1);
      if (sc->disable)
        setenv("UFFDGC_DISABLE", sc->disable, 1);
      if (sc->delivery)
        setenv("UFFDGC_DELIVERY", sc->delivery, 1);
      else
        unsetenv("UFFDGC_DELIVERY");
      char reason[256];
      const char *needed = sc->disable ? "copy" : "move";
      if (!ugc_backend_available(needed, reason, sizeof reason)) {
        printf("SKIP: backend %s: %s\n", needed, reason);
        _exit(77);
      }
      _exit(sc->run() ? 1 : 0);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
      return 77;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      printf("  FAILED (status 0x%x)\n", status);
      failed++;
    }
  }
  if (failed)
    return 1;
  printf("OK\n");
  return 0;
}
