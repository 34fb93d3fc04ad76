/* System calls into pinned objects while collections compact concurrently, back to back.
 * Worker threads (mutators) allocate objects normally, pin them with ugc_pin, and in
 * blocking regions (the compaction pause does not stop them there) read(2) a fresh pattern
 * from a pipe into a pinned payload, compare it, write(2) the payload out to a second pipe
 * and compare what comes back. Every transfer must be complete (no short read or write) and
 * see no EFAULT and no lost or stale byte, on every backend: stw, copy and move keep the
 * pinned pages in the heap through the pause and rebuild them in place; sigsegv and minor
 * compact cycles with pinned pages in the pause, as stw does. The main thread collects in a
 * loop; around each collection the workers hold (each payload set to a canonical pattern),
 * so that the graph digest before the collection equals the one after it; ugc_verify must be
 * clean and every pinned object where it was pinned. Between cycles the workers unpin a few
 * objects and pin others that already exist. The main thread reads its own objects right
 * after each collection, so mutators build pages (pages_by_mutator and pages_by_gc are
 * printed, and must be > 0 on copy and move).
 *
 * UGC_PIN_IO_SPACE=nonmoving: the payloads are ugc_alloc_pinned objects (the non-moving space)
 * instead of pinned moving ones, and 96 non-moving reference arrays (512 references each,
 * to objects that move) make that space big enough for its references to be updated after
 * the pause (compact/update_pages.c). With thread delivery on copy, move and minor its pages
 * then leave it in the pause and come back built: the system calls must wait for them,
 * never write into a page that is dropped (backend/copy_update.c registers a range before
 * its pages move away). UFFDGC_INJECT=copy.update_slow_handoff widens that moment to 2 ms.
 *
 * UGC_TEST_ITERATIONS (default 60) collections. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#define WORKERS 2
#define PINNED_PER_WORKER 24
#define MAX_PAYLOAD 6000
#define OWN_OBJECTS 20000
#define NONMOVING_ARRAYS 96
#define NONMOVING_ARRAY_REFS 512

typedef struct worker {
  int index;
  void *slots[PINNED_PER_WORKER]; /* global roots */
  void *pinned_at[PINNED_PER_WORKER];
  size_t sizes[PINNED_PER_WORKER];
  int in_pipe[2], out_pipe[2];
  atomic_uint acked;
  unsigned long transfers, efaults, short_transfers, wrong_in, wrong_out, replaced;
  uint64_t seed;
} worker;

static ugc_heap *heap;
static ugc_type_id leaf;
static worker workers[WORKERS];
static void *own[OWN_OBJECTS];
static atomic_uint hold_gen, release_gen, replace_gen;
static atomic_bool stop;
static bool in_nonmoving; /* UGC_PIN_IO_SPACE=nonmoving */
static void **nonmoving_arrays[NONMOVING_ARRAYS];

static uint64_t next_random(uint64_t *state) {
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return *state;
}

static void fill_pattern(unsigned char *bytes, size_t n, uint64_t key) {
  for (size_t i = 0; i < n; i++)
    bytes[i] = (unsigned char)(key * 131 + i * 7 + (i >> 8));
}

/* One read(2) into the pinned payload and one write(2) out of it, both checked. The system
 * calls run in blocking regions (the pause does not wait for them); the payload is compared
 * outside them (a mutator touches the heap only while attached and running). */
static void transfer(ugc_mutator *m, worker *w, unsigned char *payload, size_t n, uint64_t key) {
  static _Thread_local unsigned char expected[MAX_PAYLOAD], back[MAX_PAYLOAD];
  fill_pattern(expected, n, key);
  ugc_blocking_enter(m);
  REQUIRE(write(w->in_pipe[1], expected, n) == (ssize_t)n);
  ssize_t got = read(w->in_pipe[0], payload, n);
  int err = errno;
  if (got < 0 && err == EFAULT)
    REQUIRE(read(w->in_pipe[0], back, n) == (ssize_t)n); /* drain what the kernel kept */
  else if (got >= 0 && got < (ssize_t)n)
    REQUIRE(read(w->in_pipe[0], back, n - (size_t)got) == (ssize_t)(n - (size_t)got));
  ugc_blocking_leave(m);
  if (got < 0 && err == EFAULT) {
    w->efaults++;
    return;
  }
  w->transfers++;
  if (got != (ssize_t)n) {
    w->short_transfers++;
    return;
  }
  if (memcmp(payload, expected, n) != 0)
    w->wrong_in++;
  ugc_blocking_enter(m);
  ssize_t put = write(w->out_pipe[1], payload, n);
  err = errno;
  ssize_t came = put > 0 ? read(w->out_pipe[0], back, (size_t)put) : 0;
  ugc_blocking_leave(m);
  if (put < 0 && err == EFAULT) {
    w->efaults++;
    return;
  }
  REQUIRE(came == put);
  if (put != (ssize_t)n) {
    w->short_transfers++;
    return;
  }
  if (memcmp(back, expected, n) != 0)
    w->wrong_out++;
}

static uint64_t canonical_key(const worker *w, int slot) {
  return (uint64_t)w->index * 1000 + (uint64_t)slot;
}

/* An object allocated normally (after some garbage, so that it is not at the top), filled
 * through read(2) and then pinned; or, in the non-moving mode, allocated pinned. */
static void pin_new(ugc_mutator *m, worker *w, int slot) {
  for (int g = 0; g < 20; g++)
    ugc_alloc(m, leaf, 16 + 8 * (next_random(&w->seed) % 64));
  size_t n = 64 + next_random(&w->seed) % (MAX_PAYLOAD - 64);
  w->slots[slot] = in_nonmoving ? ugc_alloc_pinned(m, leaf, n) : ugc_alloc(m, leaf, n);
  memset(w->slots[slot], 0, n);
  if (!in_nonmoving)
    ugc_pin(m, w->slots[slot]);
  w->pinned_at[slot] = w->slots[slot];
  w->sizes[slot] = n;
}

static void canonicalize(ugc_mutator *m, worker *w) {
  for (int s = 0; s < PINNED_PER_WORKER; s++)
    transfer(m, w, w->pinned_at[s], w->sizes[s], canonical_key(w, s));
}

static void wait_for_release(ugc_mutator *m, unsigned gen) {
  ugc_blocking_enter(m);
  while (atomic_load(&release_gen) != gen && atomic_load(&replace_gen) != gen + 1 &&
         !atomic_load(&stop))
    nanosleep(&(struct timespec){0, 20 * 1000}, NULL);
  ugc_blocking_leave(m);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  ugc_mutator *m = fixture_attach(heap);
  unsigned seen_hold = 0, seen_replace = 0;
  uint64_t sequence = 0;
  while (!atomic_load(&stop)) {
    ugc_safepoint(m);
    unsigned replace = atomic_load(&replace_gen);
    if (replace != seen_replace) { /* between collections: unpin a few, pin others */
      seen_replace = replace;
      for (int r = 0; r < 3; r++) {
        int s = (int)(next_random(&w->seed) % PINNED_PER_WORKER);
        if (!in_nonmoving)
          ugc_unpin(m, w->slots[s]);
        pin_new(m, w, s);
        w->replaced++;
      }
      canonicalize(m, w);
      atomic_store(&w->acked, replace);
      wait_for_release(m, replace);
      continue;
    }
    unsigned hold = atomic_load(&hold_gen);
    if (hold != seen_hold) {
      seen_hold = hold;
      canonicalize(m, w);
      atomic_store(&w->acked, hold);
      wait_for_release(m, hold);
      continue;
    }
    for (int s = 0; s < PINNED_PER_WORKER; s++)
      CHECK(w->slots[s] == w->pinned_at[s]);
    int s = (int)(next_random(&w->seed) % PINNED_PER_WORKER);
    transfer(m, w, w->pinned_at[s], w->sizes[s], ++sequence + 1000000);
  }
  ugc_thread_detach(m);
  return NULL;
}

/* Stops every worker in a blocking region with canonical payloads (generation `gen`, a hold
 * or a replacement round). */
static void wait_acks(ugc_mutator *m, unsigned gen) {
  ugc_blocking_enter(m);
  time_t deadline = time(NULL) + 60;
  for (int i = 0; i < WORKERS; i++)
    while (atomic_load(&workers[i].acked) != gen) {
      REQUIRE(time(NULL) < deadline);
      nanosleep(&(struct timespec){0, 20 * 1000}, NULL);
    }
  ugc_blocking_leave(m);
}

int main(void) {
  setenv("UFFDGC_BACKEND", "copy", 0); /* the matrix runs the others */
  unsigned iterations = 60;
  const char *text = getenv("UGC_TEST_ITERATIONS");
  if (text && atoi(text) > 0)
    iterations = (unsigned)atoi(text);
  ugc_config config = fixture_config((size_t)128 << 20, (size_t)32 << 20);
  heap = fixture_heap(&config);
  leaf = fixture_leaf_type(heap, "bytes");
  const char *space = getenv("UGC_PIN_IO_SPACE");
  in_nonmoving = space && strcmp(space, "nonmoving") == 0;
  REQUIRE(!space || in_nonmoving || strcmp(space, "moving") == 0);
  ugc_mutator *m = fixture_attach(heap);
  for (int i = 0; i < OWN_OBJECTS; i++) {
    ugc_global_root_add(heap, &own[i]);
    own[i] = ugc_alloc(m, leaf, 16);
    memset(own[i], (int)(i & 0xFF), 16);
  }
  if (in_nonmoving) {
    ugc_type_id array = fixture_type(heap, "refs", UGC_LAYOUT_REF_ARRAY, 0, NULL, 0);
    for (int a = 0; a < NONMOVING_ARRAYS; a++) {
      ugc_global_root_add(heap, (void **)&nonmoving_arrays[a]);
      nonmoving_arrays[a] = ugc_alloc_pinned(m, array, NONMOVING_ARRAY_REFS * sizeof(void *));
      for (int r = 0; r < NONMOVING_ARRAY_REFS; r++)
        nonmoving_arrays[a][r] = own[(a * NONMOVING_ARRAY_REFS + r) % OWN_OBJECTS];
    }
  }
  for (int i = 0; i < WORKERS; i++) {
    worker *w = &workers[i];
    w->index = i;
    w->seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
    REQUIRE(pipe(w->in_pipe) == 0 && pipe(w->out_pipe) == 0);
    for (int s = 0; s < PINNED_PER_WORKER; s++) {
      ugc_global_root_add(heap, &w->slots[s]);
      pin_new(m, w, s); /* allocated by main, pinned; the worker owns it from now on */
    }
  }
  /* The replacement round 1 fills every payload; workers wait for release 1. */
  atomic_store(&replace_gen, 1);
  pthread_t threads[WORKERS];
  for (int i = 0; i < WORKERS; i++)
    REQUIRE(pthread_create(&threads[i], NULL, worker_main, &workers[i]) == 0);
  wait_acks(m, 1);

  uint64_t state = 12345;
  unsigned long lost_canonical = 0;
  unsigned gen = 1, checked = 0;
  for (unsigned cycle = 0; cycle < iterations; cycle++) {
    /* Workers held: garbage and new objects of our own, so that the collection moves. */
    for (int i = (int)(cycle % 3); i < OWN_OBJECTS; i += 3) {
      ugc_alloc(m, leaf, 16 + 8 * (next_random(&state) % 40));
      own[i] = ugc_alloc(m, leaf, 16 + 8 * (next_random(&state) % 40));
      memset(own[i], (int)(i & 0xFF), 16);
    }
    /* A canonical write lost in a hand-off window (see below) would show as a digest change
     * one cycle later: found and put right here, counted as lost. */
    for (int i = 0; i < WORKERS; i++)
      for (int s = 0; s < PINNED_PER_WORKER; s++) {
        static unsigned char expected[MAX_PAYLOAD];
        fill_pattern(expected, workers[i].sizes[s], canonical_key(&workers[i], s));
        if (memcmp(workers[i].pinned_at[s], expected, workers[i].sizes[s]) != 0) {
          lost_canonical++;
          memcpy(workers[i].pinned_at[s], expected, workers[i].sizes[s]);
        }
      }
    uint64_t before = ugc_graph_digest(m);
    atomic_store(&release_gen, gen);
    ugc_collect(m, UGC_COLLECT_FULL);
    /* Mutator work during the concurrent compaction: touch every object of our own. */
    unsigned long sum = 0;
    for (int i = 0; i < OWN_OBJECTS; i++)
      sum += *(volatile unsigned char *)own[i];
    for (int a = 0; a < NONMOVING_ARRAYS && in_nonmoving; a += 2)
      sum += *(volatile unsigned char *)nonmoving_arrays[a][a];
    (void)sum;
    gen++;
    atomic_store(&hold_gen, gen);
    wait_acks(m, gen);
    ugc_collect(m, UGC_COLLECT_FINISH);
    CHECK_EQ_U64(ugc_graph_digest(m), before);
    ugc_error error;
    size_t problems = ugc_verify(m, &error);
    if (problems)
      fprintf(stderr, "cycle %u: ugc_verify: %zu problems: %s\n", cycle, problems, error.message);
    CHECK(problems == 0);
    for (int i = 0; i < WORKERS; i++)
      for (int s = 0; s < PINNED_PER_WORKER; s++, checked++) {
        CHECK(workers[i].slots[s] == workers[i].pinned_at[s]);
        static unsigned char expected[MAX_PAYLOAD];
        fill_pattern(expected, workers[i].sizes[s], canonical_key(&workers[i], s));
        if (memcmp(workers[i].pinned_at[s], expected, workers[i].sizes[s]) != 0) {
          fprintf(stderr, "cycle %u: worker %d's pinned object %d does not hold its pattern\n",
                  cycle, i, s);
          CHECK(false);
        }
      }
    /* Replacement round: unpin a few, pin others (the digest of the next cycle sees it). */
    gen++;
    atomic_store(&replace_gen, gen);
    atomic_store(&release_gen, gen - 1); /* wakes the holders into the replacement */
    wait_acks(m, gen);
  }
  atomic_store(&stop, true);
  ugc_blocking_enter(m);
  for (int i = 0; i < WORKERS; i++)
    pthread_join(threads[i], NULL);
  ugc_blocking_leave(m);

  ugc_stats stats;
  ugc_stats_get(heap, &stats);
  unsigned long transfers = 0, efaults = 0, shorts = 0, wrong_in = 0, wrong_out = 0, replaced = 0;
  for (int i = 0; i < WORKERS; i++) {
    transfers += workers[i].transfers;
    efaults += workers[i].efaults;
    shorts += workers[i].short_transfers;
    wrong_in += workers[i].wrong_in;
    wrong_out += workers[i].wrong_out;
    replaced += workers[i].replaced;
  }
  printf("pin_io: %s payloads; non-moving pages updated after the pause by GC threads %llu, "
         "by faults %llu, in the pause %llu\n",
         in_nonmoving ? "ugc_alloc_pinned (non-moving)" : "ugc_pin'd moving",
         (unsigned long long)stats.compaction.update_pages_by_gc,
         (unsigned long long)stats.compaction.update_pages_by_mutator,
         (unsigned long long)stats.compaction.update_pages_in_pause);
  printf("pin_io: backend %s, %u collections, %lu transfers into/out of pinned objects: %lu "
         "EFAULT, %lu short; %lu objects re-pinned, %u pinned addresses checked; pages built "
         "by mutators %llu, by GC threads %llu\n",
         ugc_heap_backend(heap), iterations, transfers, efaults, shorts, replaced, checked,
         (unsigned long long)stats.compaction.pages_by_mutator,
         (unsigned long long)stats.compaction.pages_by_gc);
  const char *backend = ugc_heap_backend(heap);
  /* The memfd backends compact every cycle with held pages in the pause (docs/api.md,
   * "Pinning"): here that is every cycle. stw, copy and move never hand a pinned object's
   * pages to from-space: they stay mapped in the heap through the pause and are rebuilt in
   * place (backend/handoff.h). */
  bool in_pause =
      !in_nonmoving && (strcmp(backend, "sigsegv") == 0 || strcmp(backend, "minor") == 0);
  bool concurrent = strcmp(backend, "stw") != 0 && !in_pause;
  /* What docs/api.md ("Pinning") promises, everywhere: no EFAULT, no lost or stale transfer
   * (no hand-off window), no short transfer, digests, verify, addresses. */
  unsigned long lost = wrong_in + wrong_out + lost_canonical;
  printf("pin_io: %lu transfer(s) lost or stale in a hand-off window (%lu after read(2), %lu "
         "after write(2), %lu canonical)%s; %llu compaction(s) in the pause\n",
         lost, wrong_in, wrong_out, lost_canonical,
         lost ? ": a write lost in the pause's hand-off" : "",
         (unsigned long long)stats.compaction.compactions_in_pause);
  CHECK(transfers > 0);
  CHECK_EQ_U64(efaults, 0);
  CHECK_EQ_U64(shorts, 0);
  CHECK_EQ_U64(lost, 0);
  if (concurrent) /* the compactions ran concurrently: GC threads and mutators built pages */
    CHECK(stats.compaction.pages_by_gc > 0 && stats.compaction.pages_by_mutator > 0);
  if (in_pause) /* every cycle held pinned pages */
    CHECK(stats.compaction.compactions_in_pause > 0 && stats.compaction.pages_by_mutator == 0);
  /* Thread delivery with full userfaultfd (system calls wait for a page) is where the
   * non-moving space is handed off and updated after the pause: that path must have run. */
  if (in_nonmoving && concurrent && strcmp(backend, "sigsegv") != 0 &&
      !ugc_heap_syscalls_may_fault(heap, NULL, 0))
    CHECK(stats.compaction.update_pages_by_gc + stats.compaction.update_pages_by_mutator > 0);
  if (concurrent && !getenv("UFFDGC_INJECT") && !in_nonmoving) {
    /* Held pages, built in place in the pause, are counted once like every other page:
     * as built (by the GC) and as in place (no cycle fell back to stw, which counts less). */
    const ugc_compaction_stats *c = &stats.compaction;
    CHECK_EQ_U64(c->pages_by_gc + c->pages_by_mutator + c->pages_untouched, c->pages_total);
    CHECK_EQ_U64(c->pages_in_place + c->pages_slid_whole + c->pages_recycled + c->pages_fresh,
                 c->pages_total);
  }
  ugc_thread_detach(m);
  ugc_heap_destroy(heap);
  TEST_DONE();
}
