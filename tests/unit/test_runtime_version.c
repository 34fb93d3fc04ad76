/* The header's version macros match CMake's project VERSION (passed in as
 * UGC_PROJECT_VERSION by tests/CMakeLists.txt), and the library reports the same. */
#include <string.h>

#include "test.h"
#include "uffdgc.h"

#define STRINGIFY2(x) #x
#define STRINGIFY(x) STRINGIFY2(x)

int main(void) {
  const char *header = STRINGIFY(UGC_VERSION_MAJOR) "." STRINGIFY(UGC_VERSION_MINOR) "." STRINGIFY(
      UGC_VERSION_PATCH);
  printf("header %s, CMake %s, library %u\n", header, UGC_PROJECT_VERSION, ugc_version());
  CHECK(strcmp(header, UGC_PROJECT_VERSION) == 0);
  CHECK_EQ_U64(ugc_version(), UGC_VERSION);
  CHECK_EQ_U64(UGC_VERSION,
               UGC_VERSION_MAJOR * 10000 + UGC_VERSION_MINOR * 100 + UGC_VERSION_PATCH);
  TEST_DONE();
}
