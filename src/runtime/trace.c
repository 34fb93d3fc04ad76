/* The trace lines (see trace.h). Each line is formatted first and written with one call so
 * that lines from a GC thread and a mutator do not interleave. */
#include "runtime/trace.h"

#include <stdio.h>

#include "backend/backend.h"
#include "runtime/heap.h"
#include "runtime/sizes.h"

static void write_line(ugc_heap *heap, const char *line) {
  FILE *out = heap->config.trace_file ? heap->config.trace_file : stderr;
  fputs(line, out);
  fflush(out);
}

static double ms(uint64_t ns) {
  return (double)ns / 1e6;
}

void ugc_trace_cycle(ugc_heap *heap, const ugc_cycle_trace *t) {
  char live[24], freed[24], before[24], after[24], verify[64] = "";
  if (t->verify_ns)
    snprintf(verify, sizeof verify, " verify=%.2fms (not in the pause)", ms(t->verify_ns));
  char line[1024], pauses[96], sizing[128] = "";
  uint64_t longest = t->pause_ns;
  if (t->concurrent) { /* three pauses; sweep and plan ran between the last two */
    longest = t->initial_ns > longest ? t->initial_ns : longest;
    longest = t->remark_ns > longest ? t->remark_ns : longest;
    snprintf(pauses, sizeof pauses, "initial=%.2fms remark=%.2fms compaction=%.2fms",
             ms(t->initial_ns), ms(t->remark_ns), ms(t->compact_ns));
    char trigger[24], headroom[24], reach[24];
    snprintf(sizing, sizeof sizing, " sizing(next-trigger=%s headroom=%s reach=%s)",
             ugc_size_format(t->next_trigger, trigger, sizeof trigger),
             ugc_size_format(t->headroom, headroom, sizeof headroom),
             ugc_size_format(t->reach, reach, sizeof reach));
  } else {
    snprintf(pauses, sizeof pauses, "mark+plan=%.2fms compact=%.2fms", ms(t->mark_ns),
             ms(t->compact_ns));
  }
  snprintf(line, sizeof line,
           "uffdgc: cycle %llu backend=%s pause=%.2fms (%s) live=%s freed=%s heap=%s->%s "
           "sweep=%.2fms plan=%.2fms%s%s%s\n",
           (unsigned long long)t->cycle, heap->backend->name, ms(longest), pauses,
           ugc_size_format(t->live_bytes, live, sizeof live),
           ugc_size_format(t->freed_bytes, freed, sizeof freed),
           ugc_size_format(t->used_before, before, sizeof before),
           ugc_size_format(t->used_after, after, sizeof after), ms(t->sweep_ns), ms(t->plan_ns),
           t->note ? t->note : "", sizing, verify);
  write_line(heap, line);
}

void ugc_trace_compaction(ugc_heap *heap, uint64_t cycle, const ugc_compaction_report *r,
                          const ugc_histogram *stalls) {
  char line[400];
  snprintf(line, sizeof line,
           "uffdgc: compaction %llu concurrent=%.2fms pages: gc=%llu mutators=%llu helped=%llu "
           "stalls=%llu (p50=%.1fus max=%.1fus)\n",
           (unsigned long long)cycle, ms(r->concurrent_ns), (unsigned long long)r->pages_by_gc,
           (unsigned long long)r->pages_by_mutator, (unsigned long long)r->pages_helped,
           (unsigned long long)stalls->count, ugc_histogram_percentile(stalls, 0.5) / 1e3,
           stalls->max_ns / 1e3);
  write_line(heap, line);
}
