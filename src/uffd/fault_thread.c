#include "uffd/fault_thread.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "os/disable.h"
#include "os/signals.h"

#define MSGS_PER_READ 16

static void bump(uint64_t *c, uint64_t by) {
  __atomic_fetch_add(c, by, __ATOMIC_RELAXED);
}

/* Reads what is queued and dispatches it. Returns false on a fatal read error. */
static bool drain(ugc_fault_thread *t) {
  struct uffd_msg msgs[MSGS_PER_READ];
  for (;;) {
    ssize_t n = read(t->uffd, msgs, sizeof msgs);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN) { /* normal after POLLIN: someone resolved it first */
        bump(&t->eagain, 1);
        return true;
      }
      bump(&t->errors, 1);
      return false;
    }
    bump(&t->reads, 1);
    size_t count = (size_t)n / sizeof msgs[0];
    for (size_t i = 0; i < count; i++) {
      if (msgs[i].event != UFFD_EVENT_PAGEFAULT) {
        bump(&t->events, 1);
        continue;
      }
      ugc_uffd_fault f = {.addr = (void *)(uintptr_t)msgs[i].arg.pagefault.address,
                          .flags = (unsigned)msgs[i].arg.pagefault.flags,
                          .tid = msgs[i].arg.pagefault.feat.ptid};
      bump(&t->faults, 1);
      t->fn(t->ctx, &f);
    }
    if (count < MSGS_PER_READ)
      return true; /* queue drained */
  }
}

static void *thread_main(void *arg) {
  ugc_fault_thread *t = arg;
  struct pollfd fds[2] = {{.fd = t->uffd, .events = POLLIN}, {.fd = t->stop_fd, .events = POLLIN}};
  for (;;) {
    int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      bump(&t->errors, 1);
      break;
    }
    if (fds[1].revents)
      break; /* stop requested */
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      bump(&t->errors, 1);
      break;
    }
    if ((fds[0].revents & POLLIN) && !drain(t))
      break;
  }
  return NULL;
}

int ugc_fault_thread_start(ugc_fault_thread *t, const ugc_uffd *u, ugc_uffd_fault_fn fn,
                           void *ctx) {
  memset(t, 0, sizeof *t);
  t->stop_fd = -1;
  if (ugc_feature_disabled("thread"))
    return -EOPNOTSUPP;
  if (!fn || u->fd < 0 || !(fcntl(u->fd, F_GETFL) & O_NONBLOCK))
    return -EINVAL;
  t->uffd = u->fd;
  t->fn = fn;
  t->ctx = ctx;
  t->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (t->stop_fd < 0)
    return -errno;

  /* The handler thread must never take the process's asynchronous signals. */
  int rc = ugc_thread_create_quiet(&t->thread, thread_main, t, "uffdgc-fault");
  if (rc != 0) {
    close(t->stop_fd);
    t->stop_fd = -1;
    return -rc;
  }
  t->running = true;
  return 0;
}

int ugc_fault_thread_stop(ugc_fault_thread *t) {
  if (!t->running)
    return 0;
  uint64_t one = 1;
  if (write(t->stop_fd, &one, sizeof one) != sizeof one)
    return -errno;
  int rc = pthread_join(t->thread, NULL);
  close(t->stop_fd);
  t->stop_fd = -1;
  t->running = false;
  return -rc;
}

void ugc_fault_thread_forget(ugc_fault_thread *t) {
  if (t->stop_fd >= 0)
    close(t->stop_fd);
  t->stop_fd = -1;
  t->running = false;
}
