/*
 * fault-bench: the real kernel's cost of the pattern every SIGBUS-catching compositor runs
 * (libwayland's wl_shm_buffer_begin_access handler, wlroots, KWin): a shared mapping of a
 * memfd, the file shrunk to nothing under it, then each page touched; the touch raises
 * SIGBUS (shmem_fault: index >= i_size), the handler maps an anonymous page MAP_FIXED over
 * the faulting page, returns, and the load retries and reads zero.
 *
 * Usage: fault-bench PAGES REPS
 * Prints one JSON line: {"pages":P,"reps":R,"nsPerFault":[...one figure per repetition]}.
 * Each repetition maps the file again over the whole range (not timed) and times the
 * touches of every page, so each figure is one SIGBUS + handler mmap + retry, per page.
 * bench/kernel.bench.ts runs the same pattern on the simulated kernel beside it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static long page_size;
static volatile unsigned long faults;

static void on_sigbus(int sig, siginfo_t *info, void *uctx) {
  (void)sig;
  (void)uctx;
  uintptr_t page = (uintptr_t)info->si_addr & ~(uintptr_t)(page_size - 1);
  void *m = mmap((void *)page, (size_t)page_size, PROT_READ | PROT_WRITE,
                 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) _exit(3); /* no way to report from here; the parent sees status 3 */
  faults++;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int fail(const char *what) {
  fprintf(stderr, "fault-bench: %s: %s\n", what, strerror(errno));
  return 2;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: fault-bench PAGES REPS\n");
    return 2;
  }
  long pages = strtol(argv[1], NULL, 10);
  long reps = strtol(argv[2], NULL, 10);
  if (pages < 1 || pages > 1 << 20 || reps < 1 || reps > 1000) {
    fprintf(stderr, "fault-bench: PAGES in 1..1048576, REPS in 1..1000\n");
    return 2;
  }
  page_size = sysconf(_SC_PAGESIZE);
  size_t len = (size_t)pages * (size_t)page_size;

  int fd = memfd_create("fault-bench", MFD_CLOEXEC);
  if (fd < 0) return fail("memfd_create");
  if (ftruncate(fd, (off_t)len) < 0) return fail("ftruncate");
  char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return fail("mmap");
  /* Shrink to nothing: every page of the mapping is now beyond EOF. */
  if (ftruncate(fd, 0) < 0) return fail("ftruncate 0");

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGBUS, &sa, NULL) < 0) return fail("sigaction");

  printf("{\"pages\":%ld,\"reps\":%ld,\"nsPerFault\":[", pages, reps);
  /* One untimed warm-up repetition, then the timed ones. */
  for (long r = -1; r < reps; r++) {
    if (mmap(base, len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_SHARED, fd, 0) == MAP_FAILED)
      return fail("mmap MAP_FIXED");
    unsigned long before = faults;
    unsigned sum = 0;
    double t0 = now_ns();
    for (long i = 0; i < pages; i++) sum += *(volatile unsigned char *)(base + i * page_size);
    double t1 = now_ns();
    if (faults - before != (unsigned long)pages || sum != 0) {
      fprintf(stderr, "fault-bench: expected %ld faults reading zeros, saw %lu (sum %u)\n",
              pages, faults - before, sum);
      return 2;
    }
    if (r >= 0) printf("%s%.1f", r ? "," : "", (t1 - t0) / (double)pages);
  }
  printf("]}\n");
  munmap(base, len);
  close(fd);
  return 0;
}
