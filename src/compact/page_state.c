/* Allocation of the per-page state array (see page_state.h for the state machine). */
#include "compact/page_state.h"

#include <string.h>
#include <sys/mman.h>

static void unmap_retired(ugc_page_states *states) {
  if (states->retired_bytes)
    munmap(states->retired, states->retired_bytes);
  states->retired = NULL;
  states->retired_bytes = 0;
}

int ugc_page_states_alloc(ugc_page_states *states, size_t count) {
  size_t bytes = count * sizeof(uint32_t);
  if (bytes > states->mapped_bytes) {
    size_t wanted = bytes > 2 * states->mapped_bytes ? bytes : 2 * states->mapped_bytes;
    size_t rounded = (wanted + 4095u) & ~(size_t)4095u;
    void *words = mmap(NULL, rounded, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (words == MAP_FAILED)
      return -1;
    unmap_retired(states); /* an older one still waiting: rare (two growths, no reset) */
    states->retired = (void *)states->words;
    states->retired_bytes = states->mapped_bytes;
    states->words = (_Atomic uint32_t *)words;
    states->mapped_bytes = rounded;
    states->count = count;
    states->clean_count = 0; /* the caller is about to use them */
    states->used_count = count;
    return 0; /* fresh anonymous memory is zero: all UNPROCESSED */
  }
  /* Plain memset on the atomic words is fine here and in reset: nobody else looks at them
   * now, and the next cycle publishes the array to other threads with its own
   * synchronisation. Words past clean_count may hold an older, longer cycle's states. */
  if (count > states->clean_count)
    memset((void *)(states->words + states->clean_count), 0,
           (count - states->clean_count) * sizeof(uint32_t));
  states->count = count;
  states->clean_count = 0;
  if (count > states->used_count)
    states->used_count = count;
  return 0;
}

void ugc_page_states_reset(ugc_page_states *states) {
  if (states->count)
    memset((void *)states->words, 0, states->count * sizeof(uint32_t));
  states->clean_count = 0; /* in use again from now on */
  unmap_retired(states);
}

void ugc_page_states_reset_for_next(ugc_page_states *states) {
  /* Every word any use since the mapping was made could have written: then all of them are
   * UNPROCESSED, and the next alloc clears nothing whatever its count. */
  if (states->used_count)
    memset((void *)states->words, 0, states->used_count * sizeof(uint32_t));
  states->used_count = 0;
  states->clean_count = states->mapped_bytes / sizeof(uint32_t);
  unmap_retired(states);
}

void ugc_page_states_free(ugc_page_states *states) {
  unmap_retired(states);
  if (states->mapped_bytes)
    munmap((void *)states->words, states->mapped_bytes);
  states->words = NULL;
  states->count = 0;
  states->mapped_bytes = 0;
  states->clean_count = 0;
  states->used_count = 0;
}
