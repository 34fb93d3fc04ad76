/* The shared work pool of parallel marking, and its termination detection.
 *
 * Each marker works on its own stack; the pool only holds work that a busy marker gave
 * away because another one was idle (ugc_mark_pool_hungry). An idle marker first spins a
 * little (the giver checks for hungry markers every few dozen objects, so work usually
 * arrives within microseconds) and only then sleeps: on a VM, waking a sleeping thread
 * costs 15-35 us, as much as marking a thousand objects.
 *
 * Termination: marking is over when every marker that entered is idle and the pool is
 * empty. A marker that enters after that finds nothing to do (ugc_mark_pool_enter returns
 * false), so helpers may join late or never. */
#ifndef UGC_MARK_MARK_POOL_H
#define UGC_MARK_MARK_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UGC_MARK_CHUNK_ENTRIES 256u

typedef struct ugc_mark_chunk {
  struct ugc_mark_chunk *next;
  size_t count;
  uintptr_t entries[UGC_MARK_CHUNK_ENTRIES];
} ugc_mark_chunk;

typedef struct ugc_mark_pool {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  ugc_mark_chunk *full;  /* chunks of work (LIFO) */
  ugc_mark_chunk *spare; /* emptied chunks, reused by the next give */
  _Atomic size_t chunks; /* length of `full`; read without the lock as a hint */
  unsigned entered, idle, sleepers;
  _Atomic unsigned waiting; /* idle markers, spinning or asleep */
  _Atomic bool done;
  uint64_t spin_ns; /* how long an idle marker spins before it sleeps */
  /* Counters (under the lock), for tests and tuning. */
  size_t gives, takes, sleeps;
} ugc_mark_pool;

void ugc_mark_pool_init(ugc_mark_pool *pool, uint64_t spin_ns);
void ugc_mark_pool_destroy(ugc_mark_pool *pool);

/* A marker joins. False when marking has already ended: there is nothing left to do. */
bool ugc_mark_pool_enter(ugc_mark_pool *pool);

/* Moves `n` entries into the pool, in chunks, and wakes sleeping markers. Returns how many
 * it took: fewer than n only when memory for chunks ran out (the caller keeps the rest). */
size_t ugc_mark_pool_give(ugc_mark_pool *pool, const uintptr_t *entries, size_t n);

/* For an entered marker that has run out of work: copies one chunk into `out`
 * (UGC_MARK_CHUNK_ENTRIES entries) and returns its count, waiting for one if needed;
 * returns 0 once marking is over. */
size_t ugc_mark_pool_take(ugc_mark_pool *pool, uintptr_t *out);

/* Concurrent marking (mutator assists, mark.c): the next drain begins with the caller
 * entered. Only once the previous drain is over (done) or before the first. */
void ugc_mark_pool_reopen(ugc_mark_pool *pool);

/* For an entered marker that must not wait (a mutator assisting): copies one chunk into
 * `out` and returns its count, or 0 at once when the pool is empty. Never counts the
 * caller idle, so marking cannot end while it holds work. */
size_t ugc_mark_pool_try_take(ugc_mark_pool *pool, uintptr_t *out);

/* An entered marker leaves before the end, holding no work (it gave back what it had). If
 * every marker left is idle and the pool empty, marking is over. */
void ugc_mark_pool_leave(ugc_mark_pool *pool);

/* Whether a busy marker should give some of its work: a marker is idle and the pool is
 * empty. A hint (no lock): at worst work is given a little early or late. */
static inline bool ugc_mark_pool_hungry(ugc_mark_pool *pool) {
  return atomic_load_explicit(&pool->waiting, memory_order_relaxed) &&
         !atomic_load_explicit(&pool->chunks, memory_order_relaxed);
}

#endif
