/* SIGBUS-mode compaction faults under hostile signal conditions, each case in a child:
 *   storm    an interrupt handler (SIGUSR1, sent in a storm at a faulting mutator) reads heap
 *            pages that are not built yet: it must never run inside the SIGBUS handler,
 *            where its own fault could not be delivered (issue 9, item 1);
 *   blocked  a thread with every signal blocked attaches and faults (item 2);
 *   stack    the fault path's use of the faulting thread's stack, measured on a 64 KiB
 *            stack: no page buffer there (review note);
 *   heaps    100 heaps in SIGBUS mode at once, each compacted with faults (item 11).
 * Every cycle is checked with the graph digest and the verifier. */
#include <sys/auxv.h>
#include <sys/mman.h>

#include "signal_harness.h"
#include "runtime/heap.h"
#include "uffd/sigbus.h"

#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif

/* ---- storm ---------------------------------------------------------------------------- */

static harness storm_heap;
static atomic_int walking; /* the mutator is between safepoints */
static atomic_ulong interrupts, interrupt_reads;
static atomic_uint probe_cursor;

/* An interpreter's interrupt: looks at some heap object, wherever it is. */
static void on_interrupt(int sig) {
  (void)sig;
  atomic_fetch_add_explicit(&interrupts, 1, memory_order_relaxed);
  if (!atomic_load_explicit(&walking, memory_order_acquire))
    return;
  for (int k = 0; k < 4; k++) {
    unsigned i = atomic_fetch_add_explicit(&probe_cursor, 37, memory_order_relaxed) % PROBES;
    const node *probe = storm_heap.probes[PROBES - 1 - i];
    if (probe && probe->check == probe->id * 7)
      atomic_fetch_add_explicit(&interrupt_reads, 1, memory_order_relaxed);
  }
}

static atomic_int storm_stop;
static void *storm_sender(void *arg) {
  pthread_t target = *(pthread_t *)arg;
  while (!atomic_load(&storm_stop)) {
    pthread_kill(target, SIGUSR1);
    sched_yield();
  }
  return NULL;
}

/* The node type's trace callback also runs while the mutator builds a page in its SIGBUS
 * handler: an interrupt sent from there arrives at the worst moment, every time, instead of
 * by the luck of the storm. */
static pthread_t storm_mutator;
static atomic_uint trace_calls;
static atomic_ulong interrupts_from_handler;
static void trace_node(void *obj, size_t bytes, ugc_tracer *tracer) {
  (void)bytes;
  ugc_trace_slot(tracer, (void **)&((node *)obj)->next);
  if (atomic_load_explicit(&walking, memory_order_relaxed) &&
      pthread_equal(pthread_self(), storm_mutator) &&
      atomic_fetch_add_explicit(&trace_calls, 1, memory_order_relaxed) % 64 == 0) {
    atomic_fetch_add_explicit(&interrupts_from_handler, 1, memory_order_relaxed);
    pthread_kill(storm_mutator, SIGUSR1);
  }
}

static int case_storm(void) {
  harness *h = &storm_heap;
  storm_mutator = pthread_self();
  harness_create_traced(h, (size_t)256 << 20, NULL, trace_node);
  ugc_mutator *m = ugc_thread_attach(h->heap, NULL);
  REQUIRE(m);
  harness_build(h, m, 120000);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_interrupt;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
  pthread_t self = pthread_self(), sender;
  REQUIRE(pthread_create(&sender, NULL, storm_sender, &self) == 0);
  uint64_t bad = 0;
  for (int round = 0; round < 12 || (round < 60 && atomic_load(&interrupts_from_handler) == 0);
       round++) {
    uint64_t digest = ugc_graph_digest(m);
    ugc_collect(m, UGC_COLLECT_FULL);
    atomic_store_explicit(&walking, 1, memory_order_release);
    bad += harness_walk(h);
    atomic_store_explicit(&walking, 0, memory_order_release);
    ugc_collect(m, UGC_COLLECT_FINISH);
    bad += (ugc_graph_digest(m) != digest) + ugc_verify(m, NULL);
  }
  atomic_store(&storm_stop, 1);
  pthread_join(sender, NULL);
  uint64_t by_mutator = harness_pages_by_mutator(h->heap);
  printf("storm: %lu interrupts (%lu sent from inside the fault path), %lu heap reads in "
         "them, %llu pages built by the mutator\n",
         atomic_load(&interrupts), atomic_load(&interrupts_from_handler),
         atomic_load(&interrupt_reads), (unsigned long long)by_mutator);
  ugc_thread_detach(m);
  ugc_heap_destroy(h->heap);
  return bad == 0 && by_mutator > 0 && atomic_load(&interrupts_from_handler) > 0 &&
                 atomic_load(&interrupt_reads) > 0
             ? 0
             : 1;
}

/* ---- blocked -------------------------------------------------------------------------- */

static harness blocked_heap;

static void *blocked_thread(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  harness *h = &blocked_heap;
  ugc_mutator *m = ugc_thread_attach(h->heap, NULL);
  REQUIRE(m);
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  /* documented: attach unblocks SIGBUS and nothing else */
  uint64_t bad = sigismember(&now, SIGBUS) || !sigismember(&now, SIGUSR1);
  harness_build(h, m, 80000);
  /* until this thread built pages itself (on a loaded machine the GC thread may win) */
  for (int round = 0; round < 4 || (round < 60 && harness_pages_by_mutator(h->heap) == 0); round++)
    bad += harness_cycle(h, m);
  ugc_thread_detach(m);
  return (void *)(uintptr_t)bad;
}

static int case_blocked(void) {
  harness *h = &blocked_heap;
  FILE *trace = tmpfile();
  REQUIRE(trace);
  harness_create(h, (size_t)256 << 20, trace);
  pthread_t thread;
  void *bad;
  REQUIRE(pthread_create(&thread, NULL, blocked_thread, NULL) == 0);
  pthread_join(thread, &bad);
  uint64_t by_mutator = harness_pages_by_mutator(h->heap);
  ugc_heap_destroy(h->heap);
  char line[512];
  bool noted = false;
  rewind(trace);
  while (fgets(line, sizeof line, trace))
    noted |= strstr(line, "blocked SIGBUS") != NULL;
  printf("blocked: %llu pages built by the thread, trace note %s\n", (unsigned long long)by_mutator,
         noted ? "present" : "MISSING");
  return bad == NULL && by_mutator > 0 && noted ? 0 : 1;
}

/* ---- stack ---------------------------------------------------------------------------- */

enum { SMALL_STACK = 64 * 1024, PAINT = 0xa5 };
static harness stack_heap;
static char *stack_low;

/* Fills the unused stack below us with a pattern (no call: the loop writes below our
 * frame only, and stays clear of it). */
static __attribute__((noinline)) char *paint_stack(void) {
  uintptr_t top = (uintptr_t)__builtin_frame_address(0) - 256;
  for (volatile char *p = stack_low; (uintptr_t)p < top; p++)
    *p = (char)PAINT;
  return (char *)top;
}

/* How far below `top` the stack was used since it was painted. */
static size_t stack_used_below(const char *top) {
  const char *p = stack_low;
  while (p < top && *(const unsigned char *)p == PAINT)
    p++;
  return (size_t)(top - p);
}

static void *stack_thread(void *arg) {
  size_t *used = arg; /* [0]: a cycle without faults, [1]: with faults */
  harness *h = &stack_heap;
  ugc_mutator *m = ugc_thread_attach(h->heap, NULL);
  REQUIRE(m);
  harness_build(h, m, 60000);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_collect(m, UGC_COLLECT_FINISH);
  uint64_t bad = 0;
  for (int round = 0; round < 3 || (round < 60 && used[1] == 0); round++) {
    ugc_collect(m, UGC_COLLECT_FULL);
    ugc_collect(m, UGC_COLLECT_FINISH);
    char *top = paint_stack();
    bad += harness_walk(h); /* no fault: compaction is over */
    size_t quiet = stack_used_below(top);
    uint64_t before = harness_pages_by_mutator(h->heap);
    ugc_collect(m, UGC_COLLECT_FULL);
    top = paint_stack();
    bad += harness_walk(h); /* faults */
    size_t faulting = stack_used_below(top);
    ugc_collect(m, UGC_COLLECT_FINISH);
    if (harness_pages_by_mutator(h->heap) > before && faulting > used[1])
      used[1] = faulting;
    if (quiet > used[0])
      used[0] = quiet;
  }
  ugc_thread_detach(m);
  return (void *)(uintptr_t)bad;
}

static int case_stack(void) {
  harness *h = &stack_heap;
  harness_create(h, (size_t)256 << 20, NULL);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  char *mapping =
      mmap(NULL, SMALL_STACK + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mapping != MAP_FAILED);
  REQUIRE(mprotect(mapping, page, PROT_NONE) == 0); /* guard: an overflow is a crash */
  stack_low = mapping + page;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  REQUIRE(pthread_attr_setstack(&attr, stack_low, SMALL_STACK) == 0);
  size_t used[2] = {0, 0};
  pthread_t thread;
  void *bad;
  REQUIRE(pthread_create(&thread, &attr, stack_thread, used) == 0);
  pthread_join(thread, &bad);
  ugc_heap_destroy(h->heap);
  /* The kernel's signal frame (AT_MINSIGSTKSZ: registers and the vector state) is not
   * ours; what the handler adds must stay well under one page. */
  size_t kernel_frame = (size_t)getauxval(AT_MINSIGSTKSZ);
  if (kernel_frame == 0)
    kernel_frame = 2048;
  size_t handler = used[1] > used[0] ? used[1] - used[0] : 0;
  printf("stack: %zu bytes without faults, %zu with (kernel signal frame %zu), the handler "
         "path adds %zu beyond the kernel frame (limit 3072)\n",
         used[0], used[1], kernel_frame, handler > kernel_frame ? handler - kernel_frame : 0);
  return bad == NULL && used[1] > 0 && handler < kernel_frame + 3072 ? 0 : 1;
}

/* ---- heaps ---------------------------------------------------------------------------- */

enum { HEAPS = 100 };

static int case_heaps(void) {
  static harness heaps[HEAPS];
  static ugc_mutator *mutators[HEAPS];
  uint64_t bad = 0, by_mutator = 0;
  for (int i = 0; i < HEAPS; i++) {
    harness_create(&heaps[i], (size_t)16 << 20, NULL);
    if (!ugc_sigbus_covers((const void *)heaps[i].heap->moving.base)) {
      printf("heap %d does not take its faults by SIGBUS\n", i);
      bad++;
    }
    mutators[i] = ugc_thread_attach(heaps[i].heap, NULL);
    REQUIRE(mutators[i]);
    harness_build(&heaps[i], mutators[i], 20000);
  }
  /* all alive at once: compact each while the others keep their ranges */
  for (int i = 0; i < HEAPS; i++) {
    bad += harness_cycle(&heaps[i], mutators[i]);
    by_mutator += harness_pages_by_mutator(heaps[i].heap);
  }
  for (int i = 0; i < HEAPS; i++) {
    ugc_thread_detach(mutators[i]);
    ugc_heap_destroy(heaps[i].heap);
  }
  printf("heaps: %d copy heaps in SIGBUS mode, %llu pages built by the mutator\n", HEAPS,
         (unsigned long long)by_mutator);
  return bad == 0 && by_mutator > 0 ? 0 : 1;
}

int main(void) {
  harness_require_sigbus();
  harness_expect_success("storm", case_storm);
  harness_expect_success("blocked", case_blocked);
  harness_expect_success("stack", case_stack);
  harness_expect_success("heaps", case_heaps);
  TEST_DONE();
}
