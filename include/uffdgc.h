/* uffdgc: a mark-compact garbage collector for language runtimes on Linux, whose compaction
 * runs while the application keeps running (userfaultfd page faults are the read barrier).
 *
 * The embedder's contract, in short:
 *  - create a heap (ugc_heap_create), register object types (ugc_type_register);
 *  - every thread that touches the heap attaches (ugc_thread_attach) and polls
 *    ugc_safepoint() regularly, or marks the stretches where it does not touch the heap as
 *    blocking regions (ugc_blocking_enter/leave);
 *  - every reference the collector must see is either inside a heap object (at a place its
 *    type describes), in a root slot registered with a handle scope, a global root, or
 *    reported by a root enumerator callback;
 *  - stores of references into heap objects go through ugc_write (the write barrier).
 *
 * References are pointers to an object's payload (the value ugc_alloc returned). The
 * collector owns the one word just before it (the header). Objects move only at a
 * safepoint: between two safepoints raw pointers held by C code stay valid.
 *
 * Documentation: docs/api.md (guide with examples), docs/design.md (how it works).
 */
#ifndef UFFDGC_H
#define UFFDGC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UGC_API __attribute__((visibility("default")))

/* The version of this header; CMake's project VERSION is the same (a test checks it). */
#define UGC_VERSION_MAJOR 0
#define UGC_VERSION_MINOR 1
#define UGC_VERSION_PATCH 0
/* The version as one number, for comparisons: 10000 * major + 100 * minor + patch. */
#define UGC_VERSION (UGC_VERSION_MAJOR * 10000 + UGC_VERSION_MINOR * 100 + UGC_VERSION_PATCH)

/* The version of the library linked at run time, as UGC_VERSION (may differ from the header
 * the caller was compiled with when the library is shared). */
UGC_API unsigned ugc_version(void);

typedef struct ugc_heap ugc_heap;
typedef struct ugc_mutator ugc_mutator;
typedef struct ugc_tracer ugc_tracer;
typedef uint32_t ugc_type_id;

/* ------------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------------- */

typedef enum ugc_error_code {
  UGC_OK = 0,
  UGC_ERR_INVALID,     /* bad argument or configuration value */
  UGC_ERR_NOMEM,       /* could not reserve or commit memory */
  UGC_ERR_UNAVAILABLE, /* the requested backend or feature is not offered by this kernel */
  UGC_ERR_KERNEL,      /* a system call failed unexpectedly */
  UGC_ERR_MISUSE,      /* the call is not allowed in the current state */
} ugc_error_code;

/* Filled by calls that can fail; `message` names the call and the cause. A message longer
 * than the buffer is cut after a whole word and ends with "...". */
#define UGC_ERROR_MESSAGE_BYTES 512
typedef struct ugc_error {
  ugc_error_code code;
  char message[UGC_ERROR_MESSAGE_BYTES];
} ugc_error;

/* ------------------------------------------------------------------------------------------
 * Heap creation
 * ---------------------------------------------------------------------------------------- */

/* Called when an allocation fails even after a full collection, before NULL is returned. */
typedef void (*ugc_oom_handler)(ugc_heap *heap, size_t requested_bytes, void *data);

/* Whether the moving space is mapped with transparent huge pages (ugc_config.huge_pages). */
typedef enum ugc_huge_pages {
  UGC_HUGE_PAGES_AUTO = 0, /* the backend's choice */
  UGC_HUGE_PAGES_ON = 1,
  UGC_HUGE_PAGES_OFF = 2
} ugc_huge_pages;

typedef struct ugc_config {
  size_t heap_max;         /* maximum bytes of the whole heap (moving, non-moving and large
                              objects together); default 256 MiB */
  size_t heap_initial;     /* occupancy that triggers the first collection; default 32 MiB */
  size_t nonmoving_max;    /* maximum bytes of the pinned (non-moving) space; default 64 MiB */
  size_t large_threshold;  /* objects of at least this many bytes go to the large-object
                              space (never moved); default 128 KiB */
  const char *backend;     /* "auto" (default), "stw", "copy", ... ; see docs/backends.md */
  const char *delivery;    /* concurrent backends: "sigbus" (default) or "thread" */
  unsigned gc_threads;     /* collector threads, at most 64; 0 = the number of CPUs, at most
                              8 */
  int verify;              /* 0 off; 1 run the heap verifier before every collection and
                              after it once its compaction is over (a concurrent one is
                              checked at the next stop, after mutators raced with it);
                              2 also finish every compaction inside the pause and check it
                              there (no mutator then builds a page) */
  int concurrent_mark;     /* 1 (default): mark while mutators run, between two short pauses;
                              0: mark inside one stop-the-world pause */
  int mark_assist;         /* with concurrent marking: 1 (default) a mutator that allocates
                              faster than the GC threads mark helps marking in its
                              allocation slow path; 0: it never marks (it may then run out
                              of heap and wait for the cycle) */
  bool check;              /* checking mode: every allocation takes the checked slow path (type id,
                              size, owner thread, ...); about 2x the cost of an allocation */
  bool trace;              /* one line per cycle on trace_file */
  FILE *trace_file;        /* default stderr */
  double growth_factor;    /* next trigger = live bytes * growth_factor (see docs/api.md);
                              default 2.0 */
  uintptr_t root_tag_mask; /* tag bits to strip from root slots; default 0 */
  /* Which root values are references (handle-scope roots, global roots, weak slots): only
   * those with (value & root_pointer_tag_mask) == root_pointer_tag; the others are
   * immediates (fixnums, characters) the collector never reads nor rewrites. Default 0 and
   * 0: every value is taken for a possible reference (see ugc_tag_rule). */
  uintptr_t root_pointer_tag_mask;
  uintptr_t root_pointer_tag;
  /* Bytes from the payload start to where root references point (ugc_tag_rule's
   * reference_offset for roots, weak slots and finalizer slots); default 0. */
  uintptr_t root_reference_offset;
  ugc_oom_handler oom_handler;
  void *oom_data;
  /* A pause that has waited this long for a thread to reach a safepoint prints a warning
   * naming it (again each time the wait doubles). 0 = the default, 10000 ms. */
  unsigned safepoint_timeout_ms;
  /* Untouched spans (docs/design.md): fully live data without references at the bottom of
   * the heap stays where it is through a compaction, never read, written or copied. `stw`
   * always does it (it builds pages in the pause: pure gain). With this set, `copy` and
   * `move` do it too: less GC-thread work and cold data stays cold, for about 0.1 ms more
   * compaction pause (the hand-off's mremap moves the region around a span entry by entry).
   * Default false. */
  bool untouched_concurrent;
  /* Transparent huge pages for the moving space (MADV_HUGEPAGE or MADV_NOHUGEPAGE on it):
   * UGC_HUGE_PAGES_AUTO (the default) lets the backend choose: on for `stw`, `sigsegv` and
   * `minor`, off for `copy` and `move` (docs/api.md says why). UFFDGC_DISABLE=thp turns
   * them off whatever this says. */
  ugc_huge_pages huge_pages;
  /* GC threads that build pages during a concurrent compaction (copy, move, sigsegv,
   * minor), at most 64; 0 (the default) = gc_threads - 1, at least 1: a CPU is left to the
   * application. More finish a compaction sooner, so fewer mutator operations meet pages
   * not built yet, at the cost of the CPU they take from the mutators (docs/api.md). */
  unsigned compact_threads;
} ugc_config;

/* Fills *config with the defaults. Always call it before setting fields. */
UGC_API void ugc_config_init(ugc_config *config);

/* Creates a heap. The environment overrides the config: UFFDGC_BACKEND, UFFDGC_TRACE=1,
 * UFFDGC_VERIFY=1 or 2, UFFDGC_CHECK=1, UFFDGC_HEAP_MAX (e.g. 1G), UFFDGC_DELIVERY,
 * UFFDGC_GC_THREADS, UFFDGC_CONCURRENT_MARK=0 or 1, UFFDGC_MARK_ASSIST=0 or 1,
 * UFFDGC_UNTOUCHED_CONCURRENT=0 or 1, UFFDGC_THP=auto, 1 or 0, UFFDGC_COMPACT_THREADS (and,
 * for tests,
 * UFFDGC_DISABLE and UFFDGC_INJECT). A variable unset or empty, or a size, name or count field left
 * at 0 (NULL), takes its default (for verify, concurrent_mark, mark_assist and trace 0 means off);
 * any other bad value makes the call fail with UGC_ERR_INVALID and a message naming the variable or
 * field, the value and what is accepted. Returns NULL and fills *error (may be NULL) when the heap
 * cannot be made. */
UGC_API ugc_heap *ugc_heap_create(const ugc_config *config, ugc_error *error);

/* Destroys the heap and releases all its memory. Every mutator must be detached. */
UGC_API void ugc_heap_destroy(ugc_heap *heap);

/* The backend the heap runs ("stw", "copy", ...), after "auto" was resolved. */
UGC_API const char *ugc_heap_backend(const ugc_heap *heap);

/* The settings the heap runs with, into *config: the caller's ugc_config after the
 * environment (UFFDGC_*) and the defaults were applied, every automatic choice resolved:
 * `backend` as ugc_heap_backend gives it, `gc_threads` and `compact_threads` as counts, and
 * `huge_pages` UGC_HUGE_PAGES_ON or _OFF as the moving space is advised now (the backend's
 * choice for AUTO; UFFDGC_DISABLE=thp applied). `delivery` is as configured (it matters to
 * copy, move and minor only). */
UGC_API void ugc_heap_config(const ugc_heap *heap, ugc_config *config);

/* Whether system calls that read or write heap objects (read(2) into an object, write(2)
 * from one) can fail with EFAULT while a concurrent compaction is in flight, and why (into
 * reason, may be NULL). True with SIGBUS delivery, and with any delivery when userfaultfd
 * could only be opened with UFFD_USER_MODE_ONLY (unprivileged, vm.unprivileged_userfaultfd=0).
 * Ways out: pass pinned objects (ugc_alloc_pinned, or objects pinned with
 * ugc_pin) or non-heap buffers to such calls, or call ugc_collect(m, UGC_COLLECT_FINISH)
 * first (see docs/api.md). */
UGC_API bool ugc_heap_syscalls_may_fault(const ugc_heap *heap, char *reason, size_t reason_len);

/* Whether this kernel and build can run backend `name`; if not, why (into reason). */
UGC_API bool ugc_backend_available(const char *name, char *reason, size_t reason_len);

/* ------------------------------------------------------------------------------------------
 * Types
 * ---------------------------------------------------------------------------------------- */

/* Which slot values are references, and how a reference encodes its object. A value v is
 * a reference only when (v & pointer_tag_mask) == pointer_tag and v & ~tag_mask is not 0;
 * the object's payload address is then (v & ~tag_mask) - reference_offset, and when the
 * collector rewrites v it writes (new payload + reference_offset) | (v & tag_mask). Every
 * other value is an immediate: never looked up, never marked, never rewritten. With
 * pointer_tag_mask 0 (the default) every value is a possible reference and one that does not
 * point into the heap is left alone; a fixnum whose bits happen to equal an object's
 * address would then keep that object alive and be rewritten when it moves. Example, fixnums
 * n << 1 | 1 and untagged pointers: tag_mask 0, pointer_tag_mask 1, pointer_tag 0.
 * reference_offset (default 0) serves runtimes whose references point past their own
 * header word at the payload start: Scheme48's (header + 8) | 3 is tag_mask 3,
 * pointer_tag_mask 3, pointer_tag 3, reference_offset 8 (docs/api.md, "References that do
 * not point at the payload start"). ugc_tag_reference and ugc_tag_rewrite apply a rule. */
typedef struct ugc_tag_rule {
  uintptr_t tag_mask;
  uintptr_t pointer_tag_mask;
  uintptr_t pointer_tag;
  uintptr_t reference_offset; /* reference = payload + reference_offset; no bit in tag_mask */
} ugc_tag_rule;

typedef enum ugc_layout {
  UGC_LAYOUT_FIXED,     /* fixed payload; references at ref_offsets */
  UGC_LAYOUT_REF_ARRAY, /* fixed part (fixed_size bytes, refs at ref_offsets), then an array of
                           references filling the rest of the payload */
  UGC_LAYOUT_LEAF,      /* no references at all: strings, byte arrays, floats */
  UGC_LAYOUT_CUSTOM,    /* the trace callback reports every reference slot */
} ugc_layout;

/* Reports each reference slot of obj to the tracer (ugc_trace_slot / ugc_trace_tagged).
 * It may be called with a copy of the object and from a signal handler on a mutator thread
 * (concurrent backends build pages there): it must be async-signal-safe, take no locks,
 * allocate nothing and read nothing but the object itself. `payload_bytes` is the size
 * given at allocation. */
typedef void (*ugc_trace_fn)(void *obj, size_t payload_bytes, ugc_tracer *tracer);

typedef struct ugc_type_desc {
  const char *name; /* for messages and statistics; copied */
  ugc_layout layout;
  size_t fixed_size;           /* FIXED: payload bytes (ugc_alloc may ask for more);
                                  REF_ARRAY: bytes before the reference array */
  const uint32_t *ref_offsets; /* byte offsets of reference slots in the fixed part; copied */
  uint32_t ref_count;
  uintptr_t tag_mask; /* tag bits in this type's reference slots (kept on update) */
  ugc_trace_fn trace; /* CUSTOM only */
  /* Which values of this type's slots (ref_offsets and the REF_ARRAY elements) are
   * references: see ugc_tag_rule. 0 and 0 (default): every value may be one. */
  uintptr_t pointer_tag_mask;
  uintptr_t pointer_tag;
  /* Bytes from the payload start to where this type's references point (see ugc_tag_rule);
   * default 0. No bit of it may be in tag_mask. */
  uintptr_t reference_offset;
  /* FIXED only. Weak reference slots (byte offsets, the rules of ref_offsets, none also in
   * ref_offsets), under the same tag rule: marking does not go through them; they are
   * updated when their referent moves and set to cleared_value when it dies. */
  const uint32_t *weak_offsets; /* copied */
  uint32_t weak_count;
  /* What a weak slot of a dead referent (and both slots of an ephemeron whose key died)
   * becomes: 0 by default, or an immediate such as a Scheme #f. Never a heap reference. */
  uintptr_t cleared_value;
  /* FIXED only, with exactly two ref_offsets (key, then value) and no weak_offsets: the
   * object is an ephemeron. Its value is kept alive only while its key is reachable other
   * than through ephemeron values; once the key is unreachable both slots become
   * cleared_value. Other payload bytes are data. */
  bool ephemeron;
} ugc_type_desc;

/* Registers a type; returns its id (> 0), or 0 with *error filled for a bad description
 * (offset not 8-byte aligned or outside fixed_size, CUSTOM without trace, ...). */
UGC_API ugc_type_id ugc_type_register(ugc_heap *heap, const ugc_type_desc *desc, ugc_error *error);

/* Tracer calls, for CUSTOM trace callbacks and root enumerators. */

/* Visits an untagged reference slot. NULL and pointers outside the heap are left alone. */
UGC_API void ugc_trace_slot(ugc_tracer *tracer, void **slot);
/* Visits a slot holding a tagged reference: the bits in tag_mask are stripped before the
 * lookup and put back after relocation. Call it only for slots that hold references. */
UGC_API void ugc_trace_tagged(ugc_tracer *tracer, uintptr_t *slot, uintptr_t tag_mask);
/* Visits a slot that holds a reference or an immediate, told apart by `rule` (see
 * ugc_tag_rule): safe for slots a mutator may switch between the two during concurrent
 * marking. `rule` is only read during the call. */
UGC_API void ugc_trace_value(ugc_tracer *tracer, uintptr_t *slot, const ugc_tag_rule *rule);

/* ------------------------------------------------------------------------------------------
 * Mutator threads
 * ---------------------------------------------------------------------------------------- */

/* Attaches the calling thread; returns its mutator, or NULL with *error filled. */
UGC_API ugc_mutator *ugc_thread_attach(ugc_heap *heap, ugc_error *error);
/* Detaches the calling thread; its roots stop being roots, its mutator is freed. */
UGC_API void ugc_thread_detach(ugc_mutator *mutator);
/* The heap a mutator belongs to. */
UGC_API ugc_heap *ugc_mutator_heap(const ugc_mutator *mutator);

/* Enters a region where the thread does not touch heap objects nor its roots (a blocking
 * system call, a long computation on non-heap data): collections proceed without it. */
UGC_API void ugc_blocking_enter(ugc_mutator *mutator);
/* Leaves the region; waits if a pause is in progress. Objects may have moved meanwhile. */
UGC_API void ugc_blocking_leave(ugc_mutator *mutator);

/* ------------------------------------------------------------------------------------------
 * Signals (SIGBUS delivery of the concurrent backends; docs/api.md "Signals")
 * ---------------------------------------------------------------------------------------- */

/* For an embedder whose own SIGBUS handler (or SIGSEGV handler, with the sigsegv backend)
 * may run before the library's: call this first from that handler with its arguments. Returns true
 * when the signal was a fault on a heap page being compacted and is resolved: return from your
 * handler at once (the access is retried). False for everything else (other si_codes such as
 * hardware poison, signals sent with kill(), addresses outside every heap, no compaction running):
 * handle it as yours. Async-signal-safe. */
UGC_API bool ugc_handle_signal(int sig, siginfo_t *info, void *ucontext);

/* ------------------------------------------------------------------------------------------
 * Roots
 * ---------------------------------------------------------------------------------------- */

/* Adds a global root: *slot is a reference under the root rule (config.root_tag_mask,
 * root_pointer_tag_mask, root_pointer_tag, root_reference_offset) or an immediate. */
UGC_API void ugc_global_root_add(ugc_heap *heap, void **slot);
/* Removes a global root added with ugc_global_root_add (one registration of it), in O(1). */
UGC_API void ugc_global_root_remove(ugc_heap *heap, void **slot);

/* A callback that reports roots the embedder keeps itself (its own stacks, tables).
 * The collector may call it more than once per cycle (to mark, then to update). */
typedef void (*ugc_root_enumerator)(ugc_tracer *tracer, void *data);
/* Registers a root enumerator. */
UGC_API void ugc_root_enumerator_add(ugc_heap *heap, ugc_root_enumerator fn, void *data);
/* Unregisters a root enumerator registered with the same fn and data. */
UGC_API void ugc_root_enumerator_remove(ugc_heap *heap, ugc_root_enumerator fn, void *data);

/* After-marking hook: called in every collection once marking is complete (world stopped,
 * before weak slots and ephemerons are cleared and before anything moves), on the collecting
 * thread. It may ask which objects are reachable (ugc_is_marked) and mark more by reporting
 * slots to `tracer` (ugc_trace_slot, ugc_trace_value): what they reach is traced when the
 * hook returns (resurrection, as finalizers need). While a round of hooks marks something,
 * every hook runs again (round 1, 2, ...), each round tracing only what the previous one
 * added: the total stays bounded by the heap. Same rules as event callbacks otherwise: no
 * allocation, no other ugc_ call, read objects only through what they tell. */
typedef void (*ugc_after_mark_fn)(ugc_heap *heap, ugc_tracer *tracer, unsigned round, void *data);
/* Registers an after-marking hook. */
UGC_API void ugc_after_mark_add(ugc_heap *heap, ugc_after_mark_fn fn, void *data);
/* Unregisters an after-marking hook registered with the same fn and data. */
UGC_API void ugc_after_mark_remove(ugc_heap *heap, ugc_after_mark_fn fn, void *data);
/* Inside an after-marking hook only: whether obj (an object of this heap) is reachable so
 * far, counting what hooks marked in earlier rounds and in this one. */
UGC_API bool ugc_is_marked(ugc_heap *heap, const void *obj);

/* Relocation hook, for embedders with copying-collector habits (tables keyed by address,
 * interior pointers kept outside the heap, continuations that must learn how far they
 * moved): called in every collection after marking and the after-marking hooks, once the
 * new address of every live object is known and before any moves (world stopped). */
typedef struct ugc_relocation ugc_relocation;
typedef void (*ugc_relocation_fn)(ugc_heap *heap, const ugc_relocation *relocation, void *data);
/* Registers a relocation hook. */
UGC_API void ugc_relocation_hook_add(ugc_heap *heap, ugc_relocation_fn fn, void *data);
/* Unregisters a relocation hook registered with the same fn and data. */
UGC_API void ugc_relocation_hook_remove(ugc_heap *heap, ugc_relocation_fn fn, void *data);
/* Inside a relocation hook: where the live object now at `obj` will be after this
 * collection (obj itself when it does not move). Undefined for dead objects. */
UGC_API void *ugc_new_address(const ugc_relocation *relocation, const void *obj);

/* Weak slot (its value under the root rule, as global roots): cleared (set to NULL) when its
 * referent dies, updated when it moves. */
UGC_API void ugc_weak_add(ugc_heap *heap, void **slot);
/* Removes a weak slot (one registration of it), in O(1). */
UGC_API void ugc_weak_remove(ugc_heap *heap, void **slot);

/* ------------------------------------------------------------------------------------------
 * Finalization (docs/api.md "Finalization"; Java's rules: no order among objects found
 * unreachable in the same collection)
 * ---------------------------------------------------------------------------------------- */

/* Registers the object *slot refers to for finalization. `slot` is embedder memory outside
 * movable objects, holds a reference under the root rule (see ugc_global_root_add) and
 * must stay valid until the registration ends. The collector updates *slot when the object
 * moves but does not keep the object alive through it. When a collection finds the object
 * unreachable, it keeps the object and everything it references alive (resurrection) and
 * queues the registration, which ugc_finalizers_drain then hands out exactly once. Any
 * thread, attached or not; not from a trace callback or an event callback. */
UGC_API void ugc_finalizer_add(ugc_heap *heap, void **slot, void *cookie);
/* Ends the last registration of `slot`, registered or queued but not yet handed out;
 * returns whether there was one (false once ugc_finalizers_drain has handed it out). */
UGC_API bool ugc_finalizer_remove(ugc_heap *heap, void **slot);

/* Called once per queued registration: `obj` is the object's payload address (tag bits
 * and root_reference_offset removed, as ugc_tag_reference gives), `slot`
 * and `cookie` those of the registration, `data` the drain's. The registration is over:
 * *slot is no longer updated, and obj stays where it is only until the thread's next
 * safepoint (an allocation, a collection): root it (or register it again) first if it must
 * survive one. */
typedef void (*ugc_finalize_fn)(ugc_mutator *mutator, void *obj, void **slot, void *cookie,
                                void *data);
/* Hands out the queued registrations in queue order (registration order within one
 * collection, earlier collections first), calling fn for each; returns how many. Call it
 * outside any pause, from an attached thread that is not in a blocking region: fn may
 * allocate, collect and register again. Registrations queued by a collection during the
 * drain are handed out by the same call. */
UGC_API size_t ugc_finalizers_drain(ugc_mutator *mutator, ugc_finalize_fn fn, void *data);
/* How many registrations are queued and not yet handed out: a cheap poll to decide whether
 * to drain. */
UGC_API size_t ugc_finalizers_pending(ugc_heap *heap);

/* ------------------------------------------------------------------------------------------
 * Allocation slow paths (the inline fast paths are in uffdgc/inline.h)
 * ---------------------------------------------------------------------------------------- */

/* Out-of-line allocation: new TLAB, large objects, collections, errors. Prefer ugc_alloc. */
UGC_API void *ugc_alloc_slow(ugc_mutator *mutator, ugc_type_id type, size_t bytes);
/* Allocates an object that never moves (in the non-moving or large-object space). */
UGC_API void *ugc_alloc_pinned(ugc_mutator *mutator, ugc_type_id type, size_t bytes);
/* Makes sure the next allocations totalling at most `bytes` (headers included: use
 * ugc_alloc_size) succeed without reaching a safepoint. May collect. False when out of memory.
 * Covers ugc_alloc of any size, large objects included (their room comes out of the
 * reservation); not ugc_alloc_pinned. See docs/api.md. */
UGC_API bool ugc_reserve(ugc_mutator *mutator, size_t bytes);
/* Where an allocation was to go. */
typedef enum ugc_space {
  UGC_SPACE_NONE = 0,  /* no allocation of this mutator has failed */
  UGC_SPACE_MOVING,    /* ugc_alloc below large_threshold, ugc_reserve */
  UGC_SPACE_NONMOVING, /* ugc_alloc_pinned below large_threshold */
  UGC_SPACE_LARGE,     /* objects of at least large_threshold bytes */
} ugc_space;

/* The last failed allocation (or ugc_reserve) of a mutator, after a full collection: which
 * space and why. */
typedef struct ugc_alloc_failure {
  ugc_space space;
  size_t requested_bytes;   /* payload bytes (ugc_reserve: the bytes asked for) */
  bool heap_max_reached;    /* the whole heap would have grown past heap_max */
  bool space_limit_reached; /* else: the space's own limit (nonmoving_max) or the memory
                               the system would give (both false: the request itself is
                               larger than heap_max) */
  size_t heap_used_bytes;   /* the whole heap, at the failure */
  size_t space_used_bytes;  /* that space, at the failure */
} ugc_alloc_failure;

/* Copies the calling mutator's last allocation failure into *failure (space NONE if none
 * failed yet). Call it after ugc_alloc, ugc_alloc_pinned or ugc_reserve returned NULL or
 * false, for the error message or to decide what to do (grow heap_max, free pinned
 * objects, ...). */
UGC_API void ugc_last_alloc_failure(ugc_mutator *mutator, ugc_alloc_failure *failure);
/* Safepoint slow path: parks the thread for a pause. Prefer ugc_safepoint. */
UGC_API void ugc_safepoint_slow(ugc_mutator *mutator);
/* Reports a misuse found by an inline check (debug builds) and aborts. */
UGC_API void ugc_misuse(const char *call, const char *reason) __attribute__((noreturn));

/* ------------------------------------------------------------------------------------------
 * Collection, statistics, inspection
 * ---------------------------------------------------------------------------------------- */

typedef enum ugc_collect_kind {
  UGC_COLLECT_FULL,   /* mark and compact now */
  UGC_COLLECT_FINISH, /* only wait until an in-flight concurrent compaction has finished */
} ugc_collect_kind;

/* Runs a collection from a mutator thread (all other mutators are stopped at safepoints). */
UGC_API void ugc_collect(ugc_mutator *mutator, ugc_collect_kind kind);

/* A log-linear histogram of durations in nanoseconds (8 sub-buckets per power of two). */
#define UGC_HISTOGRAM_BUCKETS 512
typedef struct ugc_histogram {
  uint64_t count;
  uint64_t max_ns;
  uint64_t sum_ns;
  uint64_t buckets[UGC_HISTOGRAM_BUCKETS];
} ugc_histogram;

/* The duration below which a fraction p (0..1) of the samples fall; 0 when empty. */
UGC_API uint64_t ugc_histogram_percentile(const ugc_histogram *histogram, double p);

typedef struct ugc_compaction_stats {
  uint64_t pages_total, pages_in_place, pages_slid_whole, pages_recycled, pages_fresh;
  uint64_t pages_by_mutator, pages_by_gc;
  uint64_t pages_helped; /* built a second time by a thread that stopped waiting for a late
                            owner (the first copy to be mapped wins; both are identical) */
  uint64_t copy_ioctls, move_ioctls, continue_ioctls, zeropage_ioctls, madvise_calls;
  uint64_t bytes_copied;
  uint64_t concurrent_ns; /* from the end of the compaction pause to the last page mapped */
  uint64_t handoff_ns, handoff_max_ns; /* kernel work of the compaction pause: moving the
                                          heap away and registering it (sum, largest) */
  uint64_t forwarding_ns, memcpy_ns, map_ns, madvise_ns, wait_ns;
  /* Pages of large and non-moving objects whose references were updated outside the pause
   * (built by GC threads, or by mutators that touched them first), and pages of them that a
   * failed hand-off or a backend that compacts in the pause updated in the pause. */
  uint64_t update_pages_by_gc, update_pages_by_mutator, update_pages_in_pause;
  /* Compactions a concurrent backend did in the pause, as the stw backend does: its hand-off
   * could not be made (a kernel error, no memory), or (sigsegv, minor) pinned objects' pages
   * had to keep their physical pages (docs/api.md, "Pinning"). */
  uint64_t compactions_in_pause;
  /* sigsegv backend: mprotect calls that published built pages; the most mappings the
   * heap's protected part was split into during one compaction; runs extended down to a
   * published page to save mappings, and cycles that had to (near vm.max_map_count). */
  uint64_t mprotect_calls, vmas_peak, runs_extended, cycles_merged;
  /* minor backend: bytes of the kept dense prefix that builds still copied (pages a mutator
   * wrote since the last cycle: from-space held a private copy, not the file's page); the
   * other kept pages were only updated where they lie. */
  uint64_t kept_bytes_copied;
  /* move backend: pages of pages_in_place moved 2 MiB at a time (a whole aligned chunk of
   * the dense prefix in one UFFDIO_MOVE), so that the kernel moves a transparent huge page
   * whole instead of splitting it (docs/backends.md, "move"). */
  uint64_t pages_moved_huge;
  /* copy and move backends: drained from-space pages moved into the heap when allocation
   * reached them (memory reused instead of faulted in fresh and zeroed): kept after a
   * compaction for the next cycle, or, with copy, drained while the compaction still ran.
   * Allocation memory, not compaction pages: outside pages_total and its shares. */
  uint64_t pages_retained_reused;
  /* move backend: pages of pages_recycled moved 2 MiB at a time (a whole aligned chunk of
   * slid pages built into a drained 2 MiB region of from-space, one UFFDIO_MOVE). */
  uint64_t pages_recycled_huge;
  /* move backend: UFFDIO_MOVEs that moved their page and still answered EEXIST (the page
   * was found at its destination and gone from its source: taken as moved; said once on
   * stderr). A kernel quirk seen about once in 80 runs of a pinned-I/O stress test. */
  uint64_t moves_misreported;
  /* stw backend (copy and move with config.untouched_concurrent): pages of pages_in_place
   * that the compaction left where they were, neither read nor written (fully live data without
   * references in the dense prefix, in whole 2 MiB chunks: docs/design.md, "Untouched spans"). Not
   * built, so not in pages_by_gc or pages_by_mutator: those two and this one add up to pages_total.
   */
  uint64_t pages_untouched;
  /* Concurrent backends: pages of pages_by_gc taken by mutators that waited for the
   * compaction (it must end before the next cycle can start) and built pages beside the GC
   * threads instead of sleeping: a thread that found the heap full, or one in ugc_collect. */
  uint64_t pages_by_waiting_mutators;
} ugc_compaction_stats;

typedef struct ugc_stats {
  uint64_t cycles;
  uint64_t allocated_bytes; /* total ever allocated */
  uint64_t live_bytes_last; /* live after the last marking */
  uint64_t live_bytes_peak;
  uint64_t freed_bytes;     /* total reclaimed */
  uint64_t heap_used_bytes; /* moving space in use now (bump pointer) */
  uint64_t heap_max_bytes;
  uint64_t nonmoving_used_bytes, large_used_bytes;
  uint64_t gc_cpu_ns;              /* time spent in collector work, all threads */
  ugc_histogram pause;             /* every stop of the world, whole (one per cycle; three
                                      with concurrent marking: the initial, the remark and
                                      the compaction pause, and mark_remark_retries) */
  ugc_histogram pause_mark;        /* marking phases of the pauses: marking, sweeping, the
                                      forwarding plan (with concurrent marking: the initial
                                      and the remark pause, whole) */
  ugc_histogram pause_compact;     /* compaction phases: roots and the backend's hand-off
                                      (stw: all of the compaction); with concurrent marking
                                      the compaction pause, whole */
  ugc_histogram stall;             /* mutator waits on pages being compacted */
  ugc_compaction_stats compaction; /* summed over all cycles */
  /* Concurrent marking (summed over all cycles). */
  uint64_t mark_concurrent_cycles; /* cycles whose marking ran while mutators ran */
  uint64_t mark_concurrent_ns;     /* marking time outside the pauses */
  uint64_t mark_barrier_values;    /* values the write barrier recorded during marking */
  uint64_t mark_black_bytes;       /* allocated during marking (live by construction) */
  uint64_t mark_final_objects;     /* objects marked in the remark pause (buffers, roots) */
  uint64_t mark_remark_retries;    /* remark pauses given up at once because the barrier's
                                      buffers were too many to mark in a pause (marked
                                      while mutators ran instead); each is in pause and
                                      pause_mark, a stop of a few microseconds */
  uint64_t plan_concurrent_ns;     /* between the remark and the compaction pause: marking
                                      what was allocated, sweeping, the forwarding plan */
  /* Allocations that found the heap full (heap_max) while a concurrent cycle ran, and the
   * time they waited for it: the trigger started that cycle too late. */
  uint64_t alloc_waits;
  uint64_t alloc_wait_ns;
  uint64_t alloc_waits_marking; /* of alloc_waits, those that began while marking ran (the
                                   others: between the remark pause and the end of the
                                   compaction, or before the next marking could start) */
  uint64_t alloc_wait_build_ns; /* of alloc_wait_ns, the time the waiting threads spent
                                   building pages of the compaction in progress (which
                                   has to end before the next cycle can start) */
  /* Mutator assists: slow-path allocations during concurrent marking whose thread marked
   * (its allocation had outrun the GC threads' marking), and steps of threads that marked
   * while they waited for the cycle (ugc_collect, a full heap); the scan work they did
   * (bytes of objects traced) and the time it took them. */
  uint64_t mark_assists;
  uint64_t mark_assist_bytes;
  uint64_t mark_assist_ns;
  uint64_t verify_cycles, verify_failures;
  uint64_t verify_ns; /* time the verifier took (UFFDGC_VERIFY), inside pauses but never
                         counted in the pause histograms */
} ugc_stats;

/* Copies the heap's statistics (safe to call from any attached or unattached thread, but not
 * from an event callback). The copy is consistent: it never shows part of a pause's updates
 * nor part of a finished concurrent compaction's counters, which are added all at once when
 * it completes (until then `compaction` and gc_cpu_ns do not include it). Only `stall` is
 * recorded live, by faulting threads without a lock: its count is the sum of its buckets,
 * while sum_ns and max_ns may already include a stall being recorded. */
UGC_API void ugc_stats_get(ugc_heap *heap, ugc_stats *stats);
/* Writes the statistics as one JSON object to `out`. */
UGC_API void ugc_stats_write_json(ugc_heap *heap, FILE *out);

/* ------------------------------------------------------------------------------------------
 * Events: a listener the collector calls at fixed points of every cycle (as Whippet's event
 * listener and bdwgc's GC_set_on_collection_event), for the embedder's own timing, logging
 * or heap sizing. Every callback may be NULL.
 *
 * Rules for every callback: it must return quickly; it must not allocate in the heap, touch
 * heap objects, nor call any ugc_ function but ugc_version, ugc_heap_backend and
 * ugc_histogram_percentile (the collector may hold its locks and have the world stopped);
 * it may use the C library (malloc, stdio). Callbacks of one heap never run at the same
 * time (they are serialised), but they may run on different threads. None runs inside a
 * signal handler.
 *
 * Per cycle n the order is always cycle_start(n), mark_done(n), [heap_resized],
 * pause_done(n), compaction_done(n), and compaction_done(n) comes before cycle_start(n + 1).
 * ---------------------------------------------------------------------------------------- */

typedef struct ugc_event_listener {
  void *data; /* passed to every callback */
  /* A cycle begins. On the collecting thread (a mutator in ugc_collect or in an allocation
   * that triggered the collection), world stopped, after the previous cycle's compaction has
   * finished. `cycle` counts from 1 (ugc_stats.cycles after this cycle). */
  void (*cycle_start)(void *data, uint64_t cycle);
  /* Marking is done (and the sweep of the non-moving and large spaces, and the compaction
   * plan): `live_bytes` survived, in `mark_ns`. Same thread, world still stopped; the
   * compaction phase of the pause follows. With concurrent marking: at the end of the
   * remark pause (`mark_ns` that pause), before the sweep and the plan, which run while
   * mutators run; `live_bytes` without the objects allocated during the cycle. */
  void (*mark_done)(void *data, uint64_t cycle, uint64_t live_bytes, uint64_t mark_ns);
  /* The pause is over: same thread, after the world resumed (other mutators may run
   * already). `pause_ns` is the whole stop, without verification (UFFDGC_VERIFY); with
   * concurrent marking the cycle's last stop, the compaction pause. */
  void (*pause_done)(void *data, uint64_t cycle, uint64_t pause_ns);
  /* The heap is fully compacted and every page is back. A backend that compacts in the
   * pause (stw, or a concurrent backend falling back for one cycle) reports it right after
   * pause_done on the same thread, with concurrent_ns = 0. A concurrent backend (copy)
   * reports it on the thread that completes the compaction: usually the last GC thread to
   * finish its share (world running), or a thread that needed the compaction finished
   * first (a collection, ugc_collect(UGC_COLLECT_FINISH), ugc_heap_walk, ugc_verify,
   * ugc_graph_digest, ugc_heap_destroy, fork), possibly with the world stopped.
   * `concurrent_ns` runs from the end of the pause to the last page mapped. */
  void (*compaction_done)(void *data, uint64_t cycle, uint64_t concurrent_ns);
  /* The heap's size changed: the moving-space occupancy at which the next collection starts
   * (max(heap_initial, live * growth_factor), at most heap_max; with concurrent marking
   * lowered to leave room for allocation during the cycle). At the end of a pause, on
   * the collecting thread, world stopped. */
  void (*heap_resized)(void *data, uint64_t old_bytes, uint64_t new_bytes);
  /* An allocation (or ugc_reserve) of `requested_bytes` fails even after a full
   * collection. On the allocating mutator's thread, world running, before the oom_handler
   * and before NULL (false) is returned. */
  void (*alloc_failure)(void *data, uint64_t requested_bytes);
} ugc_event_listener;

/* Sets the heap's event listener (copied; NULL removes it). Any thread; takes effect from
 * the next event. Must not be called from inside a callback. */
UGC_API void ugc_set_event_listener(ugc_heap *heap, const ugc_event_listener *listener);

/* ------------------------------------------------------------------------------------------
 * Inspection
 * ---------------------------------------------------------------------------------------- */

/* Type id of an object. */
UGC_API ugc_type_id ugc_object_type(const void *obj);
/* Payload bytes of an object, as given at allocation. */
UGC_API size_t ugc_object_size(const void *obj);

/* A hash of obj's identity that stays the same for the object's whole life, however often
 * it moves (an address-based eq? hash table breaks at the first compaction). Given on the
 * first request (never 0) and kept in a table on the side: each hashed object costs about
 * 16 bytes and a re-insertion per collection; objects never hashed cost nothing. Distinct
 * live objects usually get distinct hashes (64 random-looking bits), as any hash, not
 * always. obj must be an object of mutator's heap. */
UGC_API uint64_t ugc_identity_hash(ugc_mutator *mutator, const void *obj);

/* Pins obj (an object of mutator's heap, in any space): until as many ugc_unpin calls, it
 * keeps its address across collections, and its pages are built in the compaction pause
 * rather than on first touch. Counted: pins nest. Called during a compaction, it returns
 * once the object's pages are in place. Pinning does not keep an object alive: unpin it
 * before dropping the last reference (a pinned object found dead loses its pins). A pinned
 * moving-space object keeps its page(s) in place at every compaction, with whatever else
 * lies in them. System calls on it never see EFAULT and never lose a write, on every
 * backend (sigsegv and minor compact a cycle that holds pinned pages in the pause; see
 * docs/api.md, "System calls on pinned objects"). */
UGC_API void ugc_pin(ugc_mutator *mutator, void *obj);

/* Undoes one ugc_pin of obj. Unpinning an object that is not pinned is a misuse (abort with
 * a message naming the call). */
UGC_API void ugc_unpin(ugc_mutator *mutator, void *obj);

/* How many times obj is pinned now (0: not pinned). */
UGC_API size_t ugc_pin_count(ugc_mutator *mutator, const void *obj);

/* Collections completed so far (ugc_stats.cycles), by one relaxed load: cheap enough to
 * poll after every allocation to learn whether objects may have moved. Any thread. */
UGC_API uint64_t ugc_collections(const ugc_heap *heap);

/* Calls fn for every object in the heap, live or not yet collected; stops when fn returns
 * false. Runs with the world stopped: fn must not allocate. */
typedef bool (*ugc_walk_fn)(void *obj, ugc_type_id type, size_t payload_bytes, void *data);
UGC_API void ugc_heap_walk(ugc_mutator *mutator, ugc_walk_fn fn, void *data);

/* Checks the whole heap: headers, type ids, every reference points at an object start in a
 * live space. Returns the number of problems (0 = clean); describes the first in *error. */
UGC_API size_t ugc_verify(ugc_mutator *mutator, ugc_error *error);

/* A hash of the graph reachable from all roots that does not depend on addresses: type ids,
 * sizes, non-reference payload bytes and the shape of the references. Equal before and
 * after a collection when the collector kept the graph intact. */
UGC_API uint64_t ugc_graph_digest(ugc_mutator *mutator);

#ifdef __cplusplus
}
#endif

#include "uffdgc/inline.h"

#endif
