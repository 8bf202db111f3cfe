/*
 * shmlab X11 client helper: the hands of one real X11 client (real/x11-native.ts drives it).
 * It owns the client's Unix socket to the X server and its real memfds, and does exactly the
 * syscalls it is told to. It knows nothing of the X11 protocol: every request is encoded and
 * every reply decoded in TypeScript (real/x11-wire.ts), because a hostile client must be
 * able to put any bytes on the wire, and because Node cannot attach an fd to a Unix-socket
 * write (SCM_RIGHTS) — that is the one thing this helper exists for, beside the syscalls on
 * the pool file (ftruncate, fallocate, seals, a forked child that truncates).
 *
 * Run as `x11-client PARENT_PID`: it dies with its parent (PR_SET_PDEATHSIG) and exits 3 at
 * once if that parent is already gone.
 *
 * Line protocol, one command per stdin line, exactly one answer line on stdout each:
 *
 *   connect PATH                 -> ok | err ERRNO
 *   send HEX FD                  -> ok N | err ERRNO       (FD -1: no fd attached)
 *   recv MS                      -> data HEX | none | eof  (waits at most MS ms)
 *   shutdown                     -> ok                     (close the socket: client leaves)
 *   memfd FLAGS                  -> ok FD | err ERRNO      (memfd_create("shmlab-x11", FLAGS))
 *   pipe                         -> ok RFD WFD | err ERRNO
 *   ftruncate FD SIZE            -> ok | err ERRNO
 *   pwrite FD OFF HEX            -> ok N | err ERRNO
 *   seal FD BITS                 -> ok | err ERRNO         (fcntl F_ADD_SEALS)
 *   punch FD OFF LEN             -> ok | err ERRNO         (PUNCH_HOLE|KEEP_SIZE)
 *   close FD                     -> ok | err ERRNO
 *   dup FD                       -> ok NEWFD | err ERRNO
 *   forktrunc FD SIZE            -> ok PID | err ERRNO     (a child truncates, then exits)
 *   fstat FD                     -> ok SIZE | err ERRNO    (st_size)
 *   falloc FD OFF LEN            -> ok | err ERRNO         (fallocate mode 0: allocate)
 *   fork                         -> ok PID | err ERRNO     (a child that stays, with a copy
 *                                                           of the fd table as of now)
 *   childtrunc FD SIZE           -> ok | err ERRNO         (that child ftruncates its FD;
 *                                                           ESRCH: no child)
 *   childexit                    -> ok | err ESRCH         (that child exits; reaped)
 *   exit                         -> (exits 0)
 *
 * Errnos are printed by name (EPERM, EBADF...). A line it does not understand answers
 * "err EINVAL". PR_SET_PDEATHSIG(SIGKILL): if Node dies, the helper dies with it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scm-rights.h"

static int sock = -1;

static const char *errname(int e) {
  switch (e) {
  case EPERM: return "EPERM";
  case ENOENT: return "ENOENT";
  case EBADF: return "EBADF";
  case EAGAIN: return "EAGAIN";
  case ENOMEM: return "ENOMEM";
  case EACCES: return "EACCES";
  case EFAULT: return "EFAULT";
  case EBUSY: return "EBUSY";
  case EINVAL: return "EINVAL";
  case EMFILE: return "EMFILE";
  case EFBIG: return "EFBIG";
  case ENOSPC: return "ENOSPC";
  case ESPIPE: return "ESPIPE";
  case EPIPE: return "EPIPE";
  case ECONNREFUSED: return "ECONNREFUSED";
  case ECONNRESET: return "ECONNRESET";
  case ENOTCONN: return "ENOTCONN";
  case EOPNOTSUPP: return "EOPNOTSUPP";
  case ESRCH: return "ESRCH";
  default: return "EIO";
  }
}

static void reply_err(int e) { printf("err %s\n", errname(e)); }

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes HEX in place into bytes; returns the byte count or -1. */
static long unhex(char *s) {
  size_t n = strlen(s);
  if (n % 2) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    s[i] = (char)(hi << 4 | lo);
  }
  return (long)(n / 2);
}

static void print_hex(const unsigned char *b, size_t n) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    putchar(digits[b[i] >> 4]);
    putchar(digits[b[i] & 15]);
  }
}

static void do_connect(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) return reply_err(EINVAL);
  strcpy(a.sun_path, path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return reply_err(errno);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
    int e = errno;
    close(s);
    return reply_err(e);
  }
  sock = s;
  printf("ok\n");
}

/* One sendmsg with the whole buffer; the fd (if any) rides on its first byte. */
static void do_send(char *hex, int fd) {
  if (sock < 0) return reply_err(ENOTCONN);
  long n = unhex(hex);
  if (n < 0) return reply_err(EINVAL);
  struct iovec iov = {.iov_base = hex, .iov_len = (size_t)n};
  union scm_buf ctl;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  scm_attach(&m, &ctl, &fd, fd >= 0 ? 1 : 0);
  size_t done = 0;
  while (done < (size_t)n) {
    ssize_t w = sendmsg(sock, &m, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return reply_err(errno);
    }
    done += (size_t)w;
    iov.iov_base = hex + done;
    iov.iov_len = (size_t)n - done;
    m.msg_control = NULL;
    m.msg_controllen = 0;
  }
  printf("ok %ld\n", n);
}

static void do_recv(int ms) {
  static unsigned char buf[1 << 20];
  if (sock < 0) {
    printf("eof\n");
    return;
  }
  struct pollfd p = {.fd = sock, .events = POLLIN};
  int r = poll(&p, 1, ms);
  if (r < 0) return reply_err(errno);
  if (r == 0) {
    printf("none\n");
    return;
  }
  ssize_t n = recv(sock, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    printf("none\n");
    return;
  }
  if (n <= 0) {
    printf("eof\n");
    return;
  }
  printf("data ");
  print_hex(buf, (size_t)n);
  putchar('\n');
}

static void do_forktrunc(int fd, long size) {
  pid_t pid = fork();
  if (pid < 0) return reply_err(errno);
  if (pid == 0) _exit(ftruncate(fd, size) < 0 ? errno : 0);
  int st = 0;
  if (waitpid(pid, &st, 0) < 0) return reply_err(errno);
  if (WIFEXITED(st) && WEXITSTATUS(st) != 0) return reply_err(WEXITSTATUS(st));
  printf("ok %d\n", (int)pid);
}

/*
 * A forked child that stays (the fuzz programs' `fork`): it has the parent's fd table as of
 * the fork, so it can truncate a file the parent has closed since, as a real forked client
 * can. It serves one-line commands on a pipe ("t FD SIZE", "x") and answers each with an
 * errno (0: done) on another. It closes the X socket, which belongs to the parent, and dies
 * with the helper (PR_SET_PDEATHSIG is not inherited across fork, so it is set again).
 */
static pid_t child_pid = -1;
static int child_cmd = -1, child_ans = -1;

static void child_loop(int cmd, int ans) {
  FILE *in = fdopen(cmd, "r");
  char buf[128];
  while (in && fgets(buf, sizeof buf, in)) {
    int e = 0;
    int fd = -1;
    long size = 0;
    if (buf[0] == 'x') break;
    if (sscanf(buf, "t %d %ld", &fd, &size) == 2) e = ftruncate(fd, size) < 0 ? errno : 0;
    else e = EINVAL;
    if (write(ans, &e, sizeof e) != (ssize_t)sizeof e) break;
  }
  _exit(0);
}

static void do_fork(void) {
  if (child_pid > 0) return reply_err(EBUSY);
  int c[2], a[2];
  if (pipe(c) < 0) return reply_err(errno);
  if (pipe(a) < 0) {
    int e = errno;
    close(c[0]);
    close(c[1]);
    return reply_err(e);
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(c[0]), close(c[1]), close(a[0]), close(a[1]);
    return reply_err(e);
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (sock >= 0) close(sock);
    close(c[1]);
    close(a[0]);
    /* stdin and stdout are the helper's channel to Node: the child must not hold them. */
    close(0);
    close(1);
    child_loop(c[0], a[1]);
  }
  close(c[0]);
  close(a[1]);
  child_pid = pid;
  child_cmd = c[1];
  child_ans = a[0];
  printf("ok %d\n", (int)pid);
}

static void do_childtrunc(int fd, long size) {
  if (child_pid <= 0) return reply_err(ESRCH);
  char line[64];
  int n = snprintf(line, sizeof line, "t %d %ld\n", fd, size);
  int e = 0;
  if (write(child_cmd, line, (size_t)n) != n || read(child_ans, &e, sizeof e) != (ssize_t)sizeof e)
    return reply_err(ESRCH);
  if (e) return reply_err(e);
  printf("ok\n");
}

static void do_childexit(void) {
  if (child_pid <= 0) return reply_err(ESRCH);
  if (write(child_cmd, "x\n", 2) != 2) kill(child_pid, SIGKILL);
  waitpid(child_pid, NULL, 0);
  close(child_cmd);
  close(child_ans);
  child_pid = -1;
  child_cmd = child_ans = -1;
  printf("ok\n");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: x11-client PARENT_PID\n");
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* PR_SET_PDEATHSIG only covers a parent that dies after the call; one that died before it
   * left us reparented, and nobody would ever stop us. */
  if (getppid() != (pid_t)atol(argv[1])) return 3;
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  size_t cap = 0;
  char *line = NULL;
  ssize_t len;
  while ((len = getline(&line, &cap, stdin)) > 0) {
    if (line[len - 1] == '\n') line[len - 1] = 0;
    char *save = NULL;
    char *cmd = strtok_r(line, " ", &save);
    char *a1 = strtok_r(NULL, " ", &save);
    char *a2 = strtok_r(NULL, " ", &save);
    char *a3 = strtok_r(NULL, " ", &save);
    long n1 = a1 ? strtol(a1, NULL, 0) : 0, n2 = a2 ? strtol(a2, NULL, 0) : 0;
    if (!cmd) {
      reply_err(EINVAL);
    } else if (!strcmp(cmd, "connect") && a1) {
      do_connect(a1);
    } else if (!strcmp(cmd, "send") && a1 && a2) {
      do_send(a1, (int)n2);
    } else if (!strcmp(cmd, "recv") && a1) {
      do_recv((int)n1);
    } else if (!strcmp(cmd, "shutdown")) {
      if (sock >= 0) close(sock);
      sock = -1;
      printf("ok\n");
    } else if (!strcmp(cmd, "memfd") && a1) {
      int fd = memfd_create("shmlab-x11", (unsigned)n1);
      if (fd < 0) reply_err(errno);
      else printf("ok %d\n", fd);
    } else if (!strcmp(cmd, "pipe")) {
      int p[2];
      if (pipe(p) < 0) reply_err(errno);
      else printf("ok %d %d\n", p[0], p[1]);
    } else if (!strcmp(cmd, "ftruncate") && a1 && a2) {
      if (ftruncate((int)n1, n2) < 0) reply_err(errno);
      else printf("ok\n");
    } else if (!strcmp(cmd, "pwrite") && a1 && a2 && a3) {
      long n = unhex(a3);
      ssize_t w = n < 0 ? -1 : pwrite((int)n1, a3, (size_t)n, n2);
      if (n < 0) reply_err(EINVAL);
      else if (w < 0) reply_err(errno);
      else printf("ok %ld\n", (long)w);
    } else if (!strcmp(cmd, "seal") && a1 && a2) {
      if (fcntl((int)n1, F_ADD_SEALS, (int)n2) < 0) reply_err(errno);
      else printf("ok\n");
    } else if (!strcmp(cmd, "punch") && a1 && a2 && a3) {
      if (fallocate((int)n1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, n2, strtol(a3, NULL, 0)) < 0)
        reply_err(errno);
      else printf("ok\n");
    } else if (!strcmp(cmd, "close") && a1) {
      if (close((int)n1) < 0) reply_err(errno);
      else printf("ok\n");
    } else if (!strcmp(cmd, "dup") && a1) {
      int fd = dup((int)n1);
      if (fd < 0) reply_err(errno);
      else printf("ok %d\n", fd);
    } else if (!strcmp(cmd, "forktrunc") && a1 && a2) {
      do_forktrunc((int)n1, n2);
    } else if (!strcmp(cmd, "fstat") && a1) {
      struct stat st;
      if (fstat((int)n1, &st) < 0) reply_err(errno);
      else printf("ok %lld\n", (long long)st.st_size);
    } else if (!strcmp(cmd, "falloc") && a1 && a2 && a3) {
      if (fallocate((int)n1, 0, n2, strtol(a3, NULL, 0)) < 0) reply_err(errno);
      else printf("ok\n");
    } else if (!strcmp(cmd, "fork")) {
      do_fork();
    } else if (!strcmp(cmd, "childtrunc") && a1 && a2) {
      do_childtrunc((int)n1, n2);
    } else if (!strcmp(cmd, "childexit")) {
      do_childexit();
    } else if (!strcmp(cmd, "exit")) {
      break;
    } else {
      reply_err(EINVAL);
    }
    fflush(stdout);
  }
  free(line);
  return 0;
}
