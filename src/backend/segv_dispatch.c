/* The SIGSEGV dispatcher (see segv_dispatch.h): a table of os/signal_ranges.c that claims
 * SEGV_ACCERR, the code of an access to a PROT_NONE page; SEGV_MAPERR (nothing mapped), the
 * protection-key and other codes, and sent signals are somebody else's, whatever the
 * address. A callback that answers UGC_SEGV_IDLE gets the access retried only if the page
 * can be read now, never a retry loop. */
#include "backend/segv_dispatch.h"

#include "os/signal_ranges.h"

static int call_segv_fn(ugc_range_callback fn, void *ctx, void *addr, void *ucontext) {
  (void)ucontext;
  return ((ugc_segv_fn)fn)(ctx, addr);
}

static ugc_signal_ranges table =
    UGC_SIGNAL_RANGES_INIT(SIGSEGV, SEGV_ACCERR, UGC_SEGV_MAX_RANGES, call_segv_fn, NULL);

bool ugc_segv_claim(int sig, siginfo_t *info, void *ucontext) {
  return ugc_signal_ranges_claim(&table, sig, info, ucontext);
}

int ugc_segv_keep_first(void) {
  return ugc_signal_ranges_keep_first(&table);
}

int ugc_segv_add_range(void *start, size_t len, ugc_segv_fn fn, void *ctx) {
  return ugc_signal_ranges_add(&table, start, len, (ugc_range_callback)fn, ctx);
}

void ugc_segv_remove_range(int id) {
  ugc_signal_ranges_remove(&table, id);
}

bool ugc_segv_covers(const void *addr) {
  return ugc_signal_ranges_covers(&table, addr);
}
