/**
 * The X server's MIT-SHM (xserver os/busfault.c and Xext/shm.c) driven directly on a
 * compositor process. The rules pinned, each from the function named:
 *
 * - busfault_sigaction: the record with `iter->addr <= fault && fault < iter->addr +
 *   iter->size`; none, or one already invalid → panic (FatalError); else valid = FALSE,
 *   busfaulted = TRUE and anonymous zeros mapped over the whole record.
 * - busfault_check: only when busfaulted; each invalid record → ShmBusfaultNotify (the
 *   segment freed, its record unregistered); valid ones are kept.
 * - ProcShmAttachFd: `fstat(fd) < 0 || statb.st_size == 0` → BadMatch; maps st_size, not a
 *   size the client claims, PROT_READ|PROT_WRITE MAP_SHARED (readOnly false); closes the fd,
 *   then `if (shmdesc->addr == ((char *) -1)) return BadAccess` with no segment made.
 * - ShmDetachSegment → busfault_unregister: a detached segment has no record; one that
 *   ShmBusfaultNotify already unregistered (`shmdesc->busfault = NULL`) unregisters nothing.
 */
import { describe, expect, it } from "vitest";
import { xorgMitShm } from "../compositor/policies/xorg-mit-shm.ts";
import type { ShmPool } from "../compositor/policy.ts";
import { ShmRefusal } from "../compositor/policy.ts";
import { Kernel } from "../shm/kernel.ts";
import { MFD, SEAL } from "../shm/uapi.ts";
import { PG } from "./helpers.ts";
import { handlerOf, pageBuffer, recordingEnv, sentPool } from "./policy-helpers.ts";

const FATAL = "FatalError: Caught signal 7 (Bus error). Server aborting";

function setup(n = 1, fileSize = PG) {
  const k = new Kernel();
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const panics: string[] = [];
  const env = recordingEnv(panics);
  const policy = xorgMitShm.create(comp, env);
  const pools = Array.from({ length: n }, (_, i) => {
    const cfd = client.memfdCreate(`seg${i}`, 0);
    client.ftruncate(cfd, fileSize);
    // a claimed size the server never uses: it fstat()s the file
    const pool = sentPool(client, comp, cfd, `c#${i}`, 1);
    const buffer = pageBuffer(pool, `c#b${i}`);
    return { cfd, pool, buffer };
  });
  return { comp, client, policy, pools, panics };
}

const bus = (addr: number) => ({ signo: "SIGBUS" as const, code: "BUS_ADRERR" as const, addr });

describe("Xorg ProcShmAttachFd", () => {
  it("maps st_size, not the claimed size, and closes the fd", () => {
    const { comp, policy, pools } = setup(1, 2 * PG);
    const { pool } = pools[0];
    const fd = pool.fd;
    policy.mapPool(pool);
    expect(pool.size).toBe(2 * PG);
    expect(pool.fd).toBe(-1);
    expect(() => comp.fstatSize(fd)).toThrow();
  });

  it("fstat failing is BadMatch: `fstat(fd, &statb) < 0`", () => {
    const { comp, policy, pools } = setup();
    const { pool } = pools[0];
    comp.close(pool.fd); // the fd names no open file now: fstat is EBADF
    let err: unknown;
    try {
      policy.mapPool(pool);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShmRefusal);
    expect((err as ShmRefusal).refusal.xError).toBe("BadMatch");
  });

  it("a write-sealed file cannot be mapped read-write shared: BadAccess, the fd closed", () => {
    // mmap(2): EPERM for PROT_WRITE + MAP_SHARED on an F_SEAL_WRITE memfd (memfd_create(2));
    // ProcShmAttachFd maps PROT_READ|PROT_WRITE when readOnly is false, closes the fd, and
    // returns BadAccess on MAP_FAILED.
    const { comp, client, policy, pools } = setup(1);
    const sfd = client.memfdCreate("sealed", MFD.MFD_ALLOW_SEALING);
    client.ftruncate(sfd, PG);
    client.addSeals(sfd, SEAL.F_SEAL_WRITE);
    const pool: ShmPool = { ...pools[0].pool, name: "c#s", fd: client.sendFd(sfd, comp) };
    const fd = pool.fd;
    let err: unknown;
    try {
      policy.mapPool(pool);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShmRefusal);
    expect((err as ShmRefusal).refusal.xError).toBe("BadAccess");
    expect(pool.fd).toBe(-1);
    expect(() => comp.fstatSize(fd)).toThrow(); // closed before the check
  });

  it("an empty file is BadMatch (an X error), the fd closed: `close(fd); return BadMatch`", () => {
    const { comp, policy, pools } = setup(1, 0);
    const fd = pools[0].pool.fd;
    let err: unknown;
    try {
      policy.mapPool(pools[0].pool);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShmRefusal);
    expect((err as ShmRefusal).refusal.xError).toBe("BadMatch");
    expect(pools[0].pool.fd).toBe(-1);
    expect(() => comp.fstatSize(fd)).toThrow();
  });
});

describe("Xorg busfault_sigaction: the registered segment's range decides", () => {
  for (const [what, off] of [
    ["addr + size", PG],
    ["addr - 1", -1],
  ] as const) {
    it(`a fault at ${what} matches no record: FatalError`, () => {
      const { comp, policy, pools, panics } = setup();
      policy.mapPool(pools[0].pool);
      expect(() => handlerOf(comp)(bus(pools[0].pool.addr + off), comp)).toThrow(/panic/);
      expect(panics).toEqual([FATAL]);
    });
  }

  it("the segment's last byte: zeros over the segment, no panic", () => {
    const { comp, client, policy, pools, panics } = setup();
    const { cfd, pool } = pools[0];
    policy.mapPool(pool);
    client.ftruncate(cfd, 0);
    handlerOf(comp)(bus(pool.addr + PG - 1), comp);
    expect(panics).toEqual([]);
    expect(comp.load(pool.addr, PG).every((b) => b === 0)).toBe(true);
  });

  it("a detached segment (busfault_unregister) has no record: FatalError", () => {
    const { comp, policy, pools, panics } = setup(2);
    policy.mapPool(pools[0].pool);
    policy.mapPool(pools[1].pool);
    const addr = pools[0].pool.addr;
    policy.unmapPool(pools[0].pool);
    expect(() => handlerOf(comp)(bus(addr), comp)).toThrow(/panic/);
    expect(panics).toEqual([FATAL]);
  });

  it("a resize moves only its own segment's record", () => {
    // Two segments, the second attached last; growing the first must leave the second's
    // record where it is (busfault records are per segment, found by their own pointer).
    const { comp, client, policy, pools, panics } = setup(2);
    for (const p of pools) policy.mapPool(p.pool);
    client.ftruncate(pools[0].cfd, 2 * PG);
    policy.growPool!(pools[0].pool, 2 * PG);
    handlerOf(comp)(bus(pools[1].pool.addr), comp);
    expect(panics).toEqual([]);
    handlerOf(comp)(bus(pools[0].pool.addr + 2 * PG - 1), comp);
    expect(panics).toEqual([]);
    expect(policy.idle!().map((n) => n.pool)).toEqual([pools[1].pool, pools[0].pool]); // newest first: xorg_list_add at the head
  });

  it("a resized segment's record follows the new mapping", () => {
    const { comp, client, policy, pools, panics } = setup();
    const { cfd, pool } = pools[0];
    policy.mapPool(pool);
    client.ftruncate(cfd, 2 * PG);
    policy.growPool!(pool, 2 * PG);
    handlerOf(comp)(bus(pool.addr + 2 * PG - 1), comp);
    expect(panics).toEqual([]);
  });
});

describe("Xorg busfault_check / ShmBusfaultNotify", () => {
  it("detaching a segment ShmBusfaultNotify already unregistered leaves the others' records", () => {
    // ShmBusfaultNotify: busfault_unregister(shmdesc->busfault); shmdesc->busfault = NULL.
    // ShmDetachSegment later: `if (shmdesc->busfault) busfault_unregister(...)`: nothing.
    const { comp, policy, pools, panics } = setup(2);
    for (const p of pools) policy.mapPool(p.pool);
    handlerOf(comp)(bus(pools[1].pool.addr), comp);
    expect(policy.idle!().map((n) => n.pool)).toEqual([pools[1].pool]);
    policy.unmapPool(pools[1].pool);
    // The first segment is still registered: its fault is rescued, not fatal.
    handlerOf(comp)(bus(pools[0].pool.addr), comp);
    expect(panics).toEqual([]);
    expect(policy.idle!().map((n) => n.pool)).toEqual([pools[0].pool]);
  });

  it("a freed segment has no record for a later resize to follow", () => {
    const { comp, client, policy, pools, panics } = setup(1);
    policy.mapPool(pools[0].pool);
    handlerOf(comp)(bus(pools[0].pool.addr), comp);
    policy.idle!();
    client.ftruncate(pools[0].cfd, 2 * PG);
    policy.growPool!(pools[0].pool, 2 * PG);
    expect(() => handlerOf(comp)(bus(pools[0].pool.addr), comp)).toThrow(/panic/);
    expect(panics).toEqual([FATAL]);
  });

  it("frees only the faulted segment, once", () => {
    const { comp, policy, pools } = setup(2);
    for (const p of pools) policy.mapPool(p.pool);
    expect(policy.idle!()).toEqual([]);
    handlerOf(comp)(bus(pools[1].pool.addr), comp);
    const notes = policy.idle!();
    expect(notes.map((n) => n.pool)).toEqual([pools[1].pool]);
    expect(pools[1].pool.freed).toBe(true);
    expect(pools[0].pool.freed).toBe(false);
    expect(policy.idle!()).toEqual([]);
    // The faulted record is gone; the other segment is still registered.
    handlerOf(comp)(bus(pools[0].pool.addr), comp);
    expect(policy.idle!().map((n) => n.pool)).toEqual([pools[0].pool]);
  });
});
