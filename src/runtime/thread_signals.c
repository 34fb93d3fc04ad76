/* Keeping SIGBUS delivery working for the embedder's threads (see thread_signals.h). */
#include "runtime/thread_signals.h"

#include <string.h>

#include "backend/segv_dispatch.h"
#include "os/signals.h"
#include "runtime/heap.h"
#include "uffd/sigbus.h"

static void trace_note(ugc_heap *heap, const char *what) {
  if (heap->config.trace)
    fprintf(heap->config.trace_file ? heap->config.trace_file : stderr, "uffdgc: %s\n", what);
}

static void prepare_thread(ugc_heap *heap) {
  int done = ugc_sigbus_prepare_thread();
  if (done < 0)
    trace_note(heap, "no memory for this thread's fault page buffer: it shares one");
  else if (done & UGC_SIGBUS_THREAD_UNBLOCKED)
    trace_note(heap, "this thread blocked SIGBUS, which delivers the heap's compaction faults: "
                     "unblocked it (a fault with SIGBUS blocked kills the process)");
}

/* The sigsegv backend: a fault with SIGSEGV blocked kills the process. */
static void prepare_thread_segv(ugc_heap *heap) {
  if (ugc_signal_unblock_here(SIGSEGV))
    trace_note(heap, "this thread blocked SIGSEGV, which delivers the heap's compaction faults: "
                     "unblocked it (a fault with SIGSEGV blocked kills the process)");
}

void ugc_heap_signals_attach(ugc_heap *heap) {
  if (ugc_sigbus_covers((const void *)heap->moving.base))
    prepare_thread(heap);
  if (ugc_segv_covers((const void *)heap->moving.base))
    prepare_thread_segv(heap);
}

void ugc_heap_signals_check(ugc_heap *heap) {
  if (ugc_segv_covers((const void *)heap->moving.base)) {
    if (ugc_segv_keep_first() > 0)
      trace_note(heap, "another SIGSEGV handler was installed after ours: ours is first again, "
                       "and passes it the signals that are not heap faults");
    prepare_thread_segv(heap);
    return;
  }
  if (ugc_sigbus_keep_first() > 0)
    trace_note(heap, "another SIGBUS handler was installed after ours: ours is first again, "
                     "and passes it the signals that are not heap faults");
  prepare_thread(heap);
}

bool ugc_handle_signal(int sig, siginfo_t *info, void *ucontext) {
  return ugc_sigbus_claim(sig, info, ucontext) || ugc_segv_claim(sig, info, ucontext);
}
