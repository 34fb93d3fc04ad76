/* Which SIGBUS is the library's, and who else gets signals, each case in a child:
 *   mceerr     a memory-error SIGBUS (BUS_MCEERR_AR) for a heap page during compaction is
 *              passed on, never resolved or retried: the process dies of it (item 3);
 *   idle       a real BUS_ADRERR in the heap range while no compaction runs (a truncated
 *              file mapped there) is passed on, not retried forever (item 3);
 *   replaced   the embedder installs its own SIGBUS handler after heap creation: the next
 *              compaction start puts ours back in front and ours passes it the rest (item 4);
 *   forwarding an embedder handler in front of ours calls ugc_handle_signal (item 4);
 *   chain-loop an embedder handler that passes unknown signals to the one it replaced (ours)
 *              makes no loop: the signal ends at the default action (item 4);
 *   gc-threads process-directed signals never run a handler on the library's threads
 *              (review note). */
#include <dirent.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "runtime/heap.h"
#include "signal_harness.h"

static harness heap;
static size_t page_bytes;

/* A page that raises SIGBUS (BUS_ADRERR) until the file behind it is grown; at `where` if
 * not NULL. */
static char *truncated_page(void *where, int *fd_out) {
  int fd = memfd_create("signal-chain", MFD_CLOEXEC);
  REQUIRE(fd >= 0);
  char *p =
      mmap(where, page_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | (where ? MAP_FIXED : 0), fd, 0);
  REQUIRE(p != MAP_FAILED);
  *fd_out = fd;
  return p;
}

static ugc_mutator *setup(FILE *trace) {
  harness_create(&heap, (size_t)256 << 20, trace);
  ugc_mutator *m = ugc_thread_attach(heap.heap, NULL);
  REQUIRE(m);
  harness_build(&heap, m, 100000);
  return m;
}

static bool trace_mentions(FILE *trace, const char *text) {
  char line[512];
  bool found = false;
  fflush(trace);
  rewind(trace);
  while (fgets(line, sizeof line, trace))
    found |= strstr(line, text) != NULL;
  return found;
}

/* ---- mceerr, idle ---------------------------------------------------------------------- */

static int case_mceerr(void) {
  ugc_mutator *m = setup(NULL);
  ugc_collect(m, UGC_COLLECT_FULL); /* compaction in flight: the far pages are not built */
  siginfo_t info;
  memset(&info, 0, sizeof info);
  info.si_signo = SIGBUS;
  info.si_code = BUS_MCEERR_AR;
  info.si_addr = heap.probes[PROBES - 1];
  syscall(SYS_rt_tgsigqueueinfo, getpid(), (pid_t)syscall(SYS_gettid), SIGBUS, &info);
  return 0; /* survived: wrong */
}

static int case_idle(void) {
  ugc_mutator *m = setup(NULL);
  ugc_collect(m, UGC_COLLECT_FULL);
  ugc_collect(m, UGC_COLLECT_FINISH);
  /* the unused top of the heap's reservation: inside the range, never compacted into */
  ugc_moving_space *space = &heap.heap->moving;
  int fd;
  volatile char *p =
      truncated_page((void *)(space->base + space->reserved_bytes - page_bytes), &fd);
  (void)p[0];
  return 0; /* survived: wrong */
}

/* ---- replaced, forwarding, chain-loop -------------------------------------------------- */

static char *own_page; /* the embedder's: its handler grows the file behind it */
static int own_fd;
static volatile sig_atomic_t embedder_calls, embedder_claims;

static bool on_own_page(const siginfo_t *info) {
  return (uintptr_t)info->si_addr - (uintptr_t)own_page < page_bytes;
}

/* An embedder handler that only knows its own page and crashes on anything else. */
static void naive_handler(int sig, siginfo_t *info, void *uc) {
  (void)uc;
  embedder_calls++;
  if (on_own_page(info)) {
    if (ftruncate(own_fd, (off_t)page_bytes) != 0)
      _exit(5);
    return;
  }
  signal(sig, SIG_DFL); /* not mine: the retried access kills the process */
}

static void install_embedder(void (*handler)(int, siginfo_t *, void *), struct sigaction *old) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGBUS, &sa, old) == 0);
}

static int case_replaced(void) {
  FILE *trace = tmpfile();
  REQUIRE(trace);
  ugc_mutator *m = setup(trace);
  own_page = truncated_page(NULL, &own_fd);
  install_embedder(naive_handler, NULL);
  uint64_t bad = 0;
  for (int round = 0; round < 3 || (round < 60 && harness_pages_by_mutator(heap.heap) == 0);
       round++)
    bad += harness_cycle(&heap, m); /* faults: ours must be first again */
  int heap_fault_calls = embedder_calls;
  bad += ((volatile char *)own_page)[1] != 0; /* not a heap fault: the embedder's */
  bool noted = trace_mentions(trace, "installed after ours");
  printf("replaced: %llu pages built by the mutator, embedder handler called %d time(s) for "
         "heap faults and %d for its own page, trace note %s\n",
         (unsigned long long)harness_pages_by_mutator(heap.heap), heap_fault_calls,
         embedder_calls - heap_fault_calls, noted ? "present" : "MISSING");
  return bad == 0 && heap_fault_calls == 0 && embedder_calls == 1 && noted ? 0 : 1;
}

/* An embedder handler that stays in front of ours and asks the library first. */
static void forwarding_handler(int sig, siginfo_t *info, void *uc) {
  if (ugc_handle_signal(sig, info, uc)) {
    embedder_claims++;
    return;
  }
  naive_handler(sig, info, uc);
}

static int case_forwarding(void) {
  ugc_mutator *m = setup(NULL);
  own_page = truncated_page(NULL, &own_fd);
  uint64_t bad = 0;
  for (int round = 0; round < 3 || (round < 60 && embedder_claims == 0); round++) {
    uint64_t digest = ugc_graph_digest(m);
    ugc_collect(m, UGC_COLLECT_FULL);
    /* in front of ours while this compaction runs (the next start puts ours first) */
    install_embedder(forwarding_handler, NULL);
    bad += harness_walk(&heap);
    ugc_collect(m, UGC_COLLECT_FINISH);
    bad += (ugc_graph_digest(m) != digest) + ugc_verify(m, NULL);
  }
  int claims = embedder_claims;
  bad += ((volatile char *)own_page)[1] != 0;
  printf("forwarding: ugc_handle_signal resolved %d heap fault(s); the embedder's own page "
         "reached it %d time(s)\n",
         claims, (int)embedder_calls);
  return bad == 0 && claims > 0 && embedder_calls == 1 ? 0 : 1;
}

/* A well-behaved embedder handler: its own page, else whatever it replaced (ours). */
static struct sigaction replaced_by_embedder;
static void chaining_handler(int sig, siginfo_t *info, void *uc) {
  embedder_calls++;
  if (on_own_page(info)) {
    if (ftruncate(own_fd, (off_t)page_bytes) != 0)
      _exit(5);
    return;
  }
  if (replaced_by_embedder.sa_flags & SA_SIGINFO)
    replaced_by_embedder.sa_sigaction(sig, info, uc);
  else
    _exit(6); /* we installed after the heap: the one replaced is the library's */
}

static int case_chain_loop(void) {
  ugc_mutator *m = setup(NULL);
  own_page = truncated_page(NULL, &own_fd);
  install_embedder(chaining_handler, &replaced_by_embedder);
  uint64_t bad = 0;
  for (int round = 0; round < 2; round++)
    bad += harness_cycle(&heap, m);
  bad += ((volatile char *)own_page)[1] != 0;
  if (bad || embedder_calls != 1)
    return 7;
  int fd;
  volatile char *nobodys = truncated_page(NULL, &fd);
  (void)nobodys[0]; /* ours -> embedder -> ours again -> before ours (SIG_DFL): death */
  return 0;
}

/* ---- gc-threads ------------------------------------------------------------------------ */

enum { MAX_RECORDED = 4096 };
static atomic_int recorded;
static pid_t handler_tids[MAX_RECORDED];

static void record_tid(int sig) {
  (void)sig;
  int i = atomic_fetch_add(&recorded, 1);
  if (i < MAX_RECORDED)
    handler_tids[i] = (pid_t)syscall(SYS_gettid);
}

/* Thread ids of the library's threads (named uffdgc-*). */
static int library_threads(pid_t *tids, int max) {
  int count = 0;
  DIR *tasks = opendir("/proc/self/task");
  REQUIRE(tasks);
  for (struct dirent *entry; (entry = readdir(tasks)) && count < max;) {
    char path[300], name[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", entry->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    if (fgets(name, sizeof name, f) && strncmp(name, "uffdgc-", 7) == 0)
      tids[count++] = (pid_t)atoi(entry->d_name);
    fclose(f);
  }
  closedir(tasks);
  return count;
}

static int case_gc_threads(void) {
  signal(SIGUSR2, record_tid);
  /* The library's threads start during these cycles, from a thread that takes SIGUSR2. */
  ugc_mutator *m = setup(NULL);
  uint64_t bad = harness_cycle(&heap, m) + harness_cycle(&heap, m);
  pid_t gc_tids[64];
  int gc_count = library_threads(gc_tids, 64);
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, NULL); /* now only the library's threads could take it */
  int sent = 0;
  for (int round = 0; round < 6; round++) {
    for (int k = 0; k < 200; k++, sent++)
      kill(getpid(), SIGUSR2);
    bad += harness_cycle(&heap, m); /* the library's threads are busy meanwhile */
  }
  sigset_t pending;
  sigpending(&pending);
  bool still_pending = sigismember(&pending, SIGUSR2) == 1;
  int on_gc = 0, taken = atomic_load(&recorded);
  for (int i = 0; i < taken && i < MAX_RECORDED; i++)
    for (int j = 0; j < gc_count; j++)
      on_gc += handler_tids[i] == gc_tids[j];
  printf("gc-threads: %d library thread(s), %d signals sent, %d handled on them, SIGUSR2 %s\n",
         gc_count, sent, on_gc, still_pending ? "still pending (nobody took it)" : "not pending");
  return bad == 0 && gc_count >= 2 && on_gc == 0 && still_pending ? 0 : 1;
}

int main(void) {
  harness_require_sigbus();
  page_bytes = (size_t)sysconf(_SC_PAGESIZE);
  page_bytes = (size_t)sysconf(_SC_PAGESIZE);
  harness_expect_death("mceerr", case_mceerr, SIGBUS);
  harness_expect_death("idle", case_idle, SIGBUS);
  harness_expect_success("replaced", case_replaced);
  harness_expect_success("forwarding", case_forwarding);
  harness_expect_death("chain-loop", case_chain_loop, SIGBUS);
  harness_expect_success("gc-threads", case_gc_threads);
  TEST_DONE();
}
