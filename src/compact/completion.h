/* Completing a concurrent compaction exactly once.
 *
 * A compaction started in the pause ends when its last page is mapped; then somebody must
 * finish it (unregister, release from-space, add the statistics, report the event). That is
 * whichever comes first of
 *   - the last GC thread of the compaction's job (ugc_completion_on_idle, from the pool's
 *     on_idle callback, with the job's generation: a late callback of an older job must not
 *     complete a newer compaction), and
 *   - a thread that needs the compaction finished (compact_wait: the next collection, a
 *     heap walk, fork, destroy), which waits for the pages and completes it itself.
 *
 *   pause:   arm(generation)          unfinished = true
 *   later:   on_idle(gen) --trylock--> complete()  ]  one of them, under the lock, while
 *            wait()       --lock-----> complete()  ]  `unfinished`; complete() ends with done()
 *
 * The idle callback only tries the lock: if a waiter holds it, the waiter completes. */
#ifndef UGC_COMPACT_COMPLETION_H
#define UGC_COMPACT_COMPLETION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct ugc_completion {
  pthread_mutex_t lock;        /* one completion at a time */
  _Atomic uint64_t generation; /* the GC threads' job of the compaction in progress */
  _Atomic bool unfinished;     /* armed and not completed yet */
} ugc_completion;

/* Completes the compaction: called under the lock while it is unfinished; must end with
 * ugc_completion_done. */
typedef void (*ugc_completion_fn)(void *ctx);

void ugc_completion_init(ugc_completion *g);
void ugc_completion_destroy(ugc_completion *g);

/* In the compaction pause, once the compaction has started: `generation` is the GC threads'
 * job (ugc_compact_threads_next_generation, before the kick). */
void ugc_completion_arm(ugc_completion *g, uint64_t generation);

/* Whether a compaction is armed and not completed. */
static inline bool ugc_completion_pending(ugc_completion *g) {
  return atomic_load_explicit(&g->unfinished, memory_order_acquire);
}

/* Waits for the lock and completes the compaction if it still is unfinished. */
void ugc_completion_wait(ugc_completion *g, ugc_completion_fn complete, void *ctx);

/* From the GC threads' idle callback: completes the compaction of job `generation` unless
 * it is done, belongs to another job, or another thread holds the lock (and completes it). */
void ugc_completion_on_idle(ugc_completion *g, uint64_t generation, ugc_completion_fn complete,
                            void *ctx);

/* The end of a completion (the lock is held). */
void ugc_completion_done(ugc_completion *g);

/* fork(): no compaction may be completed across it; the child gets a fresh lock. */
void ugc_completion_fork_prepare(ugc_completion *g);
void ugc_completion_fork_parent(ugc_completion *g);
void ugc_completion_fork_child(ugc_completion *g);

#endif
