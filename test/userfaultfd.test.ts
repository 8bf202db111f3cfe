import { describe, expect, it } from "vitest";
import { Deadlock } from "../shm/errors.ts";
import { Kernel, type Scheduler } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { MAP, PROT, UFFD } from "../shm/uapi.ts";
import { errnoOf, PG } from "./helpers.ts";

/** A scheduler whose block() runs a resolver, as a second thread would. */
function withResolver(resolve: () => void): Scheduler {
  return {
    point() {},
    block(_p: Process, until: () => boolean) {
      if (!until()) resolve();
      if (!until()) throw new Deadlock("not resolved");
    },
  };
}

describe("userfaultfd on shmem (rule 16)", () => {
  it("a missing fault inside i_size is reported and resolved with ZEROPAGE; every sharer sees the page", () => {
    let resolver: () => void = () => {};
    const k = new Kernel({ scheduler: withResolver(() => resolver()) });
    const a = k.spawn("a");
    const b = k.spawn("b");
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, 2 * PG);
    const m = a.mmap(0, 2 * PG, PROT.PROT_READ, MAP.MAP_SHARED, fd, 0);
    const u = a.userfaultfd();
    a.uffdioApi(u, UFFD.UFFD_FEATURE_MISSING_SHMEM);
    a.uffdioRegister(u, m, 2 * PG, UFFD.UFFDIO_REGISTER_MODE_MISSING);
    const bu = a.sendFd(u, b); // the resolver is another process
    let event: { address: number; write: boolean } | undefined;
    resolver = () => {
      event = b.uffdRead(bu);
      b.uffdioCopy(bu, event.address, new Uint8Array(PG).fill(0x5a));
    };
    expect(a.load(m + PG + 5, 1)[0]).toBe(0x5a);
    expect(event).toMatchObject({ address: m + PG, write: false });
    expect(a.pread(fd, 1, PG)[0]).toBe(0x5a); // it entered the page cache
    expect(a.counters.uffdFaults).toBe(1);
  });

  it("a fault beyond EOF is SIGBUS before userfaultfd is consulted", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, PG);
    const m = a.mmap(0, 2 * PG, PROT.PROT_READ, MAP.MAP_SHARED, fd, 0);
    const u = a.userfaultfd();
    a.uffdioApi(u, 0);
    a.uffdioRegister(u, m, 2 * PG, UFFD.UFFDIO_REGISTER_MODE_MISSING);
    let sig = "";
    a.sigaction("SIGBUS", {
      handler: (i) => {
        sig = i.code;
        a.mmap(m + PG, PG, PROT.PROT_READ, MAP.MAP_FIXED | MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
      },
    });
    a.load(m + PG, 1);
    expect(sig).toBe("BUS_ADRERR");
    expect(a.counters.uffdFaults).toBe(0);
  });

  it("ioctl checks: API first, aligned ranges, EEXIST on a present page, EAGAIN when no event", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, PG);
    const m = a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_SHARED, fd, 0);
    const u = a.userfaultfd();
    expect(errnoOf(() => a.uffdioRegister(u, m, PG, 1))).toBe("EINVAL");
    a.uffdioApi(u, 0);
    expect(errnoOf(() => a.uffdioApi(u, 0))).toBe("EINVAL");
    expect(errnoOf(() => a.uffdioRegister(u, m + 1, PG, 1))).toBe("EINVAL");
    a.uffdioRegister(u, m, PG, 1);
    expect(errnoOf(() => a.uffdRead(u))).toBe("EAGAIN");
    a.uffdioZeropage(u, m, PG);
    expect(errnoOf(() => a.uffdioZeropage(u, m, PG))).toBe("EEXIST");
  });

  it("a kernel access (write(2) from the range) also waits for the resolver", () => {
    let resolver: () => void = () => {};
    const k = new Kernel({ scheduler: withResolver(() => resolver()) });
    const a = k.spawn("a");
    const m = a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    const u = a.userfaultfd();
    a.uffdioApi(u, 0);
    a.uffdioRegister(u, m, PG, 1);
    resolver = () => void a.uffdioCopy(u, m, new Uint8Array(PG).fill(7));
    const out = a.memfdCreate("out");
    expect(a.write(out, m, 16)).toBe(16);
    expect(a.pread(out, 1, 0)[0]).toBe(7);
  });

  // Found by the kernel self-check (pte-write): UFFDIO_COPY used to install a writable entry
  // whatever the range's protection. mfill_atomic_install_pte: "bool writable =
  // dst_vma->vm_flags & VM_WRITE".
  it("UFFDIO_COPY into a read-only range installs a read-only page: a store is SIGSEGV (SEGV_ACCERR)", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const m = a.mmap(0, PG, PROT.PROT_READ, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    const u = a.userfaultfd();
    a.uffdioApi(u, 0);
    a.uffdioRegister(u, m, PG, UFFD.UFFDIO_REGISTER_MODE_MISSING);
    expect(a.uffdioCopy(u, m, new Uint8Array(PG).fill(7))).toBe(PG);
    expect(a.load(m, 1)[0]).toBe(7);
    expect(() => a.store(m, new Uint8Array([1]))).toThrow(/SIGSEGV \(unhandled SEGV_ACCERR/);
    expect(a.counters.sigsegv).toBe(1);
  });
});

describe("userfaultfd ioctls on anonymous memory, and across processes", () => {
  const RWP = PROT.PROT_READ | PROT.PROT_WRITE;
  const anonymous = (p: Process, bytes: number) =>
    p.mmap(0, bytes, RWP, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
  const registered = (p: Process, bytes: number): [number, number] => {
    const u = p.userfaultfd();
    p.uffdioApi(u, 0);
    const m = anonymous(p, bytes);
    p.uffdioRegister(u, m, bytes, UFFD.UFFDIO_REGISTER_MODE_MISSING);
    return [u, m];
  };

  it("UFFDIO_COPY of several pages puts each page's own bytes at its own address", () => {
    const { 0: a } = [new Kernel().spawn("a")];
    const [u, m] = registered(a, 3 * PG);
    const data = new Uint8Array(2 * PG);
    data.fill(1, 0, PG);
    data.fill(2, PG);
    expect(a.uffdioCopy(u, m + PG, data)).toBe(2 * PG);
    expect([
      ...a.load(m + PG, 1),
      ...a.load(m + 2 * PG - 1, 2),
      ...a.load(m + 3 * PG - 1, 1),
    ]).toEqual([1, 1, 2, 2]);
  });

  it("UFFDIO_ZEROPAGE maps zeros read-only: a store later copies on write, with no new event", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const [u, m] = registered(a, PG);
    expect(a.uffdioZeropage(u, m, PG)).toBe(PG);
    expect(a.load(m, 2)).toEqual(new Uint8Array([0, 0]));
    a.store(m, new Uint8Array([7]));
    expect(a.load(m, 1)[0]).toBe(7);
    expect(a.uffdPending(u)).toBe(0);
    expect(a.counters.uffdFaults).toBe(0);
  });

  it("a resolution removes the event of the page it fills (wake), and only that one", () => {
    let resolve = () => {};
    const k = new Kernel({ scheduler: withResolver(() => resolve()) });
    const a = k.spawn("a");
    const [u, m] = registered(a, 2 * PG);
    const events: number[] = [];
    resolve = () => {
      events.push(a.uffdPending(u));
      const e = a.uffdRead(u);
      a.uffdioZeropage(u, e.address, PG);
      events.push(a.uffdPending(u));
    };
    expect(a.load(m + PG, 1)[0]).toBe(0);
    expect(events).toEqual([1, 0]);
    expect(errnoOf(() => a.uffdRead(u))).toBe("EAGAIN");
  });

  it("the ioctls act on the registering process's memory, whoever calls them", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const b = k.spawn("b");
    const [u, m] = registered(a, PG);
    const bu = a.sendFd(u, b);
    b.uffdioCopy(bu, m, new Uint8Array(PG).fill(3));
    expect(a.load(m, 1)[0]).toBe(3); // no fault: the page is a's now
    expect(a.counters.uffdFaults).toBe(0);
  });

  it("once the registering process is gone the ioctls are ESRCH (mmget_not_zero fails)", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const b = k.spawn("b");
    const [u, m] = registered(a, PG);
    const bu = a.sendFd(u, b);
    a.exit();
    expect(errnoOf(() => b.uffdioZeropage(bu, m, PG))).toBe("ESRCH");
  });

  it("UFFDIO_REGISTER refuses MAP_DROPPABLE memory (vma_can_userfault: VM_DROPPABLE)", () => {
    const a = new Kernel().spawn("a");
    const u = a.userfaultfd();
    a.uffdioApi(u, 0);
    const m = a.mmap(0, PG, RWP, MAP.MAP_DROPPABLE | MAP.MAP_ANONYMOUS);
    expect(errnoOf(() => a.uffdioRegister(u, m, PG, UFFD.UFFDIO_REGISTER_MODE_MISSING))).toBe(
      "EINVAL",
    );
  });

  it("ioctls on an fd that is not a userfaultfd are EINVAL (a memfd has no UFFDIO_*)", () => {
    const a = new Kernel().spawn("a");
    const fd = a.memfdCreate("x");
    expect(errnoOf(() => a.uffdioApi(fd, 0))).toBe("EINVAL");
    expect(errnoOf(() => a.uffdioZeropage(fd, 0, PG))).toBe("EINVAL");
  });

  it("a resolution stops at the first page it cannot fill and returns the bytes done (uffdio_copy.copy)", () => {
    // mfill_atomic fills page by page and returns what it copied before the error.
    const k = new Kernel();
    const a = k.spawn("a");
    const [u, m] = registered(a, 2 * PG);
    a.uffdioZeropage(u, m + PG, PG);
    expect(a.uffdioCopy(u, m, new Uint8Array(2 * PG).fill(5))).toBe(PG); // page 1 is present
    expect(a.load(m, 1)[0]).toBe(5);
    const fd = a.memfdCreate("x");
    a.ftruncate(fd, PG);
    const s = a.mmap(0, 2 * PG, RWP, MAP.MAP_SHARED, fd, 0);
    a.uffdioRegister(u, s, 2 * PG, UFFD.UFFDIO_REGISTER_MODE_MISSING);
    expect(a.uffdioZeropage(u, s, 2 * PG)).toBe(PG); // page 1 is past i_size
  });
});
