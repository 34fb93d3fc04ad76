/* The flip of the memfd space provider (heap/file_space.c) never leaves a hole in the heap's
 * reserved range: another thread's mmap(NULL, ...) during a flip could land in it, and the
 * flip's fixed mappings would then replace that memory. (In test_update_pages this zeroed
 * a malloc arena's header created by another thread: the next fork() wrote to address 0
 * in glibc's __malloc_fork_lock_parent, or hung on a garbage arena lock.)
 *
 * A thread maps and unmaps regions without an address hint as fast as it can while the main
 * thread flips and finishes the space; none of them may ever land inside the heap's range
 * or its from-space reservation. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "heap/file_space.h"
#include "heap/vm.h"
#include "os/memfd.h"
#include "test.h"

enum { RESERVED = 1 << 30, PROBE_BYTES = 2 << 20, FLIPS = 400 };

static uintptr_t heap_base, from_base;
static atomic_bool stop;
static atomic_ulong intruders, probes;

static bool inside(uintptr_t p, uintptr_t base) {
  return p + PROBE_BYTES > base && p < base + RESERVED;
}

static void *prober(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    void *p = mmap(NULL, PROBE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      continue;
    atomic_fetch_add(&probes, 1);
    if (inside((uintptr_t)p, heap_base) || inside((uintptr_t)p, from_base))
      atomic_fetch_add(&intruders, 1);
    munmap(p, PROBE_BYTES);
  }
  return NULL;
}

/* Fills the free address space above `floor` with inaccessible mappings (kept until exit),
 * so that a hole in the heap's range would be the first place mmap picks, as in a process
 * whose threads and malloc arenas have used up the space above the heap. */
static void fill_above(uintptr_t floor) {
  for (size_t size = (size_t)1 << 30; size >= 4096; size /= 2)
    for (;;) {
      void *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED)
        break;
      if ((uintptr_t)p < floor) {
        munmap(p, size);
        break;
      }
    }
}

int main(void) {
  ugc_memfd probe_file = {.fd = -1};
  if (ugc_memfd_create(&probe_file, "probe", 4096) != 0)
    SKIP("memfd_create unavailable");
  ugc_memfd_close(&probe_file);

  void *base = ugc_vm_reserve_aligned(RESERVED, RESERVED);
  void *from = ugc_vm_reserve_aligned(RESERVED, RESERVED);
  REQUIRE(base && from);
  REQUIRE(ugc_vm_map_fixed(base, RESERVED, true) == 0);
  heap_base = (uintptr_t)base;
  from_base = (uintptr_t)from;
  fill_above(heap_base > from_base ? heap_base : from_base);
  ugc_file_space fs;
  ugc_file_space_init(&fs, heap_base, RESERVED, from_base, false);

  pthread_t thread;
  REQUIRE(pthread_create(&thread, NULL, prober, NULL) == 0);
  for (int i = 0; i < FLIPS; i++) {
    size_t data_bytes = (size_t)(1 + i % 7) << 20;
    REQUIRE(ugc_file_space_flip(&fs, data_bytes) == 0);
    memset(fs.alias, 0x5a, 4096); /* the build writes through the alias */
    CHECK(*(volatile char *)heap_base == 0x5a);
    ugc_file_space_finish(&fs);
  }
  atomic_store(&stop, true);
  REQUIRE(pthread_join(thread, NULL) == 0);
  printf("%lu probe mappings, %lu inside the heap's ranges\n", atomic_load(&probes),
         atomic_load(&intruders));
  CHECK(atomic_load(&probes) > 0);
  CHECK_EQ_U64(atomic_load(&intruders), 0);
  ugc_file_space_destroy(&fs);
  TEST_DONE();
}
