/* The signal side of attaching threads and starting compactions in SIGBUS delivery mode
 * (the mechanism itself is uffd/sigbus.c). */
#ifndef UGC_RUNTIME_THREAD_SIGNALS_H
#define UGC_RUNTIME_THREAD_SIGNALS_H

#include "uffdgc.h"

/* At attach: if this heap's faults come by SIGBUS, gives the calling thread its page buffer
 * and unblocks SIGBUS if the thread blocks it (a trace note says so). */
void ugc_heap_signals_attach(ugc_heap *heap);

/* At a compaction start in SIGBUS mode: puts the library's SIGBUS handler back in front if
 * the embedder replaced it, and prepares the collecting thread as at attach. */
void ugc_heap_signals_check(ugc_heap *heap);

#endif
