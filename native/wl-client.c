/*
 * wl-client: one real Wayland client process for shmlab's real-compositor judge.
 *
 * Deliberately NOT built on libwayland-client: a hostile client must be able to send what
 * libwayland-client refuses (short messages, lying sizes, fds no argument asks for), so this
 * process only owns the Unix socket and real memory (memfds, mappings) and does exactly
 * what Node tells it to. The Wayland wire format is encoded and decoded in Node
 * (protocol/wire.ts); bytes and fds travel here unchanged.
 *
 *   wl-client CMD_FIFO RESP_FIFO PARENT_PID
 *
 * Commands arrive on CMD_FIFO, one record each, and each gets exactly one reply on
 * RESP_FIFO, so Node can talk to it synchronously (fs.writeSync / fs.readSync block on a
 * FIFO); both FIFOs are opened O_RDWR here before READY is announced, so Node's opens never
 * block, and Node's read end sees EOF the moment this process dies. Everything the
 * compositor sends is forwarded asynchronously on stdout. All integers are host-endian.
 *
 *   command:  u32 op | u32 nargs | i64 args[nargs] | u32 datalen | data
 *   reply:    i32 status (>= 0, or -errno) | u32 nvals | i64 vals[nvals] | u32 datalen | data
 *   stdout:   u32 kind | u32 nfds | i32 fds[nfds] | u32 len | bytes
 *             kind 1 = bytes from the socket (fds: this process's numbers for the received
 *             SCM_RIGHTS fds), 2 = the socket closed (nfds 0, len 4, i32 errno or 0),
 *             3 = ready
 *
 * A SIGBUS or SIGSEGV in this process (a store into a truncated mapping) first writes the
 * reply  status = -(10000 + signo), vals = [si_addr, si_code]  and then dies of the signal
 * for real (the handler restores SIG_DFL and the faulting access runs again), so Node
 * learns the signal and address synchronously and the parent still sees WIFSIGNALED.
 *
 * FORK makes a child that serves the same commands over two pipes, through CHILD records
 * (it is a real process sharing the memfds and mappings, like fork(2) in a client); it
 * closes the Wayland socket, since the connection belongs to the parent.
 *
 * prctl(PR_SET_PDEATHSIG, SIGKILL): if Node dies, so does every helper.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scm-rights.h"

enum {
  OP_CONNECT = 1,
  OP_SEND = 2,
  OP_MEMFD = 3,
  OP_FTRUNCATE = 4,
  OP_FALLOCATE = 5,
  OP_ADD_SEALS = 6,
  OP_GET_SEALS = 7,
  OP_FSTAT_SIZE = 8,
  OP_CLOSE = 9,
  OP_DUP = 10,
  OP_PIPE = 11,
  OP_PWRITE = 12,
  OP_PREAD = 13,
  OP_MMAP = 14,
  OP_MUNMAP = 15,
  OP_STORE = 16,
  OP_LOAD = 17,
  OP_FORK = 18,
  OP_CHILD = 19,
  OP_EXIT = 20,
  OP_SHUTDOWN = 21,
  OP_MADVISE = 22,
  OP_MREMAP = 23,
  OP_LISTEN = 24,
};

#define MAX_ARGS 8
#define MAX_DATA (16 * 1024 * 1024)
#define MAX_FDS 28
#define MAX_CHILDREN 16

static int resp_fd = -1;  /* where replies (and the dying signal's reply) go */
static int sock = -1;     /* the Wayland connection, -1 before CONNECT / after close */
static int sock_eof = 0;  /* the closed record has been queued */

static struct {
  pid_t pid;
  int in, out; /* in: our write end of the child's commands; out: our read end of replies */
} children[MAX_CHILDREN];

/* ---- replies -------------------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, void *p, size_t n) {
  char *c = p;
  while (n > 0) {
    ssize_t r = read(fd, c, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) return 0;
    c += r;
    n -= (size_t)r;
  }
  return 1;
}

static void reply(int32_t status, uint32_t nvals, const int64_t *vals, const void *data,
                  uint32_t len) {
  /* one write where it fits, so a reply is never half-written when a signal strikes later */
  size_t total = 4 + 4 + 8 * (size_t)nvals + 4 + len;
  char *buf = malloc(total);
  if (!buf) _exit(70);
  memcpy(buf, &status, 4);
  memcpy(buf + 4, &nvals, 4);
  if (nvals) memcpy(buf + 8, vals, 8 * (size_t)nvals);
  memcpy(buf + 8 + 8 * nvals, &len, 4);
  if (len) memcpy(buf + 12 + 8 * nvals, data, len);
  if (write_all(resp_fd, buf, total) < 0) _exit(71);
  free(buf);
}

static void reply_status(int64_t r) {
  if (r < 0) reply(-errno, 0, NULL, NULL, 0);
  else {
    int64_t v = r;
    reply(0, 1, &v, NULL, 0);
  }
}

static void on_fatal(int signo, siginfo_t *si, void *uc) {
  (void)uc;
  /* async-signal-safe: a fixed buffer and write(2) */
  char buf[4 + 4 + 16 + 4];
  int32_t status = -(10000 + signo);
  uint32_t nvals = 2, len = 0;
  int64_t addr = (int64_t)(intptr_t)si->si_addr, code = si->si_code;
  memcpy(buf, &status, 4);
  memcpy(buf + 4, &nvals, 4);
  memcpy(buf + 8, &addr, 8);
  memcpy(buf + 16, &code, 8);
  memcpy(buf + 24, &len, 4);
  if (resp_fd >= 0) {
    ssize_t w = write(resp_fd, buf, sizeof buf);
    (void)w;
  }
  signal(signo, SIG_DFL); /* the access runs again and kills us with the same signal */
}

/* ---- events to Node (stdout, non-blocking, buffered) ---------------------------------- */

static char *outbuf;
static size_t outlen, outcap;

static void out_append(const void *p, size_t n) {
  if (outlen + n > outcap) {
    size_t cap = outcap ? outcap : 65536;
    while (cap < outlen + n) cap *= 2;
    outbuf = realloc(outbuf, cap);
    if (!outbuf) _exit(72);
    outcap = cap;
  }
  memcpy(outbuf + outlen, p, n);
  outlen += n;
}

static void out_record(uint32_t kind, const int *fds, uint32_t nfds, const void *data,
                       uint32_t len) {
  out_append(&kind, 4);
  out_append(&nfds, 4);
  for (uint32_t i = 0; i < nfds; i++) {
    int32_t f = fds[i];
    out_append(&f, 4);
  }
  out_append(&len, 4);
  if (len) out_append(data, len);
}

static void out_flush(void) {
  while (outlen > 0) {
    ssize_t w = write(1, outbuf, outlen);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      _exit(73); /* Node went away */
    }
    memmove(outbuf, outbuf + w, outlen - (size_t)w);
    outlen -= (size_t)w;
  }
}

static void sock_closed(int err) {
  int32_t e = err;
  out_record(2, NULL, 0, &e, 4);
  close(sock);
  sock = -1;
  sock_eof = 1;
}

static void sock_read(void) {
  char data[4096];
  union scm_buf cbuf;
  struct iovec iov = {data, sizeof data};
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  scm_expect(&mh, &cbuf);
  ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    sock_closed(errno);
    return;
  }
  int fds[MAX_FDS];
  uint32_t nfds = (uint32_t)scm_take(&mh, fds, MAX_FDS);
  if (n == 0 && nfds == 0) {
    sock_closed(0);
    return;
  }
  out_record(1, fds, nfds, data, (uint32_t)n);
}

/* ---- commands ------------------------------------------------------------------------- */

struct cmd {
  uint32_t op, nargs;
  int64_t a[MAX_ARGS];
  uint32_t len;
  char *data;
};

/* 1: a command, 0: EOF, -1: malformed */
static int read_cmd(int fd, struct cmd *c) {
  int r = read_all(fd, &c->op, 4);
  if (r <= 0) return r;
  if (read_all(fd, &c->nargs, 4) <= 0 || c->nargs > MAX_ARGS) return -1;
  memset(c->a, 0, sizeof c->a);
  if (c->nargs && read_all(fd, c->a, 8 * (size_t)c->nargs) <= 0) return -1;
  if (read_all(fd, &c->len, 4) <= 0 || c->len > MAX_DATA) return -1;
  c->data = malloc(c->len + 1);
  if (!c->data) return -1;
  if (c->len && read_all(fd, c->data, c->len) <= 0) return -1;
  c->data[c->len] = 0;
  return 1;
}

static void do_connect(struct cmd *c) {
  struct sockaddr_un sa = {0};
  sa.sun_family = AF_UNIX;
  if (c->len >= sizeof sa.sun_path) {
    reply(-ENAMETOOLONG, 0, NULL, NULL, 0);
    return;
  }
  memcpy(sa.sun_path, c->data, c->len);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    if (s >= 0) close(s);
    reply(-e, 0, NULL, NULL, 0);
    return;
  }
  sock = s;
  sock_eof = 0;
  reply(0, 0, NULL, NULL, 0);
}

/*
 * LISTEN path: bind, listen, and accept ONE peer (blocking, at most a[0] ms), which then
 * is this helper's connection. Only tests use it, to pass fds between two helpers with no
 * compositor in between.
 */
static void do_listen(struct cmd *c) {
  struct sockaddr_un sa = {0};
  sa.sun_family = AF_UNIX;
  if (c->len >= sizeof sa.sun_path) {
    reply(-ENAMETOOLONG, 0, NULL, NULL, 0);
    return;
  }
  memcpy(sa.sun_path, c->data, c->len);
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0) {
    int e = errno;
    if (l >= 0) close(l);
    reply(-e, 0, NULL, NULL, 0);
    return;
  }
  /* announce that the socket exists before blocking in accept */
  int64_t zero = 0;
  reply(0, 1, &zero, NULL, 0);
  struct pollfd p = {l, POLLIN, 0};
  int s = poll(&p, 1, (int)c->a[0]) > 0 ? accept4(l, NULL, NULL, SOCK_CLOEXEC) : -1;
  int e = errno;
  close(l);
  if (s < 0) {
    reply(-(e ? e : ETIMEDOUT), 0, NULL, NULL, 0);
    return;
  }
  sock = s;
  sock_eof = 0;
  reply(0, 0, NULL, NULL, 0);
}

static void do_send(struct cmd *c) {
  if (sock < 0) {
    reply(-ENOTCONN, 0, NULL, NULL, 0);
    return;
  }
  uint32_t nfds = c->nargs;
  union scm_buf cbuf;
  struct iovec iov = {c->data, c->len};
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  int fds[MAX_ARGS];
  for (uint32_t i = 0; i < nfds && i < MAX_ARGS; i++) fds[i] = (int)c->a[i];
  scm_attach(&mh, &cbuf, fds, nfds);
  size_t sent = 0;
  int waited = 0;
  while (sent < c->len || (c->len == 0 && mh.msg_control)) {
    ssize_t n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN && waited < 50) {
        /* the compositor is not reading: wait for room, at most ~5 s in all */
        struct pollfd p = {sock, POLLOUT, 0};
        poll(&p, 1, 100);
        waited++;
        continue;
      }
      reply(-errno, 0, NULL, NULL, 0);
      return;
    }
    sent += (size_t)n;
    mh.msg_control = NULL; /* fds go with the first bytes only */
    mh.msg_controllen = 0;
    iov.iov_base = c->data + sent;
    iov.iov_len = c->len - sent;
  }
  int64_t v = (int64_t)sent;
  reply(0, 1, &v, NULL, 0);
}

static void serve(int in, int out);

static void do_fork(int in, int out) {
  int slot = -1;
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (children[i].pid == 0) {
      slot = i;
      break;
    }
  int to_child[2], from_child[2];
  if (slot < 0) {
    reply(-EAGAIN, 0, NULL, NULL, 0);
    return;
  }
  if (pipe2(to_child, O_CLOEXEC) < 0) {
    reply(-errno, 0, NULL, NULL, 0);
    return;
  }
  if (pipe2(from_child, O_CLOEXEC) < 0) {
    int e = errno;
    close(to_child[0]);
    close(to_child[1]);
    reply(-e, 0, NULL, NULL, 0);
    return;
  }
  pid_t pid = fork();
  if (pid < 0) {
    reply(-errno, 0, NULL, NULL, 0);
    return;
  }
  if (pid == 0) {
    /* the connection belongs to the parent; the child keeps the memfds and mappings */
    if (sock >= 0) close(sock);
    sock = -1;
    close(in);
    close(out);
    close(to_child[1]);
    close(from_child[0]);
    for (int i = 0; i < MAX_CHILDREN; i++)
      if (children[i].pid) {
        close(children[i].in);
        close(children[i].out);
        children[i].pid = 0;
      }
    outlen = 0;
    resp_fd = from_child[1];
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    serve(to_child[0], from_child[1]);
    _exit(0);
  }
  close(to_child[0]);
  close(from_child[1]);
  children[slot].pid = pid;
  children[slot].in = to_child[1];
  children[slot].out = from_child[0];
  int64_t v = pid;
  reply(0, 1, &v, NULL, 0);
}

/* CHILD [pid] data=inner command: forwards it and relays the child's reply verbatim. */
static void do_child(struct cmd *c) {
  int slot = -1;
  for (int i = 0; i < MAX_CHILDREN; i++)
    if (children[i].pid && children[i].pid == (pid_t)c->a[0]) slot = i;
  if (slot < 0) {
    reply(-ESRCH, 0, NULL, NULL, 0);
    return;
  }
  if (write_all(children[slot].in, c->data, c->len) < 0) goto dead;
  int32_t status;
  uint32_t nvals, len;
  int64_t vals[MAX_ARGS];
  if (read_all(children[slot].out, &status, 4) <= 0) goto dead;
  if (read_all(children[slot].out, &nvals, 4) <= 0 || nvals > MAX_ARGS) goto dead;
  if (nvals && read_all(children[slot].out, vals, 8 * (size_t)nvals) <= 0) goto dead;
  if (read_all(children[slot].out, &len, 4) <= 0 || len > MAX_DATA) goto dead;
  char *data = malloc(len + 1);
  if (!data || (len && read_all(children[slot].out, data, len) <= 0)) {
    free(data);
    goto dead;
  }
  reply(status, nvals, vals, data, len);
  free(data);
  if (status <= -10000) goto reap; /* it is dying of the signal it reported */
  uint32_t inner_op = 0;
  if (c->len >= 4) memcpy(&inner_op, c->data, 4);
  if (inner_op == OP_EXIT) goto reap;
  return;
dead:;
  {
    int st = 0;
    waitpid(children[slot].pid, &st, 0);
    int64_t v[2] = {WIFSIGNALED(st) ? WTERMSIG(st) : 0, WIFEXITED(st) ? WEXITSTATUS(st) : -1};
    reply(-ECHILD, 2, v, NULL, 0);
  }
reap:
  if (children[slot].pid) {
    int st;
    waitpid(children[slot].pid, &st, 0);
  }
  close(children[slot].in);
  close(children[slot].out);
  children[slot].pid = 0;
}

/* Runs one command; returns 0 to go on, 1 to exit. */
static int run(struct cmd *c, int in, int out) {
  int64_t *a = c->a;
  switch (c->op) {
    case OP_CONNECT: do_connect(c); break;
    case OP_SEND: do_send(c); break;
    case OP_LISTEN: do_listen(c); break;
    case OP_MEMFD: reply_status(memfd_create(c->data, (unsigned)a[0])); break;
    case OP_FTRUNCATE: reply_status(ftruncate((int)a[0], (off_t)a[1])); break;
    case OP_FALLOCATE: reply_status(fallocate((int)a[0], (int)a[1], (off_t)a[2], (off_t)a[3])); break;
    case OP_ADD_SEALS: reply_status(fcntl((int)a[0], F_ADD_SEALS, (int)a[1])); break;
    case OP_GET_SEALS: reply_status(fcntl((int)a[0], F_GET_SEALS)); break;
    case OP_FSTAT_SIZE: {
      struct stat st;
      if (fstat((int)a[0], &st) < 0) reply_status(-1);
      else reply_status(st.st_size);
      break;
    }
    case OP_CLOSE: reply_status(close((int)a[0])); break;
    case OP_DUP: reply_status(fcntl((int)a[0], F_DUPFD_CLOEXEC, 3)); break;
    case OP_PIPE: {
      int p[2];
      if (pipe2(p, O_CLOEXEC) < 0) reply_status(-1);
      else {
        int64_t v[2] = {p[0], p[1]};
        reply(0, 2, v, NULL, 0);
      }
      break;
    }
    case OP_PWRITE: reply_status(pwrite((int)a[0], c->data, c->len, (off_t)a[1])); break;
    case OP_PREAD: {
      size_t n = (size_t)a[1];
      if (n > MAX_DATA) {
        reply(-EINVAL, 0, NULL, NULL, 0);
        break;
      }
      char *buf = malloc(n ? n : 1);
      ssize_t r = buf ? pread((int)a[0], buf, n, (off_t)a[2]) : -1;
      if (r < 0) reply_status(-1);
      else reply(0, 0, NULL, buf, (uint32_t)r);
      free(buf);
      break;
    }
    case OP_MMAP: {
      void *p = mmap((void *)(intptr_t)a[0], (size_t)a[1], (int)a[2], (int)a[3], (int)a[4],
                     (off_t)a[5]);
      if (p == MAP_FAILED) reply_status(-1);
      else reply_status((int64_t)(intptr_t)p);
      break;
    }
    case OP_MUNMAP: reply_status(munmap((void *)(intptr_t)a[0], (size_t)a[1])); break;
    case OP_MADVISE: reply_status(madvise((void *)(intptr_t)a[0], (size_t)a[1], (int)a[2])); break;
    case OP_MREMAP: {
      void *p = mremap((void *)(intptr_t)a[0], (size_t)a[1], (size_t)a[2], (int)a[3],
                       (void *)(intptr_t)a[4]);
      if (p == MAP_FAILED) reply_status(-1);
      else reply_status((int64_t)(intptr_t)p);
      break;
    }
    case OP_STORE:
      /* a real CPU store: a page past EOF raises SIGBUS here, in this process */
      memcpy((void *)(intptr_t)a[0], c->data, c->len);
      reply_status(0);
      break;
    case OP_LOAD: {
      size_t n = (size_t)a[1];
      if (n > MAX_DATA) {
        reply(-EINVAL, 0, NULL, NULL, 0);
        break;
      }
      char *buf = malloc(n ? n : 1);
      if (!buf) _exit(70);
      memcpy(buf, (void *)(intptr_t)a[0], n);
      reply(0, 0, NULL, buf, (uint32_t)n);
      free(buf);
      break;
    }
    case OP_FORK: do_fork(in, out); break;
    case OP_CHILD: do_child(c); break;
    case OP_EXIT:
      reply_status(0);
      return 1;
    case OP_SHUTDOWN:
      if (sock >= 0) {
        close(sock);
        sock = -1;
      }
      reply_status(0);
      break;
    default: reply(-ENOSYS, 0, NULL, NULL, 0);
  }
  return 0;
}

static void serve(int in, int out) {
  for (;;) {
    struct pollfd p[3];
    int n = 0;
    p[n++] = (struct pollfd){in, POLLIN, 0};
    int si = -1, oi = -1;
    /* stop reading the socket while Node has not taken 1 MiB of events (back-pressure) */
    if (sock >= 0 && outlen < (1 << 20)) {
      si = n;
      p[n++] = (struct pollfd){sock, POLLIN, 0};
    }
    if (outlen > 0) {
      oi = n;
      p[n++] = (struct pollfd){1, POLLOUT, 0};
    }
    if (poll(p, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(74);
    }
    if (si >= 0 && (p[si].revents & (POLLIN | POLLHUP | POLLERR))) sock_read();
    if (oi >= 0 && (p[oi].revents & (POLLOUT | POLLERR))) out_flush();
    if (p[0].revents & (POLLIN | POLLHUP)) {
      struct cmd c;
      int r = read_cmd(in, &c);
      if (r <= 0) _exit(r == 0 ? 0 : 75);
      int done = run(&c, in, out);
      free(c.data);
      if (done) {
        out_flush();
        _exit(0);
      }
    }
    if (outlen > 0) out_flush();
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: wl-client CMD_FIFO RESP_FIFO PARENT_PID\n");
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != (pid_t)atol(argv[3])) return 3; /* the parent died before prctl */
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {0};
  sa.sa_sigaction = on_fatal;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGBUS, &sa, NULL);
  sigaction(SIGSEGV, &sa, NULL);
  /* Node cannot make FIFOs; it gives their paths in a private 0700 directory */
  if ((mkfifo(argv[1], 0600) < 0 && errno != EEXIST) || (mkfifo(argv[2], 0600) < 0 && errno != EEXIST)) {
    perror("wl-client: mkfifo");
    return 4;
  }
  int in = open(argv[1], O_RDWR | O_CLOEXEC);
  int out = open(argv[2], O_RDWR | O_CLOEXEC);
  if (in < 0 || out < 0) {
    perror("wl-client: open fifo");
    return 4;
  }
  resp_fd = out;
  int fl = fcntl(1, F_GETFL);
  fcntl(1, F_SETFL, fl | O_NONBLOCK);
  out_record(3, NULL, 0, NULL, 0);
  out_flush();
  serve(in, out);
  return 0;
}
