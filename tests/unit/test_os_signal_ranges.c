/* The shared fault dispatcher, parametrised by signal and si_code: a SIGSEGV table and a
 * SIGBUS table in one process, each claiming only its own signal and si_code, real access
 * faults dispatched to the range's callback (the ucontext reaches it), the rest chained to
 * the handler installed before ours, a second table for one signal refused, the size limit
 * of a table that is not a multiple of a chunk, the idle answer retried only on a readable
 * page, and keep-first. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os/signal_ranges.h"
#include "test.h"

typedef int (*test_fn)(void *ctx, void *addr);

static int call_test_fn(ugc_range_callback fn, void *ctx, void *addr, void *ucontext) {
  if (!ucontext && ctx)
    *(int *)ctx = -1; /* a real fault always has a ucontext */
  return ((test_fn)fn)(ctx, addr);
}

static ugc_signal_ranges segv_table =
    UGC_SIGNAL_RANGES_INIT(SIGSEGV, SEGV_ACCERR, 70, call_test_fn, NULL);
static ugc_signal_ranges bus_table =
    UGC_SIGNAL_RANGES_INIT(SIGBUS, BUS_ADRERR, 64, call_test_fn, NULL);
static ugc_signal_ranges second_segv_table =
    UGC_SIGNAL_RANGES_INIT(SIGSEGV, SEGV_ACCERR, 64, call_test_fn, NULL);

static size_t page;
static char *pages; /* 3 pages, PROT_NONE: [0] registered, [1] not, [2] registered */
static volatile sig_atomic_t resolved;

/* Makes the page readable and writable: the access is retried and succeeds. */
static int unprotect(void *ctx, void *addr) {
  (void)ctx;
  uintptr_t pg = (uintptr_t)addr & ~(uintptr_t)(page - 1);
  if (mprotect((void *)pg, page, PROT_READ | PROT_WRITE) != 0)
    return UGC_RANGE_NOT_MINE;
  resolved++;
  return UGC_RANGE_HANDLED;
}
static int idle(void *ctx, void *addr) {
  (void)ctx, (void)addr;
  return UGC_RANGE_IDLE;
}
static int decline(void *ctx, void *addr) {
  (void)ctx, (void)addr;
  return UGC_RANGE_NOT_MINE;
}

/* The handler before ours: unprotects whatever faulted, so the access goes on. */
static volatile sig_atomic_t previous_calls;
static void previous_handler(int sig, siginfo_t *info, void *uc) {
  (void)sig, (void)uc;
  previous_calls++;
  uintptr_t pg = (uintptr_t)info->si_addr & ~(uintptr_t)(page - 1);
  if (mprotect((void *)pg, page, PROT_READ | PROT_WRITE) != 0)
    _exit(3);
}

/* A handler installed after ours, which chains to the one it replaced (us). */
static struct sigaction replaced_by_late;
static volatile sig_atomic_t late_calls;
static void late_handler(int sig, siginfo_t *info, void *uc) {
  late_calls++;
  replaced_by_late.sa_sigaction(sig, info, uc);
}

static siginfo_t fake(int sig, int code, void *addr) {
  siginfo_t info;
  memset(&info, 0, sizeof info);
  info.si_signo = sig;
  info.si_code = code;
  info.si_addr = addr;
  return info;
}

/* A write the compiler keeps in program order with the checks around it. */
static void touch(size_t offset, char value) {
  *(volatile char *)(pages + offset) = value;
}

static void protect_all(void) {
  CHECK(mprotect(pages, 3 * page, PROT_NONE) == 0);
}

int main(void) {
  page = (size_t)sysconf(_SC_PAGESIZE);
  pages = mmap(NULL, 3 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(pages != MAP_FAILED);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = previous_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGSEGV, &sa, NULL) == 0);

  int context_seen = 0;
  int id0 =
      ugc_signal_ranges_add(&segv_table, pages, page, (ugc_range_callback)unprotect, &context_seen);
  int id2 = ugc_signal_ranges_add(&segv_table, pages + 2 * page, page,
                                  (ugc_range_callback)unprotect, &context_seen);
  CHECK(id0 >= 0 && id2 >= 0 && id0 != id2);
  CHECK(ugc_signal_ranges_covers(&segv_table, pages + 10));
  CHECK(!ugc_signal_ranges_covers(&segv_table, pages + page));
  CHECK(!ugc_signal_ranges_covers(&bus_table, pages + 10));

  /* Real faults: in a range to the callback, outside to the previous handler. */
  touch(0, 1);
  touch(page, 2);
  touch(2 * page, 3);
  CHECK(resolved == 2 && previous_calls == 1 && context_seen == 0);
  unsigned long dispatched, chained;
  ugc_signal_ranges_get_stats(&segv_table, &dispatched, &chained);
  CHECK(dispatched == 2 && chained == 1);

  /* One table a signal. */
  CHECK(ugc_signal_ranges_install(&second_segv_table) == -EBUSY);
  CHECK(ugc_signal_ranges_add(&second_segv_table, pages, page, (ugc_range_callback)decline, NULL) ==
        -EBUSY);

  /* Each table claims its own signal and si_code only. */
  int bus_id = ugc_signal_ranges_add(&bus_table, pages, page, (ugc_range_callback)decline, NULL);
  CHECK(bus_id >= 0);
  siginfo_t info = fake(SIGSEGV, SEGV_MAPERR, pages);
  CHECK(!ugc_signal_ranges_claim(&segv_table, SIGSEGV, &info, NULL));
  info = fake(SIGBUS, BUS_ADRERR, pages);
  CHECK(!ugc_signal_ranges_claim(&segv_table, SIGBUS, &info, NULL));
  CHECK(!ugc_signal_ranges_claim(&bus_table, SIGBUS, &info, NULL)); /* declined */
  info = fake(SIGBUS, BUS_MCEERR_AR, pages);
  CHECK(!ugc_signal_ranges_claim(&bus_table, SIGBUS, &info, NULL));
  ugc_signal_ranges_remove(&bus_table, bus_id);
  int undeclined = 0;
  bus_id =
      ugc_signal_ranges_add(&bus_table, pages, page, (ugc_range_callback)unprotect, &undeclined);
  info = fake(SIGBUS, BUS_ADRERR, pages);
  CHECK(ugc_signal_ranges_claim(&bus_table, SIGBUS, &info, NULL));
  CHECK(undeclined == -1); /* claim passed the NULL ucontext on */
  ugc_signal_ranges_remove(&bus_table, bus_id);

  /* Idle: retried only if the page can be read now. */
  ugc_signal_ranges_remove(&segv_table, id0);
  CHECK(!ugc_signal_ranges_covers(&segv_table, pages));
  id0 = ugc_signal_ranges_add(&segv_table, pages, page, (ugc_range_callback)idle, NULL);
  info = fake(SIGSEGV, SEGV_ACCERR, pages);
  CHECK(ugc_signal_ranges_claim(&segv_table, SIGSEGV, &info, NULL)); /* readable (page 0) */
  protect_all();
  CHECK(!ugc_signal_ranges_claim(&segv_table, SIGSEGV, &info, NULL));
  ugc_signal_ranges_remove(&segv_table, id0);

  /* The size limit: 70 ranges (two chunks, the second partly used), then -ENOSPC. */
  ugc_signal_ranges_remove(&segv_table, id2);
  int ids[70];
  for (int i = 0; i < 70; i++) {
    ids[i] =
        ugc_signal_ranges_add(&segv_table, pages + page, page, (ugc_range_callback)decline, NULL);
    CHECK(ids[i] >= 0 && ids[i] < 70);
  }
  CHECK(ugc_signal_ranges_add(&segv_table, pages, page, (ugc_range_callback)decline, NULL) ==
        -ENOSPC);
  ugc_signal_ranges_remove(&segv_table, ids[66]);
  CHECK(ugc_signal_ranges_add(&segv_table, pages, page, (ugc_range_callback)unprotect, NULL) ==
        ids[66]);
  ugc_signal_ranges_remove(&segv_table, ids[66]);
  for (int i = 0; i < 70; i++)
    ugc_signal_ranges_remove(&segv_table, ids[i]);
  CHECK(ugc_signal_ranges_add(&segv_table, pages, 0, (ugc_range_callback)decline, NULL) == -EINVAL);

  /* Keep-first: a handler installed after ours is put behind it, and a fault that is not
   * ours goes to it, then (it chains back to us) to the handler before ours, once. */
  CHECK(ugc_signal_ranges_keep_first(&segv_table) == 0);
  sa.sa_sigaction = late_handler;
  CHECK(sigaction(SIGSEGV, &sa, &replaced_by_late) == 0);
  CHECK(ugc_signal_ranges_keep_first(&segv_table) == 1);
  CHECK(ugc_signal_ranges_keep_first(&segv_table) == 0);
  id0 = ugc_signal_ranges_add(&segv_table, pages, page, (ugc_range_callback)unprotect, NULL);
  protect_all();
  resolved = 0;
  previous_calls = 0;
  touch(0, 4);
  CHECK(resolved == 1 && late_calls == 0 && previous_calls == 0);
  touch(page, 5);
  CHECK(late_calls == 1 && previous_calls == 1);
  ugc_signal_ranges_remove(&segv_table, id0);
  TEST_DONE();
}
