/* The marker's prefetch queue is a FIFO: items leave in the order they came, across the
 * ring's wrap-around, and full/empty are exact. */
#include "mark/prefetch_queue.h"
#include "test.h"

int main(void) {
  ugc_prefetch_queue queue = {0};
  CHECK(ugc_prefetch_queue_empty(&queue));
  CHECK(!ugc_prefetch_queue_full(&queue));

  /* Fill, then run as the marker does: when full, take the oldest before putting. */
  uintptr_t next_in = 1, next_out = 1;
  for (unsigned i = 0; i < UGC_PREFETCH_QUEUE_SIZE; i++)
    ugc_prefetch_queue_put(&queue, next_in++ * 8);
  CHECK(ugc_prefetch_queue_full(&queue));
  CHECK(!ugc_prefetch_queue_empty(&queue));
  for (unsigned i = 0; i < 5 * UGC_PREFETCH_QUEUE_SIZE + 3; i++) {
    CHECK_EQ_U64(ugc_prefetch_queue_take(&queue), next_out++ * 8);
    ugc_prefetch_queue_put(&queue, next_in++ * 8);
    CHECK(ugc_prefetch_queue_full(&queue));
  }
  /* Drain: the rest in order, then empty. */
  while (!ugc_prefetch_queue_empty(&queue))
    CHECK_EQ_U64(ugc_prefetch_queue_take(&queue), next_out++ * 8);
  CHECK_EQ_U64(next_out, next_in);

  /* Partly filled queues wrap too. */
  for (unsigned round = 0; round < 3 * UGC_PREFETCH_QUEUE_SIZE; round++) {
    unsigned n = round % UGC_PREFETCH_QUEUE_SIZE + 1;
    for (unsigned i = 0; i < n; i++)
      ugc_prefetch_queue_put(&queue, next_in++);
    CHECK(ugc_prefetch_queue_full(&queue) == (n == UGC_PREFETCH_QUEUE_SIZE));
    for (unsigned i = 0; i < n; i++)
      CHECK_EQ_U64(ugc_prefetch_queue_take(&queue), next_out++);
    CHECK(ugc_prefetch_queue_empty(&queue));
  }
  TEST_DONE();
}
