/**
 * The `userfaultfd` policy's handler thread, reached through the compositor (its public
 * path): a client punches a hole in its pool, the compositor's next read of the buffer
 * faults on a page missing inside i_size, and the main thread sleeps in handle_userfault
 * until the handler thread reads the event and resolves it with UFFDIO_ZEROPAGE.
 *
 * What each test reasons from:
 * - fs/userfaultfd.c / mm/shmem.c: a shmem page missing from the page cache inside i_size,
 *   in a range registered UFFDIO_REGISTER_MODE_MISSING with UFFD_FEATURE_MISSING_SHMEM, is
 *   reported to the userfaultfd (one uffd_msg per faulting page, its address page aligned)
 *   instead of being allocated; UFFDIO_ZEROPAGE installs a zeroed page and wakes the
 *   faulter, whose load retries and reads zeros (LINUX.md rule 16).
 * - The registration covers whole pages: UFFDIO_REGISTER wants a page-aligned length, so a
 *   pool whose size is not a page multiple registers its last, partial page too.
 * - A fault beyond EOF is SIGBUS before userfaultfd is consulted (shmem_fault's i_size
 *   check comes first): the policy does not save the compositor from a truncation.
 */
import { describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import { userfaultfd } from "../compositor/policies/userfaultfd.ts";
import type { PolicyInstance } from "../compositor/policy.ts";
import { patternPixel, settle, TestClient } from "../compositor/testing.ts";
import { Kernel, type Scheduler } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { FALLOC, PAGE_SIZE } from "../shm/uapi.ts";
import { killedBy } from "./policy-helpers.ts";

const PUNCH = FALLOC.FALLOC_FL_PUNCH_HOLE | FALLOC.FALLOC_FL_KEEP_SIZE;

/** A window shown once (its pages now present), then `fileOp` and the same buffer committed again. */
async function shownThen(
  width: number,
  height: number,
  fileOp: (t: TestClient, fd: number) => void,
) {
  const comp = new Compositor({ policy: "userfaultfd", width: 256, height: 256 });
  const c = await TestClient.connect(comp);
  const w = await c.window(width, height);
  comp.frame();
  expect(comp.proc.counters.uffdFaults).toBe(0); // the client wrote every page: none missing
  fileOp(c, w.fd);
  c.show(w.surface, w.buffer, width, height);
  await settle();
  // A compositor killed by the read rethrows its ProcessKilled from frame().
  killedBy(() => comp.frame());
  const p = comp.placements().find((x) => x.surface === w.surface && x.clientId > 0)!;
  return { comp, c, w, pixels: comp.alive ? comp.regionPixels(p) : null };
}

/** Rows [from, to) of a width-wide image: all the client's pattern, or all zero. */
function rowsAre(px: Uint32Array, width: number, from: number, to: number, what: "pattern" | 0) {
  for (let y = from; y < to; y++)
    for (let x = 0; x < width; x++) {
      const want = what === 0 ? 0 : patternPixel(1, x, y);
      if (px[y * width + x] >>> 0 !== want)
        throw new Error(`pixel (${x}, ${y}) is ${px[y * width + x] >>> 0}, want ${want}`);
    }
}

describe("userfaultfd policy: the handler thread resolves holes inside i_size", () => {
  it("a punched page faults once into the handler, is zero-filled, and the read completes", async () => {
    // 64 px * 4 bytes = 256 bytes a row: page 1 holds rows 16..31 of 48.
    const { comp, pixels } = await shownThen(64, 48, (c, fd) =>
      c.proc.fallocate(fd, PUNCH, PAGE_SIZE, PAGE_SIZE),
    );
    expect(comp.alive).toBe(true);
    expect(comp.proc.counters.uffdFaults).toBe(1);
    rowsAre(pixels!, 64, 0, 16, "pattern");
    rowsAre(pixels!, 64, 16, 32, 0);
    rowsAre(pixels!, 64, 32, 48, "pattern");
  });

  it("two punched pages are two events, each resolved before its load retries", async () => {
    const { comp, pixels } = await shownThen(64, 48, (c, fd) => {
      c.proc.fallocate(fd, PUNCH, 0, PAGE_SIZE);
      c.proc.fallocate(fd, PUNCH, 2 * PAGE_SIZE, PAGE_SIZE);
    });
    expect(comp.alive).toBe(true);
    expect(comp.proc.counters.uffdFaults).toBe(2);
    rowsAre(pixels!, 64, 0, 16, 0);
    rowsAre(pixels!, 64, 16, 32, "pattern");
    rowsAre(pixels!, 64, 32, 48, 0);
  });

  it("the registration covers a partial last page (the length is page aligned up)", async () => {
    // 64 x 20 x 4 = 5,120 bytes: the pool ends 1,024 bytes into page 1.
    const { comp, pixels } = await shownThen(64, 20, (c, fd) =>
      c.proc.fallocate(fd, PUNCH, PAGE_SIZE, PAGE_SIZE),
    );
    expect(comp.alive).toBe(true);
    expect(comp.proc.counters.uffdFaults).toBe(1);
    rowsAre(pixels!, 64, 0, 16, "pattern");
    rowsAre(pixels!, 64, 16, 20, 0);
  });

  it("the zeroed page enters the page cache: the client's next write there is what the compositor reads", async () => {
    const { comp, c, w } = await shownThen(64, 48, (t, fd) =>
      t.proc.fallocate(fd, PUNCH, PAGE_SIZE, PAGE_SIZE),
    );
    // MAP_SHARED of one shmem file: the page UFFDIO_ZEROPAGE installed is the file's page,
    // so the client's pwrite lands in the compositor's mapping with no further fault.
    c.proc.pwrite(w.fd, new Uint8Array(4).fill(0xab), PAGE_SIZE);
    c.show(w.surface, w.buffer, 64, 48);
    await settle();
    comp.frame();
    const p = comp.placements().find((x) => x.surface === w.surface && x.clientId > 0)!;
    expect(comp.regionPixels(p)[16 * 64] >>> 0).toBe(0xabababab >>> 0);
    expect(comp.proc.counters.uffdFaults).toBe(1);
  });

  it("beyond EOF is SIGBUS before userfaultfd: the compositor dies and no event was read", async () => {
    const { comp } = await shownThen(64, 48, (c, fd) => c.proc.ftruncate(fd, PAGE_SIZE));
    expect(comp.alive).toBe(false);
    expect(comp.death?.signal).toBe("SIGBUS");
    expect(comp.proc.counters.uffdFaults).toBe(0);
  });
});

describe("userfaultfd policy: service() is the handler thread's loop body", () => {
  it("reads nothing and reports that it ran nothing when no fault is pending", () => {
    const comp = new Compositor({ policy: "userfaultfd" });
    expect(comp.serviceThreads()).toBe(false);
  });

  it("reports that it ran when it resolved a pending fault", () => {
    const { comp, instance, pool, ran } = direct();
    expect(comp.load(pool.addr + PAGE_SIZE + 1, 1)[0]).toBe(0);
    expect(ran).toEqual([true]);
    expect(comp.counters.uffdFaults).toBe(1);
    expect(instance.service!()).toBe(false);
  });

  it("UFFDIO_ZEROPAGE failing (EFAULT: the file shrank below the page) is the thread's to swallow; the faulter stays asleep", () => {
    // mm/userfaultfd.c: a shmem fill beyond i_size is -EFAULT, and userfaultfd_zeropage
    // wakes nobody when it fails (`if (ret < 0) goto out`): the sleeper is stuck, which the
    // kernel's scheduler reports, not an errno escaping the handler thread.
    const { comp, client, cfd, pool } = direct((c, fd) => c.ftruncate(fd, PAGE_SIZE));
    let err: unknown;
    try {
      comp.load(pool.addr + PAGE_SIZE + 1, 1);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toBe("the fault was not resolved");
    expect(client.fstatSize(cfd)).toBe(PAGE_SIZE);
  });
});

describe("userfaultfd policy: a failed UFFDIO_ZEROPAGE wakes nobody", () => {
  it("EEXIST (the client wrote the page first) is the thread's to swallow; the faulter stays asleep", () => {
    // fs/userfaultfd.c userfaultfd_zeropage: `if (ret < 0) goto out` skips wake_userfault;
    // only a UFFDIO_WAKE (not modelled) would wake the faulter.
    const { comp, pool } = direct((c, fd) => c.pwrite(fd, new Uint8Array([7]), PAGE_SIZE));
    let err: unknown;
    try {
      comp.load(pool.addr + PAGE_SIZE, 1);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toBe("the fault was not resolved");
  });
});

/**
 * The policy's instance on a compositor process of a kernel whose scheduler, when the main
 * thread sleeps on its userfaultfd, first lets `meanwhile` run on the client (what it did
 * between the fault and the handler thread's read) and then runs the instance's service()
 * as the lab's scheduler does between steps (Compositor.serviceThreads), recording what it
 * returned. The pool: two pages, never written (both missing).
 */
function direct(meanwhile?: (client: Process, fd: number) => void) {
  const ran: boolean[] = [];
  let instance: PolicyInstance | null = null;
  let client: Process | null = null;
  let cfd = -1;
  const scheduler: Scheduler = {
    point() {},
    block(_p, until) {
      meanwhile?.(client!, cfd);
      ran.push(instance!.service!());
      if (!until()) throw new Error("the fault was not resolved");
    },
  };
  const k = new Kernel({ scheduler });
  const comp = k.spawn("compositor");
  client = k.spawn("client");
  instance = userfaultfd.create(comp, {
    panic: (r) => {
      throw new Error(r);
    },
    onBlocked: () => {}, // the scheduler above plays the handler thread
  });
  cfd = client.memfdCreate("pool", 0);
  client.ftruncate(cfd, 2 * PAGE_SIZE);
  const pool = {
    name: "c#1",
    fd: client.sendFd(cfd, comp),
    size: 2 * PAGE_SIZE,
    addr: 0,
    state: {},
    freed: false,
  };
  instance.mapPool(pool);
  return { comp, client, cfd, instance, pool, ran };
}
