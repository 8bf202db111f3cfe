/*
 * SCM_RIGHTS for the native helpers (host-runner.c, wl-client.c, x11-client.c): putting fds
 * on a sendmsg and taking them off a recvmsg. The one piece of socket code all three share,
 * written once because its alignment rules are easy to get subtly wrong (cmsg(3): the control
 * buffer must be aligned for struct cmsghdr, sized with CMSG_SPACE, and its header's length
 * with CMSG_LEN; a kernel may deliver several SCM_RIGHTS headers, unix(7)).
 *
 * Header-only (static functions): native/build.ts hashes this file with each .c that
 * includes it, so a change here rebuilds them.
 */
#ifndef SHMLAB_SCM_RIGHTS_H
#define SHMLAB_SCM_RIGHTS_H

#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The most fds any helper passes in one message (libwayland's own limit is 28). */
#define SCM_MAX_FDS 28

/* A control buffer big enough for SCM_MAX_FDS fds, aligned for struct cmsghdr. */
union scm_buf {
  char buf[CMSG_SPACE(sizeof(int) * SCM_MAX_FDS)];
  struct cmsghdr align;
};

/*
 * Attaches fds[0..nfds) to `m` as one SCM_RIGHTS header in `u` (nothing when nfds is 0).
 * Returns -1 when nfds is out of range, else 0.
 */
static inline int scm_attach(struct msghdr *m, union scm_buf *u, const int *fds, size_t nfds) {
  if (nfds == 0) {
    m->msg_control = NULL;
    m->msg_controllen = 0;
    return 0;
  }
  if (nfds > SCM_MAX_FDS) return -1;
  memset(u, 0, sizeof *u);
  m->msg_control = u->buf;
  m->msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
  struct cmsghdr *c = CMSG_FIRSTHDR(m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  return 0;
}

/* Prepares `m` to receive up to SCM_MAX_FDS fds into `u`. */
static inline void scm_expect(struct msghdr *m, union scm_buf *u) {
  m->msg_control = u->buf;
  m->msg_controllen = sizeof u->buf;
}

/*
 * Takes the fds a recvmsg delivered into `m`: the first `max` go to fds[], any beyond are
 * closed (an fd nobody keeps would leak). Returns how many were stored.
 */
static inline size_t scm_take(struct msghdr *m, int *fds, size_t max) {
  size_t n = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (n < max) fds[n++] = fd;
      else close(fd);
    }
  }
  return n;
}

#endif
