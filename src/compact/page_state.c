/* Allocation of the per-page state array (see page_state.h for the state machine). */
#include "compact/page_state.h"

#include <string.h>
#include <sys/mman.h>

int ugc_page_states_alloc(ugc_page_states *states, size_t count) {
  size_t bytes = count * sizeof(uint32_t);
  if (bytes > states->mapped_bytes) {
    size_t rounded = (bytes + 4095u) & ~(size_t)4095u;
    void *words = mmap(NULL, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (words == MAP_FAILED)
      return -1;
    ugc_page_states_free(states);
    states->words = (_Atomic uint32_t *)words;
    states->mapped_bytes = rounded;
    states->count = count;
    return 0; /* fresh anonymous memory is zero: all UNPROCESSED */
  }
  states->count = count;
  ugc_page_states_reset(states);
  return 0;
}

void ugc_page_states_reset(ugc_page_states *states) {
  /* Plain memset on the atomic words is fine here: nobody else looks at them now, and the
   * next cycle publishes the array to other threads with its own synchronisation. */
  if (states->count)
    memset((void *)states->words, 0, states->count * sizeof(uint32_t));
}

void ugc_page_states_free(ugc_page_states *states) {
  if (states->mapped_bytes)
    munmap((void *)states->words, states->mapped_bytes);
  states->words = NULL;
  states->count = 0;
  states->mapped_bytes = 0;
}
