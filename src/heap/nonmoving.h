/* The non-moving space: pinned objects below the large-object threshold, in cells of
 * size-segregated classes. Spans (runs of 64 KiB units) are cut from one reservation, each
 * holding cells of one class; a unit map finds the span of any address. Cells have their
 * own allocation and mark bits; sweeping returns dead cells to the class free list. */
#ifndef UGC_HEAP_NONMOVING_H
#define UGC_HEAP_NONMOVING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UGC_NM_UNIT_SHIFT 16u
#define UGC_NM_UNIT ((size_t)1 << UGC_NM_UNIT_SHIFT)

typedef struct ugc_nm_span {
  uintptr_t start;
  size_t bytes;
  uint32_t cell_bytes;
  uint32_t cell_count;
  uint32_t class_index;
  uint64_t *alloc_bits;        /* cell_count bits */
  _Atomic uint64_t *mark_bits; /* cell_count bits; set by parallel markers */
} ugc_nm_span;

typedef struct ugc_nonmoving_space {
  uintptr_t base, end;      /* reserved range (mapped RW on init) */
  uintptr_t top;            /* spans are cut from [base, top) */
  ugc_nm_span **unit_spans; /* per 64 KiB unit: its span or NULL */
  ugc_nm_span **spans;      /* all spans, in address order */
  size_t span_count, span_capacity;
  uint32_t *class_bytes; /* cell size per class */
  uintptr_t *free_lists; /* per class: first free cell (next link in its first word) */
  size_t class_count;
  size_t used_bytes; /* bytes of allocated cells */
} ugc_nonmoving_space;

/* Uses [base, base+bytes) (reserved by the caller) for cells of objects whose size with
 * header is at most max_total. 0 or -1 (errno). */
int ugc_nonmoving_init(ugc_nonmoving_space *space, uintptr_t base, size_t bytes, size_t max_total);
void ugc_nonmoving_destroy(ugc_nonmoving_space *space);

/* Allocates a zeroed cell for an object of `total` bytes (header included); returns the
 * cell (header address) or 0 when the space is full. Caller holds the heap lock. */
uintptr_t ugc_nonmoving_alloc(ugc_nonmoving_space *space, size_t total);

static inline ugc_nm_span *ugc_nonmoving_span_of(const ugc_nonmoving_space *space, uintptr_t addr) {
  if (addr - space->base >= space->top - space->base)
    return NULL;
  return space->unit_spans[(addr - space->base) >> UGC_NM_UNIT_SHIFT];
}

/* Index of the allocated cell starting at `hdr`, or -1 when hdr is not one. */
static inline long ugc_nonmoving_cell_index(const ugc_nonmoving_space *space, uintptr_t hdr) {
  ugc_nm_span *span = ugc_nonmoving_span_of(space, hdr);
  if (!span)
    return -1;
  size_t offset = hdr - span->start;
  if (offset % span->cell_bytes)
    return -1;
  size_t index = offset / span->cell_bytes;
  if (index >= span->cell_count || !((span->alloc_bits[index >> 6] >> (index & 63)) & 1u))
    return -1;
  return (long)index;
}

/* Sets the mark bit of the allocated cell at hdr; true if this call set it. */
static inline bool ugc_nonmoving_mark(const ugc_nonmoving_space *space, uintptr_t hdr) {
  ugc_nm_span *span = ugc_nonmoving_span_of(space, hdr);
  size_t index = (hdr - span->start) / span->cell_bytes;
  uint64_t bit = UINT64_C(1) << (index & 63);
  return !(atomic_fetch_or_explicit(&span->mark_bits[index >> 6], bit, memory_order_relaxed) & bit);
}

static inline bool ugc_nonmoving_is_marked(const ugc_nonmoving_space *space, uintptr_t hdr) {
  ugc_nm_span *span = ugc_nonmoving_span_of(space, hdr);
  size_t index = (hdr - span->start) / span->cell_bytes;
  return (atomic_load_explicit(&span->mark_bits[index >> 6], memory_order_relaxed) >>
          (index & 63)) &
         1u;
}

/* Frees every allocated, unmarked cell and clears all mark bits. Returns bytes freed. */
size_t ugc_nonmoving_sweep(ugc_nonmoving_space *space);

/* Calls fn(hdr, data) for every allocated cell in address order; stops when it returns
 * false. */
typedef bool (*ugc_cell_fn)(uintptr_t hdr, void *data);
void ugc_nonmoving_for_each(const ugc_nonmoving_space *space, ugc_cell_fn fn, void *data);

#endif
