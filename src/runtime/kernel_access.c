/* What system calls that touch heap objects (read(2) into one, write(2) from one) can expect
 * while a concurrent compaction is in flight, and saying so when the answer is "EFAULT".
 *
 * A page of the moving space that is not built yet is missing for the kernel too. A fault
 * taken inside a system call is resolved like a user-mode one only when the descriptor
 * handles kernel-mode faults and delivers them to a thread that can wait (handler-thread
 * delivery). SIGBUS delivery cannot interrupt the kernel, and a descriptor opened with
 * UFFD_USER_MODE_ONLY (what an unprivileged process gets under the stock
 * vm.unprivileged_userfaultfd=0) does not handle kernel-mode faults at all: in both cases
 * the system call fails with EFAULT. The copy backend opens its descriptor through the path
 * the process-wide probe found, so the probe tells which one it got. */
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "runtime/heap.h"
#include "uffd/uffd.h"

static bool user_mode_only(void) {
  return ugc_uffd_caps_get()->open.path == UGC_UFFD_PATH_SYSCALL_USER_MODE_ONLY;
}

/* The copy backend falls back from SIGBUS to handler-thread delivery when the kernel does
 * not offer the SIGBUS feature (or UFFDGC_DISABLE masks it). */
static bool sigbus_delivery(const ugc_heap *heap) {
  return strcmp(heap->config.delivery, "thread") != 0 &&
         (ugc_uffd_caps_get()->features & UFFD_FEATURE_SIGBUS);
}

bool ugc_heap_syscalls_may_fault(const ugc_heap *heap, char *reason, size_t reason_len) {
  const char *why = NULL;
  if (!heap->backend->concurrent)
    why = NULL;
  else if (strcmp(heap->backend->name, "sigsegv") == 0)
    why = "pages not compacted yet are PROT_NONE, and a system call that touches one fails "
          "with EFAULT (the kernel raises no SIGSEGV for a kernel-mode access)";
  else if (user_mode_only())
    why = "userfaultfd is UFFD_USER_MODE_ONLY (an unprivileged process under "
          "vm.unprivileged_userfaultfd=0): kernel-mode accesses to pages not yet compacted are "
          "not handled, in either delivery mode";
  else if (sigbus_delivery(heap))
    why = "SIGBUS delivery cannot resolve a fault taken inside a system call";
  if (reason && reason_len)
    snprintf(reason, reason_len, "%s", why ? why : "");
  return why != NULL;
}

void ugc_kernel_access_report(const ugc_heap *heap) {
  if (!heap->config.trace || !heap->backend->concurrent || !user_mode_only())
    return;
  fprintf(heap->config.trace_file ? heap->config.trace_file : stderr,
          "uffdgc: backend %s delivery=%s: userfaultfd opened with UFFD_USER_MODE_ONLY "
          "(no privilege for more under vm.unprivileged_userfaultfd=0): system calls into "
          "heap objects fail with EFAULT while a compaction is in flight, even with thread "
          "delivery; see ugc_heap_syscalls_may_fault in docs/api.md\n",
          heap->backend->name, sigbus_delivery(heap) ? "sigbus" : "thread");
}
