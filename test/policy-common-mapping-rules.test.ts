/**
 * The pieces the policies share (compositor/policies/common.ts), pinned through the
 * policies that use them, each from the source it follows:
 *
 * - wayland src/wayland-shm.c shm_create_pool: `mmap(NULL, size, PROT_READ | PROT_WRITE,
 *   MAP_SHARED, fd, 0)`; on MAP_FAILED `wl_resource_post_error(resource,
 *   WL_SHM_ERROR_INVALID_FD, "failed mmap fd %d: %s", fd, strerror(errno))` — a text the
 *   client receives in wl_display.error; then `close(fd)`.
 * - shm_pool_finish_resize: `mremap(pool->data, pool->size, pool->new_size,
 *   MREMAP_MAYMOVE)`: the grown tail is readable at the pool's (possibly new) address.
 * - shm_pool_unref: `munmap(pool->data, pool->size)` when the last reference goes.
 * - MAP_POPULATE (mmap(2): "Populate (prefault) page tables for a mapping"): the first read
 *   of a populated pool takes no page fault.
 * - Hyprland's CSHMPool keeps the fd and closes it with the pool (`close(fd)` in its
 *   destructor).
 * - wlroots/KWin's reraise *calls* the previous action: glibc's <signal.h> has
 *   `SIG_DFL ((__sighandler_t) 0)` and `SIG_IGN ((__sighandler_t) 1)`, so the call jumps to
 *   address 0 or 1: SIGSEGV, SEGV_MAPERR, si_addr 0 or 1.
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import type { BufferView, ShmPool } from "../compositor/policy.ts";
import { ShmRefusal } from "../compositor/policy.ts";
import { ARGB8888 } from "../compositor/validation.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { Kernel } from "../shm/kernel.ts";
import { MFD, SEAL } from "../shm/uapi.ts";
import { PG } from "./helpers.ts";
import { handlerOf, killedBy, panickingEnv } from "./policy-helpers.ts";

/** A compositor running `policy` and a client with a `size`-byte memfd of 0x5a bytes. */
function setup(policy: string, size = PG, opts: { seal?: number } = {}) {
  const k = new Kernel();
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const instance = getPolicy(policy).create(comp, panickingEnv);
  const cfd = client.memfdCreate("pool", MFD.MFD_ALLOW_SEALING);
  client.ftruncate(cfd, size);
  client.pwrite(cfd, new Uint8Array(size).fill(0x5a), 0);
  if (opts.seal) client.addSeals(cfd, opts.seal);
  const pool: ShmPool = {
    name: "c#1",
    fd: client.sendFd(cfd, comp),
    size,
    addr: 0,
    state: {},
    freed: false,
  };
  return { comp, client, instance, cfd, pool };
}

function buffer(pool: ShmPool, offset: number, span: number): BufferView {
  return {
    pool,
    offset,
    width: span / 4,
    height: 1,
    stride: span,
    format: ARGB8888,
    bpp: 4,
    span,
    name: "c#b1",
  };
}

function refusalOf(fn: () => void): ShmRefusal {
  try {
    fn();
  } catch (e) {
    if (e instanceof ShmRefusal) return e;
    throw e;
  }
  throw new Error("not refused");
}

// The policies that map a pool the libwayland way (common.ts libwaylandMap/Grow, unmapQuiet).
const LIBWAYLAND_MAPPERS = ["none", "populate", "droppable-cache", "userfaultfd"];

describe("shm_create_pool's mapping (libwaylandMap)", () => {
  it('a write-sealed file: wl_shm.invalid_fd "failed mmap fd N: Operation not permitted"', () => {
    // mmap(2) EPERM: PROT_WRITE on a MAP_SHARED mapping of an F_SEAL_WRITE memfd.
    const { instance, pool } = setup("none", PG, { seal: SEAL.F_SEAL_WRITE });
    const fd = pool.fd;
    const r = refusalOf(() => instance.mapPool(pool));
    expect(r.refusal.code).toBe(SHM_ERROR.invalid_fd);
    expect(r.refusal.message).toBe(`failed mmap fd ${fd}: Operation not permitted`);
  });

  for (const name of LIBWAYLAND_MAPPERS)
    it(`${name}: the fd is closed once mapped (close(fd) after mmap)`, () => {
      const { comp, instance, pool } = setup(name);
      const fd = pool.fd;
      instance.mapPool(pool);
      expect(pool.fd).toBe(-1);
      expect(() => comp.fstatSize(fd)).toThrow();
      expect(comp.load(pool.addr, 1)[0]).toBe(0x5a);
    });
});

describe("shm_pool_finish_resize and shm_pool_unref", () => {
  it('mremap failing (ENOMEM: no address range fits) is wl_shm.invalid_fd "failed mremap"', () => {
    const { instance, pool } = setup("none");
    instance.mapPool(pool);
    const r = refusalOf(() => instance.growPool(pool, 2 ** 48));
    expect(r.refusal).toEqual({ code: SHM_ERROR.invalid_fd, message: "failed mremap" });
  });

  for (const name of LIBWAYLAND_MAPPERS) {
    it(`${name}: a grown pool's tail is readable at its address`, () => {
      const { comp, client, instance, cfd, pool } = setup(name);
      instance.mapPool(pool);
      client.ftruncate(cfd, 3 * PG);
      client.pwrite(cfd, new Uint8Array(2 * PG).fill(0x77), PG);
      instance.growPool(pool, 3 * PG);
      expect(pool.size).toBe(3 * PG);
      expect(comp.load(pool.addr + 3 * PG - 1, 1)[0]).toBe(0x77);
    });

    it(`${name}: the last reference gone, the mapping is gone`, () => {
      const { comp, instance, pool } = setup(name);
      instance.mapPool(pool);
      const addr = pool.addr;
      instance.unmapPool(pool);
      expect(comp.mm.find(addr)).toBeUndefined();
    });
  }
});

describe("MAP_POPULATE", () => {
  it("populate prefaults the pool at create_pool: its first read takes no fault; none's does", () => {
    const faults = (name: string) => {
      const { comp, instance, pool } = setup(name, 2 * PG);
      instance.mapPool(pool);
      const before = comp.counters.minorFaults;
      const a = instance.beginAccess(buffer(pool, 0, 2 * PG));
      instance.read(a, new Uint8Array(2 * PG));
      instance.endAccess(a);
      return comp.counters.minorFaults - before;
    };
    expect(faults("populate")).toBe(0);
    // Without it the first load faults (fault-around may map the neighbour page too:
    // shmem's map_pages is filemap_map_pages).
    expect(faults("none")).toBeGreaterThan(0);
  });
});

describe("Hyprland's pool keeps its fd until the pool goes (closeQuiet)", () => {
  it("the pool's fd is kept while the pool lives and closed with it", () => {
    const { comp, instance, pool } = setup("hyprland");
    const fd = pool.fd;
    instance.mapPool(pool);
    expect(comp.fstatSize(fd)).toBe(PG); // kept while the pool lives
    instance.unmapPool(pool);
    expect(pool.fd).toBe(-1);
    expect(() => comp.fstatSize(fd)).toThrow();
  });
});

describe("calling the previous action (wlroots' reraise through prev_action)", () => {
  for (const [prev, addr] of [
    ["default", 0],
    ["ignore", 1],
  ] as const)
    it(`a previous SIG_${prev === "default" ? "DFL" : "IGN"} is a call to address ${addr}: SIGSEGV SEGV_MAPERR`, () => {
      const { comp, instance, pool } = setup("wlroots");
      comp.sigaction("SIGBUS", { handler: prev });
      instance.mapPool(pool);
      instance.beginAccess(buffer(pool, 0, PG));
      const k = killedBy(() =>
        handlerOf(comp)({ signo: "SIGBUS", code: "BUS_ADRERR", addr: pool.addr + PG }, comp),
      );
      expect(k?.signal).toBe("SIGSEGV");
      expect(k?.info).toEqual({ signo: "SIGSEGV", code: "SEGV_MAPERR", addr });
      expect(k?.reason).toBe("unhandled");
    });
});
