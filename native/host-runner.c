/*
 * shmlab host runner: executes one kernel scenario script (docs/scenarios.md) on the REAL
 * Linux kernel and prints one JSON result per step, in exactly the result format of the
 * model (shm/scenario.ts StepResult). Built on demand by native/host.ts; see
 * docs/conformance.md.
 *
 * ## Processes
 *
 * The program itself is the DRIVER. Each scenario process is a real process forked from the
 * driver. It talks to the driver over an AF_UNIX SOCK_SEQPACKET socket dup2'ed to fd 1000
 * (CHAN_FD); every other fd >= 3 is closed, so the first memfd a scenario process creates is
 * fd 3, as in the model. fds 0-2 are inherited and never used. A `fork` step forks the real
 * process with clone(CLONE_PARENT|SIGCHLD) (plain fork semantics, but the new process is the
 * driver's child, so the driver can waitpid it and report the signal that killed it); the
 * driver hands the child a fresh channel with SCM_RIGHTS. `send_fd` passes the fd from the
 * sender to the driver and from the driver to the receiver with SCM_RIGHTS, so it lands on
 * the receiver's lowest free fd, as a real Wayland fd does. Every scenario process has
 * PR_SET_PDEATHSIG(SIGKILL): when the driver dies (or is killed by a timeout), they die too.
 *
 * ## Line protocol (stdin: Node -> driver)
 *
 * Node (native/host.ts) resolves every flag name to a number (shm/uapi.ts parseFlags) and
 * every signal name to its number; the driver resolves bindings, because only it knows the
 * fd numbers and addresses. One line per record, tokens separated by single spaces:
 *
 *   P <proc> <proc> ...            the initial processes (first line)
 *   S <proc> <op> <key>=<value>... one step, in script order
 *
 * A value is a decimal integer (may be negative), a `$name` binding reference, or a bare
 * token without spaces (memfd `name`, `handler`, `child`, `to`, `step`, RLE `data`). `as` is
 * `as=x` or, for pipe, `as=r,w`; `async=1` marks an async access. `$name` may be followed by
 * nothing else: `addr` and `offset` stay separate keys so that fault offsets are reported
 * against the base of the binding. A step whose syscall fails binds its `as` names to -1.
 *
 * ## Output (stdout: driver -> Node)
 *
 * Exactly one JSON object per S line, on its own line, flushed as soon as the step is done:
 * {"value":v}, {"value":v,"handled":[...]}, {"errno":"EPERM"},
 * {"signal":"SIGBUS","code":"BUS_ADRERR","offset":N}, {"killed":"SIGBUS"}, {"dead":true},
 * {"blocked":true}. Driver-specific choices the format leaves open:
 *  - an async step's own result is {"value":"started"}; `join` gives the access's result;
 *  - `join` and `uffd_read` wait 2 s, then give {"blocked":true} (the process lives on);
 *  - a synchronous step that does not answer within 3 s gives {"blocked":true} and its
 *    process is killed (later steps: {"dead":true});
 *  - a bad line (unknown op, unknown binding) gives {"errno":"EINVAL"} for that step.
 *
 * ## Driver <-> scenario process messages (SEQPACKET, one record each)
 *
 * Command: "<op> <key>=<value>..." with every binding already resolved to a number, with an
 * fd attached (SCM_RIGHTS) for `fork` (the child's channel) and `recv_fd` (the fd).
 * Reply: "<bind values, space separated>\n<result JSON>"; `send_fd` replies carry the fd;
 * `fork` replies carry the child's pid as the bind value.
 *
 * ## User accesses
 *
 * `load`/`store` touch memory one byte at a time through volatile pointers (so the faulting
 * address is exact) inside sigsetjmp(env, 1). Handlers are per process, per signal:
 *  - catch (initial): record si_signo/si_code/si_addr, siglongjmp out: the step's result is
 *    the signal with offset = si_addr - base of the step's address binding;
 *  - zero-page: mmap(MAP_FIXED|MAP_PRIVATE|MAP_ANONYMOUS) one page over the page of si_addr,
 *    record the fault in "handled" and return so the access retries;
 *  - default: SIG_DFL, the process really dies, the driver reports {"killed":...}.
 * `read`/`write` with an address are plain read(2)/write(2): kernel accesses, they return a
 * short count or EFAULT and never signal. Async accesses run in a pthread of the process with
 * their own (thread-local) jump buffer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/io_uring.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "scm-rights.h"

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x2
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#endif

#define CHAN_FD 1000
#define MAXMSG 200000
#define MAXARGS 32
#define MAXPROCS 64
#define MAXBINDS 256
#define MAXSLOTS 16
#define MAXHANDLED 256
#define PAGE 4096UL

/* ------------------------------------------------------------------ small helpers */

struct kv {
  char *k;
  char *v;
};
struct args {
  char *op;
  int n;
  struct kv kv[MAXARGS];
};

/* Splits "op k=v k=v" in place. */
static void parse_args(char *line, struct args *a) {
  a->n = 0;
  a->op = strtok(line, " \n");
  if (!a->op) a->op = "";
  char *t;
  while ((t = strtok(NULL, " \n")) && a->n < MAXARGS) {
    char *eq = strchr(t, '=');
    if (!eq) continue;
    *eq = 0;
    a->kv[a->n].k = t;
    a->kv[a->n].v = eq + 1;
    a->n++;
  }
}

static const char *arg_s(const struct args *a, const char *k) {
  for (int i = 0; i < a->n; i++)
    if (!strcmp(a->kv[i].k, k)) return a->kv[i].v;
  return NULL;
}

static long long arg_i(const struct args *a, const char *k, long long dflt) {
  const char *s = arg_s(a, k);
  if (!s || !*s) return dflt;
  if (*s == '-') return strtoll(s, NULL, 0);
  return (long long)strtoull(s, NULL, 0);
}

static const char *errno_name(int e) {
  switch (e) {
  case EPERM: return "EPERM";
  case ENOENT: return "ENOENT";
  case ESRCH: return "ESRCH";
  case EINTR: return "EINTR";
  case EBADF: return "EBADF";
  case EAGAIN: return "EAGAIN";
  case ENOMEM: return "ENOMEM";
  case EACCES: return "EACCES";
  case EFAULT: return "EFAULT";
  case EBUSY: return "EBUSY";
  case EEXIST: return "EEXIST";
  case ENODEV: return "ENODEV";
  case EINVAL: return "EINVAL";
  case EMFILE: return "EMFILE";
  case EFBIG: return "EFBIG";
  case ENOSPC: return "ENOSPC";
  case ESPIPE: return "ESPIPE";
  case EPIPE: return "EPIPE";
  case ENOSYS: return "ENOSYS";
  case EOVERFLOW: return "EOVERFLOW";
  case EOPNOTSUPP: return "EOPNOTSUPP";
  case ENOTTY: return "ENOTTY";
  case ETXTBSY: return "ETXTBSY";
  case ESTALE: return "ESTALE";
  case EIO: return "EIO";
  default: {
    static __thread char buf[16];
    snprintf(buf, sizeof buf, "E%d", e);
    return buf;
  }
  }
}

static const char *signal_name(int s) {
  switch (s) {
  case SIGBUS: return "SIGBUS";
  case SIGSEGV: return "SIGSEGV";
  case SIGKILL: return "SIGKILL";
  case SIGABRT: return "SIGABRT";
  case SIGPIPE: return "SIGPIPE";
  default: {
    static __thread char buf[16];
    snprintf(buf, sizeof buf, "SIG%d", s);
    return buf;
  }
  }
}

static const char *code_name(int sig, int code) {
  static __thread char buf[24];
  if (sig == SIGBUS) {
    switch (code) {
    case BUS_ADRALN: return "BUS_ADRALN";
    case BUS_ADRERR: return "BUS_ADRERR";
    case BUS_OBJERR: return "BUS_OBJERR";
    case BUS_MCEERR_AR: return "BUS_MCEERR_AR";
    }
  } else if (sig == SIGSEGV) {
    switch (code) {
    case SEGV_MAPERR: return "SEGV_MAPERR";
    case SEGV_ACCERR: return "SEGV_ACCERR";
    case 3: return "SEGV_BNDERR";
    case 4: return "SEGV_PKUERR";
    }
  }
  snprintf(buf, sizeof buf, "%d", code);
  return buf;
}

/* A growable string. */
struct sb {
  char *p;
  size_t n, cap;
};
static void sb_addf(struct sb *b, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    size_t room = b->cap - b->n;
    va_start(ap, fmt);
    int w = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
    va_end(ap);
    if (w < 0) return;
    if (b->p && (size_t)w < room) {
      b->n += (size_t)w;
      return;
    }
    size_t ncap = b->cap ? b->cap * 2 : 256;
    while (ncap < b->n + (size_t)w + 1) ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np) abort();
    b->p = np;
    b->cap = ncap;
  }
}

/* Run-length hex, as shm/scenario.ts rle(): "ab*4,00*4092", "" for none. */
static void sb_rle(struct sb *b, const unsigned char *d, size_t n) {
  sb_addf(b, "%s", "");
  size_t i = 0;
  while (i < n) {
    size_t j = i + 1;
    while (j < n && d[j] == d[i]) j++;
    sb_addf(b, "%s%02x*%zu", i ? "," : "", d[i], j - i);
    i = j;
  }
}

/* Decodes RLE into a fresh buffer; returns length or -1 on a bad token. */
static long unrle(const char *s, unsigned char **out) {
  size_t cap = 64, n = 0;
  unsigned char *buf = malloc(cap);
  if (!buf) abort();
  const char *p = s;
  while (*p) {
    char *end;
    unsigned long byte = strtoul(p, &end, 16);
    if (end != p + 2 || *end != '*' || byte > 255) {
      free(buf);
      return -1;
    }
    p = end + 1;
    unsigned long cnt = strtoul(p, &end, 10);
    if (end == p) {
      free(buf);
      return -1;
    }
    p = end;
    if (*p == ',') p++;
    if (n + cnt > cap) {
      while (n + cnt > cap) cap *= 2;
      buf = realloc(buf, cap);
      if (!buf) abort();
    }
    memset(buf + n, (int)byte, cnt);
    n += cnt;
  }
  *out = buf;
  return (long)n;
}

/* ------------------------------------------------------------------ messages */

/* Sends one record with an optional fd attached. */
static int send_msg(int sock, const char *data, size_t len, int fd) {
  struct iovec iov = {.iov_base = (void *)data, .iov_len = len ? len : 1};
  char dummy = 0;
  if (!len) iov.iov_base = &dummy;
  union scm_buf u;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  scm_attach(&mh, &u, &fd, fd >= 0 ? 1 : 0);
  ssize_t r;
  do r = sendmsg(sock, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -1 : 0;
}

/* Receives one record (NUL-terminated into buf); *fd gets an attached fd or -1. */
static ssize_t recv_msg(int sock, char *buf, size_t cap, int *fd) {
  struct iovec iov = {.iov_base = buf, .iov_len = cap - 1};
  union scm_buf u;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  scm_expect(&mh, &u);
  ssize_t r;
  do r = recvmsg(sock, &mh, 0);
  while (r < 0 && errno == EINTR);
  if (fd) *fd = -1;
  if (r <= 0) return r;
  buf[r] = 0;
  /* One fd is expected at most; any other is closed (scm_take). */
  scm_take(&mh, fd, fd ? 1 : 0);
  return r;
}

/* ================================================================== scenario process */

enum { H_CATCH, H_ZERO, H_DEFAULT };
static int handler_mode[2] = {H_CATCH, H_CATCH}; /* [0] SIGBUS, [1] SIGSEGV */

struct fault {
  int signo, code;
  uintptr_t addr;
};

/* Per-thread access state: the main thread and each async thread have their own. */
static __thread sigjmp_buf t_jb;
static __thread volatile int t_in_access;
static __thread struct fault t_fault;
static __thread struct fault t_handled[MAXHANDLED];
static __thread volatile int t_nhandled;

static void on_fault(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  if (!t_in_access) {
    /* A fault outside a scripted access: die of it, as an unprepared process would. */
    signal(sig, SIG_DFL);
    return;
  }
  int mode = handler_mode[sig == SIGBUS ? 0 : 1];
  uintptr_t a = (uintptr_t)si->si_addr;
  if (mode == H_ZERO && t_nhandled < MAXHANDLED) {
    /* Give up if the same page faults again right after being handled: the handler cannot
     * make progress (e.g. PROT_NONE over it would be a policy bug). */
    int again = t_nhandled > 0 && (t_handled[t_nhandled - 1].addr & ~(PAGE - 1)) == (a & ~(PAGE - 1));
    if (!again) {
      t_handled[t_nhandled].signo = sig;
      t_handled[t_nhandled].code = si->si_code;
      t_handled[t_nhandled].addr = a;
      void *pg = (void *)(a & ~(PAGE - 1));
      void *r = mmap(pg, PAGE, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (r != MAP_FAILED) {
        t_nhandled++;
        return;
      }
    }
  }
  t_fault.signo = sig;
  t_fault.code = si->si_code;
  t_fault.addr = a;
  t_in_access = 0;
  siglongjmp(t_jb, 1);
}

static void install_handler(int sig, int mode) {
  handler_mode[sig == SIGBUS ? 0 : 1] = mode;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  if (mode == H_DEFAULT) {
    sa.sa_handler = SIG_DFL;
  } else {
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  }
  sigaction(sig, &sa, NULL);
}

static void result_errno(struct sb *out, int e) { sb_addf(out, "{\"errno\":\"%s\"}", errno_name(e)); }

static void result_value(struct sb *out, long long v) { sb_addf(out, "{\"value\":%lld}", v); }

/* A user-mode load or store, byte by byte. base is the address binding, off the offset. */
static void user_access(int is_store, uintptr_t base, long long off, size_t len,
                        const unsigned char *src, struct sb *out) {
  unsigned char *volatile buf = NULL;
  if (!is_store) {
    buf = malloc(len ? len : 1);
    if (!buf) abort();
  }
  volatile unsigned char *p = (volatile unsigned char *)(base + (uintptr_t)off);
  t_nhandled = 0;
  if (sigsetjmp(t_jb, 1) == 0) {
    t_in_access = 1;
    for (size_t i = 0; i < len; i++) {
      if (is_store) p[i] = src[i];
      else buf[i] = p[i];
    }
    t_in_access = 0;
    sb_addf(out, "{\"value\":");
    if (is_store) {
      sb_addf(out, "%zu", len);
    } else {
      sb_addf(out, "\"");
      sb_rle(out, buf, len);
      sb_addf(out, "\"");
    }
    if (t_nhandled) {
      sb_addf(out, ",\"handled\":[");
      for (int i = 0; i < t_nhandled; i++)
        sb_addf(out, "%s{\"signal\":\"%s\",\"code\":\"%s\",\"offset\":%lld}", i ? "," : "",
                signal_name(t_handled[i].signo), code_name(t_handled[i].signo, t_handled[i].code),
                (long long)(t_handled[i].addr - base));
      sb_addf(out, "]");
    }
    sb_addf(out, "}");
  } else {
    sb_addf(out, "{\"signal\":\"%s\",\"code\":\"%s\",\"offset\":%lld}", signal_name(t_fault.signo),
            code_name(t_fault.signo, t_fault.code), (long long)(t_fault.addr - base));
  }
  free(buf);
}

/*
 * `touch`: one byte loaded (or stored) per page of [base+off, +len), and the minor faults
 * that took: getrusage(RUSAGE_SELF).ru_minflt read right before and after the loop. Nothing
 * inside the window allocates or touches a new page of its own (both rusage structs are
 * written before it, the loop's code and getrusage ran before it), so the delta is the
 * faults of the touched range: on Linux a read fault there maps up to fault_around_bytes of
 * cached neighbours (do_fault_around), which this makes observable. RUSAGE_SELF counts every
 * thread: a scenario must not run an async step at the same time.
 */
static void touch_pages(int is_store, uintptr_t base, long long off, size_t len, int fill,
                        struct sb *out) {
  struct rusage before, after;
  memset(&before, 0, sizeof before);
  memset(&after, 0, sizeof after);
  volatile unsigned char *p = (volatile unsigned char *)(base + (uintptr_t)off);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  t_nhandled = 0;
  getrusage(RUSAGE_SELF, &before); /* warm-up: the call's own pages are mapped after it */
  if (sigsetjmp(t_jb, 1) == 0) {
    t_in_access = 1;
    getrusage(RUSAGE_SELF, &before);
    for (size_t i = 0; i < len; i += page) {
      if (is_store) p[i] = (unsigned char)fill;
      else (void)p[i];
    }
    getrusage(RUSAGE_SELF, &after);
    t_in_access = 0;
    result_value(out, (long long)(after.ru_minflt - before.ru_minflt));
  } else {
    sb_addf(out, "{\"signal\":\"%s\",\"code\":\"%s\",\"offset\":%lld}", signal_name(t_fault.signo),
            code_name(t_fault.signo, t_fault.code), (long long)(t_fault.addr - base));
  }
}

/* Builds the source bytes of a store/pwrite: `data` (RLE) or `fill`+`length`. */
static long source_bytes(const struct args *a, unsigned char **out) {
  const char *data = arg_s(a, "data");
  if (data) return unrle(data, out);
  long long len = arg_i(a, "length", 0);
  if (len < 0 || len > (1LL << 30)) return -1;
  unsigned char *b = malloc(len ? (size_t)len : 1);
  if (!b) abort();
  memset(b, (int)arg_i(a, "fill", 0), (size_t)len);
  *out = b;
  return (long)len;
}

/* Everything an access step needs: load, store, read(2), write(2). */
static void access_step(const struct args *a, struct sb *out) {
  const char *op = a->op;
  uintptr_t base = (uintptr_t)arg_i(a, "addr", 0);
  long long off = arg_i(a, "offset", 0);
  if (!strcmp(op, "load")) {
    long long len = arg_i(a, "length", 0);
    if (len < 0 || len > (1LL << 30)) return result_errno(out, EINVAL);
    user_access(0, base, off, (size_t)len, NULL, out);
  } else if (!strcmp(op, "store")) {
    unsigned char *src;
    long n = source_bytes(a, &src);
    if (n < 0) return result_errno(out, EINVAL);
    user_access(1, base, off, (size_t)n, src, out);
    free(src);
  } else if (!strcmp(op, "touch")) {
    long long len = arg_i(a, "length", 0);
    if (len < 0 || len > (1LL << 30)) return result_errno(out, EINVAL);
    touch_pages((int)arg_i(a, "write", 0), base, off, (size_t)len, (int)arg_i(a, "fill", 0), out);
  } else if (!strcmp(op, "read")) {
    ssize_t r = read((int)arg_i(a, "fd", -1), (void *)(base + (uintptr_t)off), (size_t)arg_i(a, "length", 0));
    if (r < 0) result_errno(out, errno);
    else result_value(out, r);
  } else if (!strcmp(op, "write")) {
    ssize_t r = write((int)arg_i(a, "fd", -1), (void *)(base + (uintptr_t)off), (size_t)arg_i(a, "length", 0));
    if (r < 0) result_errno(out, errno);
    else result_value(out, r);
  } else {
    result_errno(out, EINVAL);
  }
}

/* Async accesses: a pthread per step, joined by name. */
struct slot {
  char name[64];
  char *line;
  struct args a;
  struct sb result;
  int done;
  pthread_t th;
};
static struct slot *slots[MAXSLOTS];
static int nslots;
static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_cv = PTHREAD_COND_INITIALIZER;

static void *slot_main(void *p) {
  struct slot *s = p;
  struct sb r = {0};
  /* Preallocated by the caller so that the thread never mallocs while the other thread may
   * fork; the access itself only mallocs for load buffers. */
  r = s->result;
  access_step(&s->a, &r);
  pthread_mutex_lock(&slot_mu);
  s->result = r;
  s->done = 1;
  pthread_cond_broadcast(&slot_cv);
  pthread_mutex_unlock(&slot_mu);
  return NULL;
}

static void start_async(char *line_copy, const char *name, struct sb *out) {
  if (nslots >= MAXSLOTS) return result_errno(out, ENOMEM);
  struct slot *s = calloc(1, sizeof *s);
  if (!s) abort();
  snprintf(s->name, sizeof s->name, "%s", name ? name : "");
  s->line = strdup(line_copy);
  if (!s->line) abort();
  parse_args(s->line, &s->a);
  s->result.p = malloc(4096);
  s->result.cap = 4096;
  s->result.n = 0;
  s->result.p[0] = 0;
  slots[nslots++] = s;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  int e = pthread_create(&s->th, &at, slot_main, s);
  pthread_attr_destroy(&at);
  if (e) return result_errno(out, e);
  sb_addf(out, "{\"value\":\"started\"}");
}

static void join_async(const char *name, struct sb *out) {
  struct slot *s = NULL;
  for (int i = 0; i < nslots; i++)
    if (name && !strcmp(slots[i]->name, name)) s = slots[i];
  if (!s) return result_errno(out, ESRCH);
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 2;
  pthread_mutex_lock(&slot_mu);
  while (!s->done) {
    if (pthread_cond_timedwait(&slot_cv, &slot_mu, &dl) == ETIMEDOUT) break;
  }
  int done = s->done;
  pthread_mutex_unlock(&slot_mu);
  if (!done) sb_addf(out, "{\"blocked\":true}");
  else sb_addf(out, "%s", s->result.p);
}

static const char *seal_names[] = {"F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW",
                                   "F_SEAL_WRITE", "F_SEAL_FUTURE_WRITE", "F_SEAL_EXEC"};

static void set_pdeathsig(void) { prctl(PR_SET_PDEATHSIG, SIGKILL); }

/* Executes one command; fills bind (space-separated values) and out (result JSON).
 * Returns 1 when the process must exit after replying. recvd is an fd that came with the
 * command. */
static int exec_cmd(char *line, int recvd, struct sb *bind, struct sb *out, int *reply_fd);
static int exec_parsed(char *copy, char *line, int recvd, struct sb *bind, struct sb *out,
                       int *reply_fd);

static void serve(void) {
  static char buf[MAXMSG];
  for (;;) {
    int fd = -1;
    ssize_t n = recv_msg(CHAN_FD, buf, sizeof buf, &fd);
    if (n <= 0) _exit(0);
    struct sb bind = {0}, out = {0};
    sb_addf(&bind, "%s", "");
    int reply_fd = -1;
    int quit = exec_cmd(buf, fd, &bind, &out, &reply_fd);
    if (quit == 2) {
      /* The child of a fork: it does not answer the fork command; its channel is new. */
      free(bind.p);
      free(out.p);
      continue;
    }
    struct sb msg = {0};
    sb_addf(&msg, "%s\n%s", bind.p, out.p ? out.p : "{\"errno\":\"EINVAL\"}");
    send_msg(CHAN_FD, msg.p, msg.n, reply_fd);
    free(msg.p);
    free(bind.p);
    free(out.p);
    if (quit) _exit(0);
  }
}

/*
 * A device's long-term read-write pin, as the cow selftest takes it from user space: the
 * buffer registered with io_uring (IORING_REGISTER_BUFFERS pins the pages with
 * FOLL_WRITE|FOLL_LONGTERM), and what "the device sees" read back by an IORING_OP_WRITE_FIXED
 * of the registered buffer into a scratch memfd. One pin per process at a time; the ring and
 * the scratch file live at fds >= 900 so the script's fd numbering is untouched. A read-only
 * pin cannot be taken from user space: such scenarios stay model-only.
 */
static int ring_fd = -1, scratch_fd = -1;
static struct io_uring_params ring_p;
static unsigned char *ring_sq, *ring_cq;
static struct io_uring_sqe *ring_sqes;
static void *pin_base;

static int high_fd(int fd, int at) {
  if (fd < 0) return -1;
  int h = fcntl(fd, F_DUPFD_CLOEXEC, at);
  int e = errno;
  close(fd);
  errno = e;
  return h;
}

static int ring_setup(void) {
  if (ring_fd >= 0) return 0;
  memset(&ring_p, 0, sizeof ring_p);
  int fd = high_fd((int)syscall(__NR_io_uring_setup, 4, &ring_p), 900);
  if (fd < 0) return -1;
  size_t sq = ring_p.sq_off.array + ring_p.sq_entries * sizeof(unsigned);
  size_t cq = ring_p.cq_off.cqes + ring_p.cq_entries * sizeof(struct io_uring_cqe);
  int single = (ring_p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && cq > sq) sq = cq;
  ring_sq = mmap(NULL, sq, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  ring_cq = single ? ring_sq
                   : mmap(NULL, cq, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                          IORING_OFF_CQ_RING);
  ring_sqes = mmap(NULL, ring_p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (ring_sq == MAP_FAILED || ring_cq == MAP_FAILED || (void *)ring_sqes == MAP_FAILED) abort();
  scratch_fd = high_fd(memfd_create("shmlab-device", 0), 901);
  if (scratch_fd < 0) abort();
  ring_fd = fd;
  return 0;
}

/* One WRITE_FIXED of [buf, buf+len) (inside the registered buffer) to the scratch file. */
static long ring_write_fixed(void *buf, unsigned len) {
  unsigned *tail = (unsigned *)(ring_sq + ring_p.sq_off.tail);
  unsigned mask = *(unsigned *)(ring_sq + ring_p.sq_off.ring_mask);
  unsigned *array = (unsigned *)(ring_sq + ring_p.sq_off.array);
  unsigned t = *tail, idx = t & mask;
  struct io_uring_sqe *sqe = &ring_sqes[idx];
  memset(sqe, 0, sizeof *sqe);
  sqe->opcode = IORING_OP_WRITE_FIXED;
  sqe->fd = scratch_fd;
  sqe->addr = (uint64_t)(uintptr_t)buf;
  sqe->len = len;
  sqe->off = 0;
  sqe->buf_index = 0;
  array[idx] = idx;
  __atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
  if (syscall(__NR_io_uring_enter, ring_fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) return -errno;
  unsigned *head = (unsigned *)(ring_cq + ring_p.cq_off.head);
  unsigned *ctail = (unsigned *)(ring_cq + ring_p.cq_off.tail);
  unsigned cmask = *(unsigned *)(ring_cq + ring_p.cq_off.ring_mask);
  struct io_uring_cqe *cqes = (struct io_uring_cqe *)(ring_cq + ring_p.cq_off.cqes);
  unsigned h = *head;
  if (h == __atomic_load_n(ctail, __ATOMIC_ACQUIRE)) return -EAGAIN;
  long res = cqes[h & cmask].res;
  __atomic_store_n(head, h + 1, __ATOMIC_RELEASE);
  return res;
}

static int exec_cmd(char *line, int recvd, struct sb *bind, struct sb *out, int *reply_fd) {
  char *copy = strdup(line);
  if (!copy) abort();
  int ret = exec_parsed(copy, line, recvd, bind, out, reply_fd);
  free(copy);
  return ret;
}

static int exec_parsed(char *copy, char *line, int recvd, struct sb *bind, struct sb *out,
                       int *reply_fd) {
  struct args a;
  parse_args(line, &a);
  const char *op = a.op;
  int fd = (int)arg_i(&a, "fd", -1);
  long r;

  if (recvd >= 0 && strcmp(op, "recv_fd") && strcmp(op, "fork")) close(recvd);

  if (arg_i(&a, "async", 0) && (!strcmp(op, "load") || !strcmp(op, "store") ||
                                !strcmp(op, "read") || !strcmp(op, "write"))) {
    start_async(copy, arg_s(&a, "as"), out);
    return 0;
  }

  if (!strcmp(op, "memfd_create")) {
    const char *name = arg_s(&a, "name");
    r = memfd_create(name ? name : "shmlab", (unsigned)arg_i(&a, "flags", 0));
    if (r < 0) {
      result_errno(out, errno);
      sb_addf(bind, "-1");
    } else {
      result_value(out, r);
      sb_addf(bind, "%ld", r);
    }
  } else if (!strcmp(op, "pipe")) {
    int p[2];
    if (pipe(p) < 0) {
      result_errno(out, errno);
      sb_addf(bind, "-1 -1");
    } else {
      sb_addf(out, "{\"value\":[%d,%d]}", p[0], p[1]);
      sb_addf(bind, "%d %d", p[0], p[1]);
    }
  } else if (!strcmp(op, "dup")) {
    r = dup(fd);
    if (r < 0) {
      result_errno(out, errno);
      sb_addf(bind, "-1");
    } else {
      result_value(out, r);
      sb_addf(bind, "%ld", r);
    }
  } else if (!strcmp(op, "close")) {
    if (fd == CHAN_FD) errno = EBADF, r = -1; /* the driver's channel is not the script's */
    else r = close(fd);
    if (r < 0) result_errno(out, errno);
    else result_value(out, 0);
  } else if (!strcmp(op, "send_fd")) {
    /* Check the fd like sendmsg would, then hand it to the driver. */
    if (fd < 0 || fd == CHAN_FD || fcntl(fd, F_GETFD) < 0) {
      result_errno(out, EBADF);
    } else {
      result_value(out, 0);
      *reply_fd = fd; /* sent as is (SCM_RIGHTS duplicates it); the original stays open */
    }
  } else if (!strcmp(op, "recv_fd")) {
    if (recvd < 0) {
      result_errno(out, EBADF);
      sb_addf(bind, "-1");
    } else {
      result_value(out, recvd);
      sb_addf(bind, "%d", recvd);
    }
  } else if (!strcmp(op, "ftruncate")) {
    r = ftruncate(fd, (off_t)arg_i(&a, "length", 0));
    if (r < 0) result_errno(out, errno);
    else result_value(out, 0);
  } else if (!strcmp(op, "fallocate")) {
    r = fallocate(fd, (int)arg_i(&a, "mode", 0), (off_t)arg_i(&a, "offset", 0),
                  (off_t)arg_i(&a, "length", 0));
    if (r < 0) result_errno(out, errno);
    else result_value(out, 0);
  } else if (!strcmp(op, "fstat_size")) {
    struct stat st;
    if (fstat(fd, &st) < 0) result_errno(out, errno);
    else result_value(out, (long long)st.st_size);
  } else if (!strcmp(op, "fstat_blocks")) {
    struct stat st;
    if (fstat(fd, &st) < 0) result_errno(out, errno);
    else result_value(out, (long long)st.st_blocks);
  } else if (!strcmp(op, "pread")) {
    long long len = arg_i(&a, "length", 0);
    if (len < 0 || len > (1LL << 30)) {
      result_errno(out, EINVAL);
    } else {
      unsigned char *b = malloc(len ? (size_t)len : 1);
      if (!b) abort();
      ssize_t n = pread(fd, b, (size_t)len, (off_t)arg_i(&a, "offset", 0));
      if (n < 0) {
        result_errno(out, errno);
      } else {
        sb_addf(out, "{\"value\":\"");
        sb_rle(out, b, (size_t)n);
        sb_addf(out, "\"}");
      }
      free(b);
    }
  } else if (!strcmp(op, "pwrite")) {
    unsigned char *src;
    long n = source_bytes(&a, &src);
    if (n < 0) {
      result_errno(out, EINVAL);
    } else {
      ssize_t w = pwrite(fd, src, (size_t)n, (off_t)arg_i(&a, "offset", 0));
      if (w < 0) result_errno(out, errno);
      else result_value(out, w);
      free(src);
    }
  } else if (!strcmp(op, "load") || !strcmp(op, "store") || !strcmp(op, "read") ||
             !strcmp(op, "write") || !strcmp(op, "touch")) {
    access_step(&a, out);
  } else if (!strcmp(op, "add_seals")) {
    r = fcntl(fd, F_ADD_SEALS, (int)arg_i(&a, "seals", 0));
    if (r < 0) result_errno(out, errno);
    else result_value(out, 0);
  } else if (!strcmp(op, "get_seals")) {
    r = fcntl(fd, F_GET_SEALS);
    if (r < 0) {
      result_errno(out, errno);
    } else {
      sb_addf(out, "{\"value\":\"");
      int first = 1;
      for (int b = 0; b < 32; b++) {
        if (!(r & (1L << b))) continue;
        if (b < 6) sb_addf(out, "%s%s", first ? "" : "|", seal_names[b]);
        else sb_addf(out, "%s0x%x", first ? "" : "|", 1u << b);
        first = 0;
      }
      if (first) sb_addf(out, "0");
      sb_addf(out, "\"}");
    }
  } else if (!strcmp(op, "mmap")) {
    int flags = (int)arg_i(&a, "flags", 0);
    void *hint = NULL;
    if (arg_s(&a, "addr")) hint = (void *)(uintptr_t)(arg_i(&a, "addr", 0) + arg_i(&a, "at", 0));
    void *m = mmap(hint, (size_t)arg_i(&a, "length", 0), (int)arg_i(&a, "prot", 0), flags, fd,
                   (off_t)arg_i(&a, "offset", 0));
    if (m == MAP_FAILED) {
      result_errno(out, errno);
      sb_addf(bind, "-1");
    } else {
      sb_addf(out, "{\"value\":\"mapped\"}");
      sb_addf(bind, "%lld", (long long)(uintptr_t)m);
    }
  } else if (!strcmp(op, "munmap") || !strcmp(op, "mprotect") || !strcmp(op, "madvise")) {
    void *p = (void *)(uintptr_t)(arg_i(&a, "addr", 0) + arg_i(&a, "offset", 0));
    size_t len = (size_t)arg_i(&a, "length", 0);
    if (!strcmp(op, "munmap")) r = munmap(p, len);
    else if (!strcmp(op, "mprotect")) r = mprotect(p, len, (int)arg_i(&a, "prot", 0));
    else r = madvise(p, len, (int)arg_i(&a, "advice", 0));
    if (r < 0) result_errno(out, errno);
    else result_value(out, 0);
  } else if (!strcmp(op, "mremap")) {
    void *p = (void *)(uintptr_t)(arg_i(&a, "addr", 0) + arg_i(&a, "offset", 0));
    int flags = (int)arg_i(&a, "flags", 0);
    void *na = NULL;
    if (arg_s(&a, "new_addr"))
      na = (void *)(uintptr_t)(arg_i(&a, "new_addr", 0) + arg_i(&a, "new_at", 0));
    void *m = mremap(p, (size_t)arg_i(&a, "old_length", 0), (size_t)arg_i(&a, "new_length", 0),
                     flags, na);
    if (m == MAP_FAILED) {
      result_errno(out, errno);
      sb_addf(bind, "-1");
    } else {
      sb_addf(out, "{\"value\":\"mapped\"}");
      sb_addf(bind, "%lld", (long long)(uintptr_t)m);
    }
  } else if (!strcmp(op, "sigaction")) {
    int sig = (int)arg_i(&a, "signal", 0);
    const char *h = arg_s(&a, "handler");
    int mode = !h ? -1 : !strcmp(h, "catch") ? H_CATCH : !strcmp(h, "zero-page") ? H_ZERO
               : !strcmp(h, "default")       ? H_DEFAULT
                                             : -1;
    if ((sig != SIGBUS && sig != SIGSEGV) || mode < 0) {
      result_errno(out, EINVAL);
    } else {
      install_handler(sig, mode);
      result_value(out, 0);
    }
  } else if (!strcmp(op, "fork")) {
    if (recvd < 0) {
      result_errno(out, EINVAL);
      return 0;
    }
    int chan = fcntl(recvd, F_DUPFD_CLOEXEC, CHAN_FD + 1);
    close(recvd);
    /* Plain fork semantics; CLONE_PARENT makes the driver the parent, so it can reap it. */
    long pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
    if (pid == 0) {
      set_pdeathsig();
      dup2(chan, CHAN_FD);
      close(chan);
      nslots = 0; /* async threads do not survive fork */
      return 2;
    }
    close(chan);
    if (pid < 0) {
      result_errno(out, errno);
      sb_addf(bind, "-1");
    } else {
      result_value(out, 0);
      sb_addf(bind, "%ld", pid);
    }
  } else if (!strcmp(op, "exit")) {
    result_value(out, 0);
    return 1;
  } else if (!strcmp(op, "userfaultfd")) {
    r = syscall(__NR_userfaultfd, (int)arg_i(&a, "flags", 0));
    if (r < 0) {
      result_errno(out, errno);
      sb_addf(bind, "-1");
    } else {
      result_value(out, r);
      sb_addf(bind, "%ld", r);
    }
  } else if (!strcmp(op, "uffdio_api")) {
    struct uffdio_api api = {.api = UFFD_API, .features = (uint64_t)arg_i(&a, "features", 0)};
    r = ioctl((int)arg_i(&a, "uffd", -1), UFFDIO_API, &api);
    if (r < 0) result_errno(out, errno);
    else result_value(out, 0);
  } else if (!strcmp(op, "uffdio_register")) {
    struct uffdio_register reg;
    memset(&reg, 0, sizeof reg);
    reg.range.start = (uint64_t)(arg_i(&a, "addr", 0) + arg_i(&a, "offset", 0));
    reg.range.len = (uint64_t)arg_i(&a, "length", 0);
    reg.mode = (uint64_t)arg_i(&a, "mode", 0);
    r = ioctl((int)arg_i(&a, "uffd", -1), UFFDIO_REGISTER, &reg);
    if (r < 0) result_errno(out, errno);
    else result_value(out, 0);
  } else if (!strcmp(op, "uffd_read")) {
    /* poll() on a blocking userfaultfd always says EPOLLERR (fs/userfaultfd.c), so poll the
     * read itself: O_NONBLOCK for the duration of the step, retried for up to 2 s. */
    int u = (int)arg_i(&a, "uffd", -1);
    uintptr_t base = (uintptr_t)arg_i(&a, "base", 0);
    int fl = fcntl(u, F_GETFL);
    if (fl < 0) {
      result_errno(out, errno);
    } else {
      if (!(fl & O_NONBLOCK)) fcntl(u, F_SETFL, fl | O_NONBLOCK);
      struct uffd_msg msg;
      ssize_t n = -1;
      int e = 0;
      for (int tries = 0; tries < 400; tries++) {
        n = read(u, &msg, sizeof msg);
        e = errno;
        if (n >= 0 || e != EAGAIN) break;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
      }
      if (!(fl & O_NONBLOCK)) fcntl(u, F_SETFL, fl);
      if (n < 0 && e == EAGAIN) {
        sb_addf(out, "{\"blocked\":true}");
      } else if (n < 0) {
        result_errno(out, e);
      } else if (n != sizeof msg) {
        result_errno(out, EIO);
      } else if (msg.event == UFFD_EVENT_PAGEFAULT) {
        sb_addf(out, "{\"value\":{\"event\":\"pagefault\",\"offset\":%lld,\"write\":%s}}",
                (long long)(msg.arg.pagefault.address - base),
                (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) ? "true" : "false");
      } else {
        const char *ev = msg.event == UFFD_EVENT_FORK      ? "fork"
                         : msg.event == UFFD_EVENT_REMAP   ? "remap"
                         : msg.event == UFFD_EVENT_REMOVE  ? "remove"
                         : msg.event == UFFD_EVENT_UNMAP   ? "unmap"
                                                           : "unknown";
        sb_addf(out, "{\"value\":{\"event\":\"%s\"}}", ev);
      }
    }
  } else if (!strcmp(op, "uffdio_zeropage")) {
    struct uffdio_zeropage z;
    memset(&z, 0, sizeof z);
    z.range.start = (uint64_t)(arg_i(&a, "addr", 0) + arg_i(&a, "offset", 0));
    z.range.len = (uint64_t)arg_i(&a, "length", 0);
    r = ioctl((int)arg_i(&a, "uffd", -1), UFFDIO_ZEROPAGE, &z);
    if (r < 0) result_errno(out, errno);
    else result_value(out, (long long)z.zeropage);
  } else if (!strcmp(op, "uffdio_copy")) {
    long long len = arg_i(&a, "length", 0);
    if (len < 0 || len > (1LL << 30)) {
      result_errno(out, EINVAL);
    } else {
      /* The source must be page-aligned memory of its own. */
      void *src = mmap(NULL, len ? (size_t)len : 1, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (src == MAP_FAILED) abort();
      memset(src, (int)arg_i(&a, "fill", 0), (size_t)len);
      struct uffdio_copy c;
      memset(&c, 0, sizeof c);
      c.dst = (uint64_t)(arg_i(&a, "addr", 0) + arg_i(&a, "offset", 0));
      c.src = (uint64_t)(uintptr_t)src;
      c.len = (uint64_t)len;
      r = ioctl((int)arg_i(&a, "uffd", -1), UFFDIO_COPY, &c);
      int e = errno;
      munmap(src, len ? (size_t)len : 1);
      if (r < 0) result_errno(out, e);
      else result_value(out, (long long)c.copy);
    }
  } else if (!strcmp(op, "pin")) {
    long long len = arg_i(&a, "length", 0);
    void *base = (void *)(uintptr_t)(arg_i(&a, "addr", 0) + arg_i(&a, "offset", 0));
    if (!arg_i(&a, "write", 0) || pin_base) {
      result_errno(out, EINVAL); /* read-only pins are model-only; one pin at a time */
      sb_addf(bind, "-1");
    } else if (ring_setup() < 0) {
      result_errno(out, errno);
      sb_addf(bind, "-1");
    } else {
      struct iovec iov = {base, (size_t)len};
      r = syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_BUFFERS, &iov, 1);
      if (r < 0) {
        result_errno(out, errno == EFAULT ? EFAULT : errno);
        sb_addf(bind, "-1");
      } else {
        pin_base = base;
        result_value(out, (len + 4095) / 4096);
        sb_addf(bind, "1");
      }
    }
  } else if (!strcmp(op, "unpin")) {
    if (!pin_base) {
      result_errno(out, EINVAL);
    } else {
      r = syscall(__NR_io_uring_register, ring_fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
      if (r < 0) result_errno(out, errno);
      else result_value(out, 0), pin_base = NULL;
    }
  } else if (!strcmp(op, "device_read")) {
    long long len = arg_i(&a, "length", 0);
    if (!pin_base || len <= 0 || len > (1LL << 20)) {
      result_errno(out, EINVAL);
    } else {
      long w = ring_write_fixed((char *)pin_base + arg_i(&a, "offset", 0), (unsigned)len);
      unsigned char *b = malloc((size_t)len);
      if (!b) abort();
      ssize_t n = w < 0 ? -1 : pread(scratch_fd, b, (size_t)len, 0);
      if (w < 0) result_errno(out, (int)-w);
      else if (n < 0) result_errno(out, errno);
      else {
        sb_addf(out, "{\"value\":\"");
        sb_rle(out, b, (size_t)n);
        sb_addf(out, "\"}");
      }
      free(b);
    }
  } else if (!strcmp(op, "join")) {
    join_async(arg_s(&a, "step"), out);
  } else {
    result_errno(out, EINVAL);
  }
  return 0;
}

static void close_from(unsigned lo, unsigned hi) {
  if (syscall(SYS_close_range, lo, hi, 0) == 0) return;
  for (unsigned f = lo; f <= hi && f < 65536; f++) close((int)f);
}

/* ================================================================== driver */

struct proc {
  char name[64];
  int sock;
  pid_t pid;
  int alive;
};
static struct proc procs[MAXPROCS];
static int nprocs;

struct binding {
  char name[64];
  long long v;
};
static struct binding binds[MAXBINDS];
static int nbinds;

static struct proc *find_proc(const char *name) {
  for (int i = 0; i < nprocs; i++)
    if (!strcmp(procs[i].name, name)) return &procs[i];
  return NULL;
}

static void set_bind(const char *name, long long v) {
  for (int i = 0; i < nbinds; i++)
    if (!strcmp(binds[i].name, name)) {
      binds[i].v = v;
      return;
    }
  if (nbinds < MAXBINDS) {
    snprintf(binds[nbinds].name, sizeof binds[nbinds].name, "%s", name);
    binds[nbinds++].v = v;
  }
}

static int get_bind(const char *name, long long *v) {
  for (int i = 0; i < nbinds; i++)
    if (!strcmp(binds[i].name, name)) {
      *v = binds[i].v;
      return 1;
    }
  return 0;
}

static struct proc *add_proc(const char *name, int sock, pid_t pid) {
  if (nprocs >= MAXPROCS) return NULL;
  struct proc *p = find_proc(name);
  if (!p) p = &procs[nprocs++];
  snprintf(p->name, sizeof p->name, "%s", name);
  p->sock = sock;
  p->pid = pid;
  p->alive = 1;
  return p;
}

static void spawn_initial(const char *name) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    perror("socketpair");
    exit(2);
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  if (pid == 0) {
    set_pdeathsig();
    if (getppid() == 1) _exit(0);
    dup2(sv[1], CHAN_FD);
    close_from(3, CHAN_FD - 1);
    close_from(CHAN_FD + 1, ~0U);
    install_handler(SIGBUS, H_CATCH);
    install_handler(SIGSEGV, H_CATCH);
    serve();
    _exit(0);
  }
  close(sv[1]);
  add_proc(name, sv[0], pid);
}

static void emit(const char *json) {
  fputs(json, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

/* Waits for a reply from p (timeout_ms) into buf. Returns >0 on a reply, 0 if the process died
 * (result written to out), -1 on timeout (process killed, result written). */
static int await_reply(struct proc *p, char *buf, size_t cap, int *fd, int timeout_ms,
                       struct sb *out) {
  struct pollfd pfd = {.fd = p->sock, .events = POLLIN};
  int pr;
  do pr = poll(&pfd, 1, timeout_ms);
  while (pr < 0 && errno == EINTR);
  if (pr == 0) {
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->alive = 0;
    sb_addf(out, "{\"blocked\":true}");
    return -1;
  }
  ssize_t n = recv_msg(p->sock, buf, cap, fd);
  if (n > 0) return 1;
  int st = 0;
  waitpid(p->pid, &st, 0);
  p->alive = 0;
  if (WIFSIGNALED(st)) sb_addf(out, "{\"killed\":\"%s\"}", signal_name(WTERMSIG(st)));
  else sb_addf(out, "{\"dead\":true}");
  return 0;
}

/* Splits a reply "binds\njson" and binds the `as` names. */
static void take_reply(char *buf, const char *as, struct sb *out) {
  char *nl = strchr(buf, '\n');
  char *json = nl ? nl + 1 : buf;
  if (nl) *nl = 0;
  if (as && *as && nl) {
    char names[256];
    snprintf(names, sizeof names, "%s", as);
    char *save1 = NULL, *save2 = NULL;
    char *vals = buf;
    char *name = strtok_r(names, ",", &save1);
    char *val = strtok_r(vals, " ", &save2);
    while (name && val) {
      set_bind(name, strtoll(val, NULL, 10));
      name = strtok_r(NULL, ",", &save1);
      val = strtok_r(NULL, " ", &save2);
    }
  }
  sb_addf(out, "%s", json);
}

static void run_step(char *line) {
  static char reply[MAXMSG];
  struct sb out = {0};
  struct sb cmd = {0};
  char *save = NULL;
  char *pname = strtok_r(line, " \n", &save);
  char *op = strtok_r(NULL, " \n", &save);
  const char *as = NULL, *child = NULL, *to = NULL;
  int async = 0, bad = 0;
  if (!pname || !op) bad = 1;
  else sb_addf(&cmd, "%s", op);
  char *t;
  while (!bad && (t = strtok_r(NULL, " \n", &save))) {
    char *eq = strchr(t, '=');
    if (!eq) continue;
    *eq = 0;
    const char *k = t, *v = eq + 1;
    if (!strcmp(k, "as")) as = v;
    if (!strcmp(k, "child")) child = v;
    if (!strcmp(k, "to")) to = v;
    if (!strcmp(k, "async")) async = atoi(v);
    if (*v == '$') {
      long long bv;
      if (!get_bind(v + 1, &bv)) {
        bad = 1;
        break;
      }
      sb_addf(&cmd, " %s=%lld", k, bv);
    } else {
      sb_addf(&cmd, " %s=%s", k, v);
    }
  }
  struct proc *p = bad ? NULL : find_proc(pname);
  if (bad || !p) {
    emit(bad ? "{\"errno\":\"EINVAL\"}" : "{\"dead\":true}");
    goto done;
  }
  if (!p->alive) {
    emit("{\"dead\":true}");
    goto done;
  }
  (void)async;
  int timeout = 3000;
  if (!strcmp(op, "join") || !strcmp(op, "uffd_read")) timeout = 6000;

  if (!strcmp(op, "fork")) {
    int sv[2];
    if (!child || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
      emit("{\"errno\":\"EINVAL\"}");
      goto done;
    }
    send_msg(p->sock, cmd.p, cmd.n, sv[1]);
    close(sv[1]);
    int fd;
    int r = await_reply(p, reply, sizeof reply, &fd, timeout, &out);
    if (r > 0) {
      char *nl = strchr(reply, '\n');
      pid_t pid = (pid_t)strtol(reply, NULL, 10);
      if (pid > 0) add_proc(child, sv[0], pid);
      else close(sv[0]);
      sb_addf(&out, "%s", nl ? nl + 1 : reply);
    } else {
      close(sv[0]);
    }
    emit(out.p);
    goto done;
  }

  if (!strcmp(op, "send_fd")) {
    struct proc *q = to ? find_proc(to) : NULL;
    send_msg(p->sock, cmd.p, cmd.n, -1);
    int fd = -1;
    int r = await_reply(p, reply, sizeof reply, &fd, timeout, &out);
    if (r <= 0) {
      emit(out.p);
      goto done;
    }
    if (fd < 0) { /* the sender's error */
      take_reply(reply, NULL, &out);
      emit(out.p);
      goto done;
    }
    if (!q || !q->alive) {
      close(fd);
      emit("{\"dead\":true}");
      goto done;
    }
    send_msg(q->sock, "recv_fd", 7, fd);
    close(fd);
    int fd2;
    r = await_reply(q, reply, sizeof reply, &fd2, timeout, &out);
    if (r > 0) take_reply(reply, as, &out);
    emit(out.p);
    goto done;
  }

  send_msg(p->sock, cmd.p, cmd.n, -1);
  int fd = -1;
  int r = await_reply(p, reply, sizeof reply, &fd, timeout, &out);
  if (fd >= 0) close(fd);
  if (r > 0) {
    take_reply(reply, async ? NULL : as, &out);
    if (!strcmp(op, "exit")) {
      waitpid(p->pid, NULL, 0);
      p->alive = 0;
    }
  }
  emit(out.p);
done:
  free(out.p);
  free(cmd.p);
}

/*
 * Every scenario process runs on one CPU (inherited from the driver). Some kernel paths
 * depend on which CPU a page was faulted on: MADV_PAGEOUT calls lru_add_drain() for the
 * current CPU only, so a page still in another CPU's LRU batch (the process migrated after
 * touching it) cannot be isolated and is not paged out. One CPU makes such results stable.
 */
static void pin_to_one_cpu(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (CPU_ISSET(c, &set)) {
      CPU_ZERO(&set);
      CPU_SET(c, &set);
      sched_setaffinity(0, sizeof set, &set);
      return;
    }
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  pin_to_one_cpu();
  /* Orphans of a dead driver must not linger: every scenario process has PDEATHSIG. */
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, stdin)) > 0) {
    if (line[n - 1] == '\n') line[n - 1] = 0;
    if (line[0] == 'P' && line[1] == ' ') {
      char *save = NULL;
      for (char *t = strtok_r(line + 2, " ", &save); t; t = strtok_r(NULL, " ", &save))
        spawn_initial(t);
    } else if (line[0] == 'S' && line[1] == ' ') {
      run_step(line + 2);
    }
  }
  free(line);
  for (int i = 0; i < nprocs; i++)
    if (procs[i].alive) kill(procs[i].pid, SIGKILL);
  for (int i = 0; i < nprocs; i++)
    if (procs[i].alive) waitpid(procs[i].pid, NULL, 0);
  return 0;
}
