/* Error messages: long ones are not cut at 256 bytes, and one too long for the buffer is cut
 * after a whole word with "..."; a heap that cannot map its memory says why (errno name and
 * the rlimit behind it: RLIMIT_AS, or RLIMIT_MEMLOCK under mlockall(MCL_FUTURE)). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "child.h"
#include "fixture.h"

static void words(char *out, size_t length) {
  static const char *const pool[] = {"alpha", "beta", "gamma", "delta", "epsilon"};
  size_t at = 0;
  for (int i = 0; at + 9 < length; i++)
    at += (size_t)sprintf(out + at, "%s ", pool[i % 5]);
  out[at ? at - 1 : 0] = 0;
}

static void test_long_messages(ugc_heap *heap) {
  /* 300 bytes of name: the message used to stop before the cause. */
  char name[1200];
  words(name, 300);
  ugc_type_desc desc = {.name = name, .layout = (ugc_layout)99};
  ugc_error error;
  CHECK(ugc_type_register(heap, &desc, &error) == 0);
  CHECK(strstr(error.message, name) != NULL);
  CHECK(strstr(error.message, "unknown layout 99") != NULL);
  CHECK(strlen(error.message) > 256);

  /* Too long for any buffer: cut after a whole word, and said so with "...". */
  words(name, sizeof name);
  CHECK(ugc_type_register(heap, &desc, &error) == 0);
  size_t length = strlen(error.message);
  CHECK(length < sizeof error.message && length > sizeof error.message - 16);
  CHECK(length >= 3 && strcmp(error.message + length - 3, "...") == 0);
  char full[2048];
  snprintf(full, sizeof full, "ugc_type_register: type \"%s\": unknown layout 99", name);
  size_t kept = length - 3;
  CHECK(strncmp(error.message, full, kept) == 0);
  CHECK(full[kept] == ' '); /* the next character of the full text starts a new word */
  CHECK(error.message[kept - 1] != ' ');
}

static void expect_create_failure(const char *want1, const char *want2, const char *want3) {
  ugc_error error;
  ugc_heap *heap = ugc_heap_create(NULL, &error);
  fprintf(stderr, "%s\n", heap ? "(created)" : error.message);
  if (heap) {
    ugc_heap_destroy(heap);
    _exit(2);
  }
  _exit(strstr(error.message, want1) && strstr(error.message, want2) && strstr(error.message, want3)
            ? 0
            : 3);
}

/* The address space just above what the process uses: the type table (its first mapping)
 * cannot fit. */
static void under_address_space_limit(void *unused) {
  (void)unused;
  FILE *status = fopen("/proc/self/status", "r");
  REQUIRE(status);
  char line[256];
  unsigned long long vm_kib = 0;
  while (fgets(line, sizeof line, status))
    if (sscanf(line, "VmSize: %llu kB", &vm_kib) == 1)
      break;
  fclose(status);
  REQUIRE(vm_kib > 0);
  struct rlimit limit = {(vm_kib + 1024) << 10, (vm_kib + 1024) << 10};
  REQUIRE(setrlimit(RLIMIT_AS, &limit) == 0);
  expect_create_failure("cannot map the type table", "ENOMEM", "RLIMIT_AS");
}

static void under_memlock_limit(void *unused) {
  (void)unused;
  struct rlimit limit = {64 << 10, 64 << 10};
  REQUIRE(setrlimit(RLIMIT_MEMLOCK, &limit) == 0);
  REQUIRE(mlockall(MCL_FUTURE) == 0);
  expect_create_failure("cannot map the type table", "EAGAIN", "RLIMIT_MEMLOCK 64 KiB");
}

/* Whether mlock obeys RLIMIT_MEMLOCK here (not with CAP_IPC_LOCK, e.g. as root). */
static bool memlock_limit_applies(void) {
  struct rlimit old;
  getrlimit(RLIMIT_MEMLOCK, &old);
  struct rlimit zero = {0, old.rlim_max};
  if (setrlimit(RLIMIT_MEMLOCK, &zero) != 0)
    return false;
  static char page[4096] __attribute__((aligned(4096)));
  bool applies = mlock(page, sizeof page) != 0;
  if (!applies)
    munlock(page, sizeof page);
  setrlimit(RLIMIT_MEMLOCK, &old);
  return applies;
}

int main(void) {
  ugc_heap *heap = fixture_heap_sized(8 << 20, 0);
  REQUIRE(heap);
  test_long_messages(heap);
  ugc_heap_destroy(heap);

  char text[2048];
  int status = child_run(under_address_space_limit, NULL, text, sizeof text);
  printf("RLIMIT_AS: %s", text);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  if (memlock_limit_applies()) {
    status = child_run(under_memlock_limit, NULL, text, sizeof text);
    printf("RLIMIT_MEMLOCK: %s", text);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  } else {
    printf("RLIMIT_MEMLOCK case not run: this process may lock memory beyond the limit "
           "(CAP_IPC_LOCK); it runs unprivileged\n");
  }
  TEST_DONE();
}
