/**
 * `userfaultfd`: libwayland's MAP_SHARED mapping (wayland src/wayland-shm.c
 * shm_create_pool, shm_pool_finish_resize) registered with a userfaultfd in MISSING mode
 * (UFFD_FEATURE_MISSING_SHMEM), whose missing faults a handler thread resolves with
 * UFFDIO_ZEROPAGE (LINUX.md rule 16, fs/userfaultfd.c). What it can and cannot do is the
 * kernel's: a hole inside i_size is reported and resolved (the zero page enters the page
 * cache, every sharer sees it), but a fault beyond EOF is SIGBUS before userfaultfd is
 * consulted — so a truncation still kills the compositor. The policy is here to show that.
 *
 * The handler thread. A real compositor runs a thread blocked in read(uffd); when the
 * compositor's main thread faults on a registered hole it sleeps in handle_userfault until
 * that thread's ioctl wakes it. The policy asks the compositor (PolicyEnv.onBlocked) to run
 * the handler thread (service(): read every pending event, UFFDIO_ZEROPAGE each page)
 * whenever its main thread sleeps on a userfaultfd wait. That keeps the model's order
 * faithful — the fault is reported, another thread reads and resolves it, the faulting
 * access retries — without the compositor reading its own uffd mid-access, which a single
 * thread could not do. The lab's scheduler also runs it between steps
 * (Compositor.serviceThreads()).
 */
import { ErrnoError } from "../../shm/errors.ts";
import { PAGE_SIZE, UFFD } from "../../shm/uapi.ts";
import type { Policy } from "../policy.ts";
import { LIBWAYLAND_PROFILE } from "../validation.ts";
import { libwaylandGrow, libwaylandMap, loadSpan, mappedAccess, unmapQuiet } from "./common.ts";

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
// UFFDIO_REGISTER wants a page-aligned length. A longer range would register only more
// VMAs, and this compositor maps nothing but pools, each registered anyway.
// Stryker disable next-line ArithmeticOperator: equivalent (above)
const pageAlign = (n: number) => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;

export const userfaultfd: Policy = {
  name: "userfaultfd",
  source: "fs/userfaultfd.c MISSING mode on shmem, over wayland-shm.c's mapping",
  summary: "uffd-registered pool; a handler thread zero-fills holes; beyond EOF is still SIGBUS",
  clientReceives:
    "nothing: the compositor dies of SIGBUS (userfaultfd never sees beyond-EOF faults)",
  features: [],
  profile: LIBWAYLAND_PROFILE,
  deferResizeWhileReading: true,
  create(proc, env) {
    const uffd = proc.userfaultfd(O_CLOEXEC | O_NONBLOCK);
    proc.uffdioApi(uffd, UFFD.UFFD_FEATURE_MISSING_SHMEM);

    /** The handler thread's loop body: poll, read, resolve. */
    function service(): boolean {
      let ran = false;
      // poll() says an event is pending; read() of an O_NONBLOCK uffd with none is EAGAIN.
      // One reader: they say the same thing, so the loop condition and the EAGAIN branch
      // are each equivalent to the other (a loop that reads once more ends at EAGAIN).
      // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: equivalent (above)
      while (proc.alive && proc.uffdPending(uffd) > 0) {
        // Stryker disable all: unreachable with one reader behind the poll (above)
        let ev: { address: number };
        try {
          ev = proc.uffdRead(uffd);
        } catch (e) {
          if (e instanceof ErrnoError && e.code === "EAGAIN") break;
          throw e;
        }
        // Stryker restore all
        ran = true;
        // (The catch emptied is the same: see the rethrow below. This also marks the try
        // body's own BlockStatement mutant, which the tests kill.)
        // Stryker disable BlockStatement: equivalent (below)
        try {
          proc.uffdioZeropage(uffd, ev.address, PAGE_SIZE);
        } catch (e) {
          // A failed UFFDIO_ZEROPAGE wakes nobody (fs/userfaultfd.c userfaultfd_zeropage:
          // `if (ret < 0) goto out`, before wake_userfault):
          // EEXIST: the page was filled first (the client wrote it); a real thread follows
          // with UFFDIO_WAKE, which the model has not.
          // EFAULT: the file shrank below the page since the fault.
          // Either way the faulter stays asleep and the run reports a Deadlock.
          // No other errno can come (the page is the sleeping faulter's: registered, page
          // aligned, its process alive), so swallowing more is equivalent; the rethrow is
          // the project's rule for errors not named. The test suite pins both names.
          // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent (above)
          if (!(e instanceof ErrnoError && (e.code === "EEXIST" || e.code === "EFAULT"))) throw e;
        }
        // Stryker restore BlockStatement
      }
      return ran;
    }

    // The handler thread runs while the main thread sleeps in handle_userfault.
    env.onBlocked("userfaultfd", () => {
      service();
    });

    const register = (addr: number, size: number) =>
      proc.uffdioRegister(uffd, addr, pageAlign(size), UFFD.UFFDIO_REGISTER_MODE_MISSING);

    return {
      mapPool(pool) {
        libwaylandMap(proc, pool);
        register(pool.addr, pool.size);
      },
      growPool(pool, size) {
        // mremap carries the registration with the VMA; the grown tail is part of it.
        libwaylandGrow(proc, pool, size);
      },
      unmapPool: (pool) => unmapQuiet(proc, pool.addr, pool.size),
      beginAccess: (b) => mappedAccess(b),
      read: (a, dst) => loadSpan(proc, a, dst),
      endAccess: () => undefined,
      service,
    };
  },
};
export default userfaultfd;
