#include "mark/mark_pool.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "os/time.h"

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

void ugc_mark_pool_init(ugc_mark_pool *pool, uint64_t spin_ns) {
  memset(pool, 0, sizeof *pool);
  pthread_mutex_init(&pool->lock, NULL);
  pthread_cond_init(&pool->cond, NULL);
  pool->spin_ns = spin_ns;
}

static void free_list(ugc_mark_chunk *chunk) {
  while (chunk) {
    ugc_mark_chunk *next = chunk->next;
    free(chunk);
    chunk = next;
  }
}

void ugc_mark_pool_destroy(ugc_mark_pool *pool) {
  free_list(pool->full);
  free_list(pool->spare);
  pthread_mutex_destroy(&pool->lock);
  pthread_cond_destroy(&pool->cond);
}

bool ugc_mark_pool_enter(ugc_mark_pool *pool) {
  pthread_mutex_lock(&pool->lock);
  bool joined = !atomic_load_explicit(&pool->done, memory_order_relaxed);
  if (joined)
    pool->entered++;
  pthread_mutex_unlock(&pool->lock);
  return joined;
}

void ugc_mark_pool_reopen(ugc_mark_pool *pool) {
  pthread_mutex_lock(&pool->lock);
  atomic_store_explicit(&pool->done, false, memory_order_relaxed);
  pool->entered = 1;
  pool->idle = 0;
  pthread_mutex_unlock(&pool->lock);
}

void ugc_mark_pool_leave(ugc_mark_pool *pool) {
  pthread_mutex_lock(&pool->lock);
  pool->entered--;
  if (pool->idle == pool->entered && !pool->full &&
      !atomic_load_explicit(&pool->done, memory_order_relaxed)) {
    atomic_store_explicit(&pool->done, true, memory_order_relaxed);
    pthread_cond_broadcast(&pool->cond);
  }
  pthread_mutex_unlock(&pool->lock);
}

/* The first chunk into `out`; lock held, pool->full not NULL. */
static size_t take_chunk_locked(ugc_mark_pool *pool, uintptr_t *out) {
  ugc_mark_chunk *chunk = pool->full;
  pool->full = chunk->next;
  atomic_fetch_sub_explicit(&pool->chunks, 1, memory_order_relaxed);
  size_t count = chunk->count;
  memcpy(out, chunk->entries, count * sizeof *out);
  chunk->next = pool->spare;
  pool->spare = chunk;
  pool->takes++;
  return count;
}

size_t ugc_mark_pool_try_take(ugc_mark_pool *pool, uintptr_t *out) {
  if (!atomic_load_explicit(&pool->chunks, memory_order_relaxed))
    return 0;
  pthread_mutex_lock(&pool->lock);
  size_t count = pool->full ? take_chunk_locked(pool, out) : 0;
  pthread_mutex_unlock(&pool->lock);
  return count;
}

size_t ugc_mark_pool_give(ugc_mark_pool *pool, const uintptr_t *entries, size_t n) {
  size_t given = 0, chunks = 0;
  pthread_mutex_lock(&pool->lock);
  while (given < n) {
    ugc_mark_chunk *chunk = pool->spare;
    if (chunk)
      pool->spare = chunk->next;
    else if (!(chunk = malloc(sizeof *chunk)))
      break;
    size_t count = n - given < UGC_MARK_CHUNK_ENTRIES ? n - given : UGC_MARK_CHUNK_ENTRIES;
    memcpy(chunk->entries, entries + given, count * sizeof *entries);
    chunk->count = count;
    chunk->next = pool->full;
    pool->full = chunk;
    given += count;
    chunks++;
  }
  if (chunks) {
    atomic_fetch_add_explicit(&pool->chunks, chunks, memory_order_relaxed);
    pool->gives++;
    /* One sleeper per chunk: spinners find the chunks on their own. */
    for (size_t i = 0; i < chunks && i < pool->sleepers; i++)
      pthread_cond_signal(&pool->cond);
  }
  pthread_mutex_unlock(&pool->lock);
  return given;
}

/* Spins until work or the end shows up, or spin_ns passes. Lock not held. */
static void spin_for_work(ugc_mark_pool *pool) {
  uint64_t deadline = 0;
  for (unsigned i = 1;; i++) {
    if (atomic_load_explicit(&pool->chunks, memory_order_relaxed) ||
        atomic_load_explicit(&pool->done, memory_order_relaxed))
      return;
    cpu_relax();
    if ((i & 63) == 0) { /* the clock read is not free: look at it now and then */
      /* If the marker that would give us work shares our CPU, spinning only delays it. */
      sched_yield();
      uint64_t now = ugc_now_ns();
      if (!deadline)
        deadline = now + pool->spin_ns;
      else if (now >= deadline)
        return;
    }
  }
}

size_t ugc_mark_pool_take(ugc_mark_pool *pool, uintptr_t *out) {
  pthread_mutex_lock(&pool->lock);
  for (;;) {
    if (pool->full) {
      size_t count = take_chunk_locked(pool, out);
      pthread_mutex_unlock(&pool->lock);
      return count;
    }
    if (atomic_load_explicit(&pool->done, memory_order_relaxed))
      break;
    if (++pool->idle == pool->entered) {
      /* Everyone is idle and nothing is left to give: nobody can make new work. */
      atomic_store_explicit(&pool->done, true, memory_order_relaxed);
      pthread_cond_broadcast(&pool->cond);
      break;
    }
    atomic_fetch_add_explicit(&pool->waiting, 1, memory_order_relaxed);
    if (pool->spin_ns) {
      pthread_mutex_unlock(&pool->lock);
      spin_for_work(pool);
      pthread_mutex_lock(&pool->lock);
    }
    while (!pool->full && !atomic_load_explicit(&pool->done, memory_order_relaxed)) {
      pool->sleepers++;
      pool->sleeps++;
      pthread_cond_wait(&pool->cond, &pool->lock);
      pool->sleepers--;
    }
    atomic_fetch_sub_explicit(&pool->waiting, 1, memory_order_relaxed);
    pool->idle--; /* busy again, or about to see the end */
  }
  pthread_mutex_unlock(&pool->lock);
  return 0;
}
