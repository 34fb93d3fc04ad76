/* The minor backend keeps the dense prefix in the memfd pages that hold it: the compaction
 * updates their references in place and maps them with UFFDIO_CONTINUE, and only the rest
 * of the data goes to a new file (backend/minor.c, heap/file_space.h). Each scenario runs
 * in a fresh child process:
 *   kept         a dense region of nodes whose references point at blobs that slide every
 *                cycle (a quarter of each cycle's blobs live), some nodes rewritten between
 *                cycles (their pages are private copies in from-space), the mutator reading
 *                everything from the top while each compaction runs; from the second cycle
 *                on the kept pages count as in place (> 0), in place + fresh = total, the
 *                bytes copied are the fresh pages only, and the heap's first page is still
 *                the same file after the cycle (/proc/self/maps inode); the file pieces
 *                grow by one per cycle, never past 8, and a cycle that would pass 8 starts
 *                a fresh file (seen at least once);
 *   kept-thread  the same with the handler-thread delivery;
 *   cut          blobs just above the nodes die: the dense prefix ends inside the kept
 *                file, so fewer pages are kept than the cycle before (only the nodes'),
 *                and the pages above slide;
 *   untouched    after cycles as in kept, one whose blobs die through the root table only
 *                (no heap page written since the last cycle): no kept byte is copied, every
 *                kept page is updated where it lies; then one with one node written: only
 *                that node's page (a private copy in from-space) is copied;
 *   forked       a child forked between cycles maps the files: the next cycle keeps
 *                nothing (its in-place writes would show in the child: references in node
 *                pages the child reads straight from the file, since blobs below them
 *                died), the child's graph is intact after it, and the cycle after that
 *                keeps again.
 * Each checks the graph digest and the verifier around every collection, and that the
 * heap's files then hold no more than the data (old files closed, kept files punched past
 * their kept part: /proc/self/fd, allocated blocks). */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

/* 40 bytes each (640 KiB, all live): nodes straddle page edges, so the build of a page reads
 * the header of a node that starts in the page before, which may be a kept page being
 * updated in place (or, at dense_end, the first slid page reads it). */
#define NODES 16384u
#define NODE_BYTES 32u
#define BLOBS_PER_CYCLE 4096u /* 1 MiB a cycle, one in four kept */
#define BLOB_BYTES 248u
#define CYCLES 14u
#define MAX_PIECES 8u

typedef struct heap_setup {
  ugc_heap *heap;
  ugc_mutator *m;
  ugc_type_id node, blob, table;
  void **nodes; /* reference arrays in the large-object space: off the moving space */
  void **blobs;
  unsigned blob_count;
} heap_setup;

/* Fills *out (the roots are its fields: it must outlive the heap). */
static void setup(heap_setup *out) {
  heap_setup s;
  memset(&s, 0, sizeof s);
  ugc_config config = fixture_config((size_t)256 << 20, (size_t)64 << 20);
  config.backend = "minor";
  config.gc_threads = 2; /* one compaction thread */
  s.heap = fixture_heap(&config);
  s.m = fixture_attach(s.heap);
  uint32_t offsets[] = {0, 8}; /* other, next */
  s.node = fixture_type(s.heap, "node", UGC_LAYOUT_FIXED, NODE_BYTES, offsets, 2);
  s.blob = fixture_leaf_type(s.heap, "blob");
  s.table = fixture_type(s.heap, "table", UGC_LAYOUT_REF_ARRAY, 0, NULL, 0);
  *out = s;
  heap_setup *p = out;
  p->nodes = ugc_alloc(p->m, p->table, NODES * sizeof(void *));
  ugc_root(p->m, (void **)&p->nodes);
  p->blobs = ugc_alloc(p->m, p->table, (size_t)CYCLES * 2 * BLOBS_PER_CYCLE * sizeof(void *));
  ugc_root(p->m, (void **)&p->blobs);
  void *previous = NULL;
  for (unsigned i = 0; i < NODES; i++) {
    void **node = ugc_alloc(p->m, p->node, NODE_BYTES);
    ugc_write(p->m, node, &node[1], previous);
    ((uint64_t *)node)[2] = i;
    ugc_write(p->m, p->nodes, &p->nodes[i], node);
    previous = node;
  }
}

/* New blobs, one in four kept (they slide at the next compaction), and a node pointed at
 * every fourth kept one: the nodes' pages get references to update, and most node pages
 * are not written between two cycles. */
static void add_blobs(heap_setup *s, unsigned cycle) {
  for (unsigned i = 0; i < BLOBS_PER_CYCLE; i++) {
    uint64_t *blob = ugc_alloc(s->m, s->blob, BLOB_BYTES);
    for (unsigned w = 0; w < BLOB_BYTES / 8; w++)
      blob[w] = (uint64_t)cycle << 40 | (uint64_t)i << 8 | w;
    if (i % 4)
      continue;
    ugc_write(s->m, s->blobs, &s->blobs[s->blob_count++], blob);
    unsigned kept = i / 4;
    if (kept % 4 == 0) {
      unsigned node = (cycle * 997u + kept * 7u) % NODES;
      ugc_write(s->m, s->nodes[node], &((void **)s->nodes[node])[0], blob);
    }
  }
}

/* Reads every node and blob from the top down while the compaction runs: touches pages the
 * compaction thread has not reached yet (the mutator builds them). */
static uint64_t read_all(heap_setup *s) {
  uint64_t sum = 0;
  for (unsigned i = s->blob_count; i-- > 0;)
    if (s->blobs[i])
      sum += ((volatile uint64_t *)s->blobs[i])[1];
  for (unsigned i = NODES; i-- > 0;) {
    void **node = s->nodes[i];
    sum += ((volatile uint64_t *)node)[2];
    if (node[0])
      sum += ((volatile uint64_t *)node[0])[0];
  }
  return sum;
}

/* The inode of the mapping that holds `address`, and the number of the heap's file
 * mappings ("uffdgc-heap" memfds; between cycles, one per file piece). */
static void heap_mappings(uintptr_t address, uint64_t *inode, unsigned *pieces) {
  FILE *maps = fopen("/proc/self/maps", "r");
  REQUIRE(maps != NULL);
  char line[512];
  *inode = 0;
  *pieces = 0;
  while (fgets(line, sizeof line, maps)) {
    uintptr_t lo, hi;
    unsigned long long offset, ino;
    char dev[32];
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %*s %llx %31s %llu", &lo, &hi, &offset, dev,
               &ino) != 5)
      continue;
    if (strstr(line, "uffdgc-heap"))
      ++*pieces;
    if (address >= lo && address < hi)
      *inode = ino;
  }
  fclose(maps);
}

/* Bytes the heap's memfds hold (allocated blocks, over the descriptors the process has
 * open: the pieces' files; between cycles no other). */
static uint64_t heap_file_bytes(void) {
  DIR *dir = opendir("/proc/self/fd");
  REQUIRE(dir != NULL);
  uint64_t bytes = 0;
  struct dirent *entry;
  while ((entry = readdir(dir))) {
    char path[300], target[256];
    snprintf(path, sizeof path, "/proc/self/fd/%s", entry->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0)
      continue;
    target[n] = 0;
    struct stat st;
    if (strstr(target, "uffdgc-heap") && stat(path, &st) == 0)
      bytes += (uint64_t)st.st_blocks * 512;
  }
  closedir(dir);
  return bytes;
}

/* One full collection, the mutator reading everything meanwhile; the compaction statistics
 * it added go to *d. */
static void collect_checked(heap_setup *s, ugc_compaction_stats *d) {
  ugc_stats before, after;
  ugc_stats_get(s->heap, &before);
  uint64_t digest = ugc_graph_digest(s->m);
  uint64_t sum = read_all(s);
  ugc_collect(s->m, UGC_COLLECT_FULL);
  REQUIRE(read_all(s) == sum);
  ugc_collect(s->m, UGC_COLLECT_FINISH);
  REQUIRE(ugc_graph_digest(s->m) == digest);
  ugc_error error;
  REQUIRE(ugc_verify(s->m, &error) == 0);
  ugc_stats_get(s->heap, &after);
  const uint64_t *b = (const uint64_t *)&before.compaction,
                 *a = (const uint64_t *)&after.compaction;
  uint64_t *delta = (uint64_t *)d;
  for (size_t i = 0; i < sizeof *d / sizeof(uint64_t); i++)
    delta[i] = a[i] - b[i];
  printf("  pages %llu: in place %llu, fresh %llu, %llu by mutators; %.1f MiB copied",
         (unsigned long long)d->pages_total, (unsigned long long)d->pages_in_place,
         (unsigned long long)d->pages_fresh, (unsigned long long)d->pages_by_mutator,
         (double)d->bytes_copied / (1 << 20));
  /* The files hold nothing but the data: old files closed, kept files punched past their
   * kept part. */
  uint64_t file_bytes = heap_file_bytes();
  printf(", files hold %.2f MiB", (double)file_bytes / (1 << 20));
  CHECK(file_bytes <= d->pages_total * 4096);
  CHECK_EQ_U64(d->pages_in_place + d->pages_fresh, d->pages_total);
  /* Fresh pages are copied; of the kept ones only those a mutator wrote since the last
   * cycle (private copies in from-space), the others are updated where they lie. */
  printf(", %.2f MiB of it kept pages", (double)d->kept_bytes_copied / (1 << 20));
  CHECK(d->kept_bytes_copied <= d->pages_in_place * 4096);
  CHECK_EQ_U64(d->bytes_copied, d->pages_fresh * 4096 + d->kept_bytes_copied);
}

static int scenario_kept(void) {
  static heap_setup s;
  /* The GC threads start late, so that the mutator's reads surely fault pages in (on a
   * loaded machine they could otherwise build every page first). */
  setenv("UFFDGC_INJECT", "compact.late_start", 1);
  setup(&s);
  uintptr_t first_node = (uintptr_t)s.nodes[0];
  uint64_t by_mutators = 0;
  unsigned cycles_kept = 0, fresh_starts = 0, last_pieces = 0;
  for (unsigned cycle = 0; cycle < CYCLES; cycle++) {
    add_blobs(&s, cycle);
    uint64_t inode_before, inode_after;
    unsigned pieces_before, pieces;
    heap_mappings(first_node, &inode_before, &pieces_before);
    ugc_compaction_stats d;
    collect_checked(&s, &d);
    heap_mappings(first_node, &inode_after, &pieces);
    printf("; %u file piece(s)\n", pieces);
    by_mutators += d.pages_by_mutator;
    CHECK(pieces >= 1 && pieces <= MAX_PIECES);
    if (cycle > 0 && pieces_before < MAX_PIECES) { /* the dense prefix stays in its file */
      CHECK(d.pages_in_place > 0);
      CHECK_EQ_U64(inode_after, inode_before);
      CHECK_EQ_U64(pieces, pieces_before + 1);
    }
    if (d.pages_in_place)
      cycles_kept++;
    if (cycle > 0 && pieces_before == MAX_PIECES) { /* a ninth piece: one fresh file */
      CHECK_EQ_U64(d.pages_in_place, 0);
      CHECK_EQ_U64(pieces, 1);
      CHECK(inode_after != inode_before);
      fresh_starts++;
    }
    last_pieces = pieces;
  }
  printf("  %u cycles kept their dense prefix, %u started a fresh file, %llu pages built by "
         "mutators, %u piece(s) at the end\n",
         cycles_kept, fresh_starts, (unsigned long long)by_mutators, last_pieces);
  CHECK(cycles_kept >= CYCLES / 2);
  CHECK(fresh_starts >= 1);
#ifndef UGC_NO_FAULT_INJECTION
  CHECK(by_mutators > 0);
#endif
  return ugc_test_failures;
}

static int scenario_forked(void) {
  static heap_setup s;
  setup(&s);
  ugc_compaction_stats d;
  for (unsigned cycle = 0; cycle < 3; cycle++) {
    add_blobs(&s, cycle);
    collect_checked(&s, &d);
    printf("\n");
  }
  CHECK(d.pages_in_place > 0);
  add_blobs(&s, 3);
  /* The first cycle's blobs that no node holds die (a write to the root table only, which
   * is off the moving space): the dense prefix ends near the nodes, everything above
   * slides, and node pages nobody wrote since the last cycle get references to update. */
  for (unsigned i = 0; i < BLOBS_PER_CYCLE / 4; i++)
    ugc_write(s.m, s.blobs, &s.blobs[i], NULL);
  int to_child[2], from_child[2];
  REQUIRE(pipe(to_child) == 0 && pipe(from_child) == 0);
  fflush(NULL);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) { /* its heap maps the parent's files until the parent's cycle is done */
    close(to_child[1]);
    close(from_child[0]);
    uint64_t digest = ugc_graph_digest(s.m), sum = read_all(&s);
    char byte = 1;
    ssize_t ignored = write(from_child[1], &byte, 1);
    ignored = read(to_child[0], &byte, 1);
    (void)ignored;
    bool intact = ugc_graph_digest(s.m) == digest && read_all(&s) == sum;
    _exit(intact ? 0 : 3);
  }
  close(to_child[0]);
  close(from_child[1]);
  char byte;
  REQUIRE(read(from_child[0], &byte, 1) == 1);
  collect_checked(&s, &d);
  printf(" (a child maps the files)\n");
  CHECK_EQ_U64(d.pages_in_place, 0);
  REQUIRE(write(to_child[1], &byte, 1) == 1);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  printf("  the child's graph after the parent's cycle: %s\n",
         WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "intact" : "CHANGED");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  add_blobs(&s, 4);
  collect_checked(&s, &d);
  printf("\n");
  add_blobs(&s, 5);
  collect_checked(&s, &d);
  printf(" (the files made after the fork are kept again)\n");
  CHECK(d.pages_in_place > 0);
  return ugc_test_failures;
}

/* The dense prefix ends inside the kept file (blobs just above the nodes die): the pages
 * below dense_end are kept (nodes straddle most of their edges: a page's build reads the
 * header of a node that starts in the kept page before, updated in place meanwhile), every
 * page from dense_end on slides, the rest of that file is punched, and the next cycle keeps
 * again. */
static int scenario_cut(void) {
  static heap_setup s;
  setup(&s);
  ugc_compaction_stats d;
  uint64_t kept_before = 0;
  for (unsigned cycle = 0; cycle < 3; cycle++) {
    add_blobs(&s, cycle);
    collect_checked(&s, &d);
    printf("\n");
    kept_before = d.pages_in_place;
  }
  add_blobs(&s, 3);
  for (unsigned i = 0; i < BLOBS_PER_CYCLE / 4; i++) /* see scenario_forked */
    ugc_write(s.m, s.blobs, &s.blobs[i], NULL);
  collect_checked(&s, &d);
  printf(" (blobs above the nodes died)\n");
  CHECK(d.pages_in_place > 0 && d.pages_in_place < kept_before);
  CHECK(d.pages_in_place * 4096u <= NODES * (NODE_BYTES + 8) + 4096u);
  add_blobs(&s, 4);
  collect_checked(&s, &d);
  printf("\n");
  CHECK(d.pages_in_place > 0);
  return ugc_test_failures;
}

/* Kills blobs [first, first + count) through the root table (off the moving space: no
 * page of the heap is written). */
static void drop_blobs(heap_setup *s, unsigned first, unsigned count) {
  for (unsigned i = first; i < first + count; i++)
    ugc_write(s->m, s->blobs, &s->blobs[i], NULL);
}

static int scenario_untouched(void) {
  static heap_setup s;
  setup(&s);
  ugc_compaction_stats d;
  for (unsigned cycle = 0; cycle < 3; cycle++) {
    add_blobs(&s, cycle);
    collect_checked(&s, &d);
    printf("\n");
  }
  /* Nothing in the heap was written since the last cycle: every kept page is the file's
   * page, updated where it lies (the nodes' references to blobs that slide), none copied. */
  drop_blobs(&s, 0, BLOBS_PER_CYCLE / 4);
  collect_checked(&s, &d);
  printf(" (nothing written)\n");
  CHECK(d.pages_in_place > 0 && d.pages_fresh > 0);
  CHECK_EQ_U64(d.kept_bytes_copied, 0);
  /* One node written: its page, a private copy in from-space, is the only one copied. The
   * write is to its number, not a reference (a build rewrites every reference slot from
   * from-space anyway): an update of the stale file page would lose it (read_all's sum). */
  void **node = s.nodes[NODES / 3];
  ((uint64_t *)node)[2] += (uint64_t)1 << 32;
  drop_blobs(&s, BLOBS_PER_CYCLE / 4, BLOBS_PER_CYCLE / 4);
  collect_checked(&s, &d);
  printf(" (one node written)\n");
  CHECK(d.pages_in_place > 0);
  CHECK_EQ_U64(d.kept_bytes_copied, 4096);
  return ugc_test_failures;
}

typedef struct scenario {
  const char *name;
  int (*run)(void);
  const char *delivery; /* UFFDGC_DELIVERY, or NULL for the default */
} scenario;

static const scenario scenarios[] = {
    {"kept", scenario_kept, NULL},
    {"kept-thread", scenario_kept, "thread"},
    {"cut", scenario_cut, NULL},
    {"forked", scenario_forked, NULL},
    {"untouched", scenario_untouched, NULL},
    {"untouched-thread", scenario_untouched, "thread"},
};

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  char reason[256];
  if (!ugc_backend_available("minor", reason, sizeof reason)) {
    printf("SKIP: backend minor: %s\n", reason);
    return 77;
  }
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
      if (sc->delivery)
        setenv("UFFDGC_DELIVERY", sc->delivery, 1);
      else
        unsetenv("UFFDGC_DELIVERY");
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
