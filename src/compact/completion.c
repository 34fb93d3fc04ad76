/* Completing a concurrent compaction exactly once (completion.h draws the protocol). */
#include "compact/completion.h"

void ugc_completion_init(ugc_completion *g) {
  pthread_mutex_init(&g->lock, NULL);
  atomic_store(&g->generation, 0);
  atomic_store(&g->unfinished, false);
}

void ugc_completion_destroy(ugc_completion *g) {
  pthread_mutex_destroy(&g->lock);
}

void ugc_completion_arm(ugc_completion *g, uint64_t generation) {
  atomic_store(&g->generation, generation);
  atomic_store_explicit(&g->unfinished, true, memory_order_release);
}

void ugc_completion_wait(ugc_completion *g, ugc_completion_fn complete, void *ctx) {
  pthread_mutex_lock(&g->lock);
  if (ugc_completion_pending(g))
    complete(ctx);
  pthread_mutex_unlock(&g->lock);
}

void ugc_completion_on_idle(ugc_completion *g, uint64_t generation, ugc_completion_fn complete,
                            void *ctx) {
  if (!ugc_completion_pending(g) || pthread_mutex_trylock(&g->lock) != 0)
    return;
  if (ugc_completion_pending(g) && atomic_load(&g->generation) == generation)
    complete(ctx);
  pthread_mutex_unlock(&g->lock);
}

void ugc_completion_done(ugc_completion *g) {
  atomic_store_explicit(&g->unfinished, false, memory_order_release);
}

void ugc_completion_fork_prepare(ugc_completion *g) {
  pthread_mutex_lock(&g->lock);
}

void ugc_completion_fork_parent(ugc_completion *g) {
  pthread_mutex_unlock(&g->lock);
}

void ugc_completion_fork_child(ugc_completion *g) {
  pthread_mutex_init(&g->lock, NULL);
}
