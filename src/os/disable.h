/* UFFDGC_DISABLE: a comma-separated list of kernel features and paths the library must act
 * as if this kernel lacked, so that tests can exercise every fallback on a kernel that has
 * everything. Parsed once, on first use; later changes to the environment are ignored.
 *
 * Known names (anything else makes heap creation fail, and gets one warning on stderr
 * naming the bad token from the other users, such as uffdgc-probe):
 *   uffd            no userfaultfd at all (probe reports it unavailable)
 *   dev             do not open /dev/userfaultfd
 *   syscall         do not call the userfaultfd system call
 *   user_mode_only  never fall back to UFFD_USER_MODE_ONLY
 *   sigbus          no UFFD_FEATURE_SIGBUS delivery (SIGBUS-mode fault handling)
 *   thread          no handler-thread delivery
 *   minor           no minor faults (UFFD_FEATURE_MINOR_*, register mode MINOR, CONTINUE)
 *   move            no UFFD_FEATURE_MOVE / UFFDIO_MOVE
 *   wp              no write-protect (PAGEFAULT_FLAG_WP, WP_*, register mode WP)
 *   poison          no UFFD_FEATURE_POISON / UFFDIO_POISON
 *   thread_id       no UFFD_FEATURE_THREAD_ID
 *   shmem           no userfaultfd on shmem (MISSING_SHMEM, MINOR_SHMEM)
 *   dontunmap       no mremap(MREMAP_DONTUNMAP)
 *   thp             no transparent huge pages (MADV_HUGEPAGE becomes MADV_NOHUGEPAGE)
 *   memfd           no memfd_create (and so no shmem features either)
 *   copy, sigsegv   backends by name (the backend registry consults these)
 * Names are case-sensitive; spaces around tokens are ignored; "all" is not a name.
 */
#ifndef UGC_OS_DISABLE_H
#define UGC_OS_DISABLE_H

#include <stdbool.h>
#include <stddef.h>

/* True if `name` appears in UFFDGC_DISABLE (parsed once, thread-safe). */
bool ugc_feature_disabled(const char *name);

/* True if `name` is one of the names documented above. */
bool ugc_feature_name_known(const char *name);

/* Whether every name in the comma-separated `list` is known; if not, the first unknown one
 * goes to bad_name. Heap creation uses it to refuse a bad UFFDGC_DISABLE. */
bool ugc_disable_list_check(const char *list, char *bad_name, size_t bad_len);

/* The known names, comma-separated, for messages. */
#define UGC_DISABLE_KNOWN_NAMES                                                                    \
  "uffd, dev, syscall, user_mode_only, sigbus, thread, minor, move, wp, poison, thread_id, "       \
  "shmem, dontunmap, thp, memfd, copy, sigsegv"

/* The raw UFFDGC_DISABLE value seen at first use ("" when unset); for reports. */
const char *ugc_disable_list(void);

#endif
