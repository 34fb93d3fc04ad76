/* UFFDGC_TRACE=1 (config.trace): the lines printed per cycle on config.trace_file.
 *
 *   uffdgc: cycle N ...        at the end of every pause (ugc_trace_cycle)
 *   uffdgc: compaction N ...   when a concurrent compaction finishes (ugc_trace_compaction)
 */
#ifndef UGC_RUNTIME_TRACE_H
#define UGC_RUNTIME_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/events.h"
#include "uffdgc.h"

typedef struct ugc_cycle_trace {
  uint64_t cycle;
  uint64_t pause_ns, mark_ns, compact_ns; /* verification excluded */
  uint64_t verify_ns;                     /* 0 when the verifier is off */
  uint64_t sweep_ns, plan_ns;             /* sweeping, the forwarding plan: parts of mark_ns */
  size_t live_bytes, freed_bytes, used_before, used_after;
  bool concurrent;                /* concurrent marking: pause_ns is the compaction pause, */
  uint64_t initial_ns, remark_ns; /* these the cycle's earlier pauses; sweep and plan ran
                                     between the remark and the compaction pause */
  const char *note;               /* appended as it is (concurrent marking's phases), or NULL */
  /* Concurrent marking: the trigger of the next cycle, the headroom it leaves below the hard
   * limit and how far past it the kept extent reaches (runtime/sizing.h). */
  size_t next_trigger, headroom, reach;
} ugc_cycle_trace;

/* The pause's line. Heap lock held. */
void ugc_trace_cycle(ugc_heap *heap, const ugc_cycle_trace *trace);

/* The concurrent phase's line; `stalls` are this compaction's only. */
void ugc_trace_compaction(ugc_heap *heap, uint64_t cycle, const ugc_compaction_report *report,
                          const ugc_histogram *stalls);

#endif
