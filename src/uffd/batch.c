/* Batched forms of the resolving ioctls: one call per span, stop at the first hard error. */
#include "uffd/internal.h"

typedef ugc_uffd_result (*span_fn)(ugc_uffd *u, const ugc_uffd_span *s, unsigned flags);

static size_t run_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                        ugc_uffd_result *res, span_fn fn) {
  ugc_uffd_result sum = {.status = UGC_UFFD_OK};
  size_t i = 0;
  for (; i < n; i++) {
    ugc_uffd_result r = fn(u, &spans[i], flags);
    sum.done += r.done;
    sum.skipped += r.skipped;
    if (r.status != UGC_UFFD_OK) {
      sum.status = r.status;
      sum.err = r.err;
    }
    if (r.status != UGC_UFFD_OK && r.status != UGC_UFFD_ALREADY_RESOLVED)
      break;
  }
  if (res)
    *res = sum;
  return i;
}

static ugc_uffd_result copy_span(ugc_uffd *u, const ugc_uffd_span *s, unsigned flags) {
  return ugc_uffd_copy(u, s->dst, s->src, s->len, flags);
}
static ugc_uffd_result zeropage_span(ugc_uffd *u, const ugc_uffd_span *s, unsigned flags) {
  return ugc_uffd_zeropage(u, s->dst, s->len, flags);
}
static ugc_uffd_result continue_span(ugc_uffd *u, const ugc_uffd_span *s, unsigned flags) {
  return ugc_uffd_continue(u, s->dst, s->len, flags);
}
static ugc_uffd_result move_span(ugc_uffd *u, const ugc_uffd_span *s, unsigned flags) {
  return ugc_uffd_move(u, s->dst, s->src, s->len, flags);
}

size_t ugc_uffd_copy_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                           ugc_uffd_result *res) {
  return run_batch(u, spans, n, flags, res, copy_span);
}
size_t ugc_uffd_zeropage_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                               ugc_uffd_result *res) {
  return run_batch(u, spans, n, flags, res, zeropage_span);
}
size_t ugc_uffd_continue_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                               ugc_uffd_result *res) {
  return run_batch(u, spans, n, flags, res, continue_span);
}
size_t ugc_uffd_move_batch(ugc_uffd *u, const ugc_uffd_span *spans, size_t n, unsigned flags,
                           ugc_uffd_result *res) {
  return run_batch(u, spans, n, flags, res, move_span);
}
