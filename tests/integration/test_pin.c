/* ugc_pin / ugc_unpin on objects of the moving space: pinned objects keep their addresses
 * across many moving collections while the objects around them move (digests and both
 * verifiers clean); a thread doing read(2) from a pipe into a pinned object's payload while
 * compactions run never gets EFAULT; pins are counted; unpinning an object that is not
 * pinned aborts with a message. Run on every backend by tests/matrix.cmake. Public API only. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "itest.h"

#define OBJECTS 3000
#define PIN_EVERY 37
#define CYCLES 40
#define BUFFER_BYTES 2048

static void *roots[OBJECTS];
static void *buffer_root;

static ugc_heap *heap;
static ugc_type_id t_leaf;

static void unpin_unpinned(void *data) {
  ugc_mutator *m = fixture_attach(heap);
  (void)data;
  ugc_unpin(m, ugc_alloc(m, t_leaf, 16));
}

typedef struct pipe_reader {
  int fd;
  char *payload;
  _Atomic bool stop, go;
  _Atomic unsigned long reads, efaults;
} pipe_reader;

/* Not a mutator: it only hands the pinned payload to the kernel. Reads until end of file:
 * the writer, stopped first, must never block on a full pipe nobody drains. */
static void *read_loop(void *arg) {
  pipe_reader *r = arg;
  while (!atomic_load(&r->go) && !atomic_load(&r->stop))
    usleep(1000);
  for (;;) {
    ssize_t got = read(r->fd, r->payload, BUFFER_BYTES);
    if (got == 0)
      break;
    if (got < 0 && errno == EFAULT)
      atomic_fetch_add(&r->efaults, 1);
    else if (got > 0)
      atomic_fetch_add(&r->reads, 1);
  }
  return NULL;
}

static void *write_loop(void *arg) {
  pipe_reader *r = arg;
  char bytes[512];
  memset(bytes, 'x', sizeof bytes);
  while (!atomic_load(&r->stop))
    if (write(r->fd, bytes, sizeof bytes) < 0)
      break;
  return NULL;
}

int main(void) {
  ugc_config config = fixture_config(64u << 20, 8u << 20);
  config.verify = 1;
  heap = itest_heap_create(&config);
  ugc_mutator *m = fixture_attach(heap);
  t_leaf = fixture_leaf_type(heap, "leaf");
  for (size_t i = 0; i < OBJECTS; i++)
    ugc_global_root_add(heap, &roots[i]);
  ugc_global_root_add(heap, &buffer_root);

  /* Counting, and the misuse. */
  void *counted = ugc_alloc(m, t_leaf, 32);
  CHECK_EQ_U64(ugc_pin_count(m, counted), 0);
  ugc_pin(m, counted);
  ugc_pin(m, counted);
  CHECK_EQ_U64(ugc_pin_count(m, counted), 2);
  ugc_unpin(m, counted);
  CHECK_EQ_U64(ugc_pin_count(m, counted), 1);
  ugc_unpin(m, counted);
  CHECK_EQ_U64(ugc_pin_count(m, counted), 0);
  expect_abort_with(unpin_unpinned, NULL, "ugc_unpin");

  /* Objects with garbage between them, every PIN_EVERY-th pinned. */
  void *pinned_at[OBJECTS] = {0};
  for (size_t i = 0; i < OBJECTS; i++) {
    ugc_alloc(m, t_leaf, 8 * (i % 50));
    roots[i] = ugc_alloc(m, t_leaf, 16 + 8 * (i % 70));
    memset(roots[i], (int)(i & 0xFF), 16);
    if (i % PIN_EVERY == 0) {
      ugc_pin(m, roots[i]);
      pinned_at[i] = roots[i];
    }
  }
  buffer_root = ugc_alloc(m, t_leaf, BUFFER_BYTES);
  ugc_pin(m, buffer_root);
  void *buffer_at = buffer_root;

  pipe_reader reader = {.payload = buffer_root};
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  reader.fd = fds[0];
  pipe_reader writer = {.fd = fds[1]};
  pthread_t reader_thread, writer_thread;
  REQUIRE(pthread_create(&reader_thread, NULL, read_loop, &reader) == 0);
  REQUIRE(pthread_create(&writer_thread, NULL, write_loop, &writer) == 0);

  size_t moved = 0, kept = 0;
  uint64_t collections_before = ugc_collections(heap);
  for (int cycle = 0; cycle < CYCLES; cycle++) {
    /* A quarter of the unpinned objects die and are replaced after fresh garbage. */
    for (size_t i = (size_t)cycle % 4; i < OBJECTS; i += 4) {
      if (pinned_at[i])
        continue;
      ugc_alloc(m, t_leaf, 8 * (i % 30));
      roots[i] = ugc_alloc(m, t_leaf, 16 + 8 * (i % 70));
      memset(roots[i], (int)(i & 0xFF), 16);
    }
    void *probe = roots[OBJECTS - 1];
    /* The digest covers the buffer the reader writes into: digests in the first half, the
     * reader in the second. */
    bool digest = cycle < CYCLES / 2;
    if (!digest)
      atomic_store(&reader.go, true);
    uint64_t digest_before = digest ? ugc_graph_digest(m) : 0;
    ugc_collect(m, UGC_COLLECT_FULL);
    if (digest)
      CHECK_EQ_U64(digest_before, ugc_graph_digest(m));
    moved += roots[OBJECTS - 1] != probe;
    for (size_t i = 0; i < OBJECTS; i += PIN_EVERY) {
      CHECK(roots[i] == pinned_at[i]);
      kept++;
    }
    CHECK(buffer_root == buffer_at);
    ugc_error error;
    size_t problems = ugc_verify(m, &error);
    if (problems)
      fprintf(stderr, "cycle %d: ugc_verify: %zu problems: %s\n", cycle, problems, error.message);
    CHECK(problems == 0);
  }
  ugc_collect(m, UGC_COLLECT_FINISH);
  atomic_store(&reader.stop, true); /* if it never started: read to the end now */
  atomic_store(&writer.stop, true);
  ugc_blocking_enter(m);
  pthread_join(writer_thread, NULL);
  close(fds[1]); /* the reader drains the pipe, then sees the end of file */
  pthread_join(reader_thread, NULL);
  ugc_blocking_leave(m);
  close(fds[0]);
  printf("info: %s: %llu collections, the probe moved in %zu, %zu pinned addresses checked, "
         "%lu reads into the pinned buffer, %lu EFAULT\n",
         ugc_heap_backend(heap), (unsigned long long)(ugc_collections(heap) - collections_before),
         moved, kept, atomic_load(&reader.reads), atomic_load(&reader.efaults));
  CHECK(moved > CYCLES / 2);
  char reason[256] = "";
  if (ugc_heap_syscalls_may_fault(heap, reason, sizeof reason))
    printf("info: system calls may fault on this heap (%s): EFAULT not checked\n", reason);
  else
    CHECK_EQ_U64(atomic_load(&reader.efaults), 0);
  CHECK(atomic_load(&reader.reads) > 0);

  /* Unpinned, they move again. */
  for (size_t i = 0; i < OBJECTS; i += PIN_EVERY)
    ugc_unpin(m, roots[i]);
  ugc_unpin(m, buffer_root);
  for (size_t i = 1; i < OBJECTS; i++)
    roots[i] = NULL;
  ugc_collect(m, UGC_COLLECT_FULL);
  CHECK(roots[0] != pinned_at[0] || buffer_root != buffer_at);
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
