/**
 * The `droppable-cache` policy (compositor/policies/droppable-cache.ts; docs/hazards.md)
 * driven directly on a compositor process. It is a construct, not a compositor: the rules
 * pinned are its stated design and the Linux behaviour it rests on.
 *
 * - Its SIGBUS handler is libwayland's (wayland-shm.c sigbus_handler): installed once, at
 *   the first access, with SA_NODEFER, the old action saved; a fault outside the pool of the
 *   access in progress (`addr < pool->data || addr >= pool->data + pool->size`), or with no
 *   access in progress, is reraise_sigbus (the old action back, the retried access dies);
 *   inside, anonymous zeros over the whole pool and the access goes on.
 * - Its cache is per client ("client-label#poolId" names the pool), of the last frame that
 *   read cleanly, in MAP_DROPPABLE memory of the pages the frame needs; a faulting read shows
 *   that frame if it is the same size, else black.
 * - Linux 6.11 MAP_DROPPABLE (LINUX.md rule 17): dropped pages read back as zero with no
 *   signal; the policy notices only by the frame's hash: black and one notice, then black.
 */
import { describe, expect, it } from "vitest";
import { droppableCache } from "../compositor/policies/droppable-cache.ts";
import type { BufferView, ShmPool } from "../compositor/policy.ts";
import { ARGB8888 } from "../compositor/validation.ts";
import { Kernel } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { reclaim } from "../shm/reclaim.ts";
import { MADV_PAGEOUT } from "../shm/syscalls/memory.ts";
import { PG } from "./helpers.ts";
import { handlerOf, killedBy, panickingEnv } from "./policy-helpers.ts";

function setup() {
  const k = new Kernel();
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const policy = droppableCache.create(comp, panickingEnv);
  /** A pool named `name` of `pages` pages filled with `byte`, mapped by the policy. */
  const pool = (name: string, pages: number, byte: number) => {
    const cfd = client.memfdCreate(name, 0);
    client.ftruncate(cfd, pages * PG);
    client.pwrite(cfd, new Uint8Array(pages * PG).fill(byte), 0);
    const p: ShmPool = {
      name,
      fd: client.sendFd(cfd, comp),
      size: pages * PG,
      addr: 0,
      state: {},
      freed: false,
    };
    policy.mapPool(p);
    return { cfd, pool: p };
  };
  /** One bracketed read of `span` bytes at the pool's start: what the compositor shows. */
  const show = (p: ShmPool, span = p.size) => {
    const b: BufferView = {
      pool: p,
      offset: 0,
      width: span / 4,
      height: 1,
      stride: span,
      format: ARGB8888,
      bpp: 4,
      span,
      name: `${p.name}/b`,
    };
    const a = policy.beginAccess(b);
    const dst = new Uint8Array(span).fill(0xee);
    policy.read(a, dst);
    policy.endAccess(a);
    return dst;
  };
  return { k, comp, client, policy, pool, show };
}

const all = (b: Uint8Array, v: number) => b.every((x) => x === v);
const bus = (addr: number) => ({ signo: "SIGBUS" as const, code: "BUS_ADRERR" as const, addr });
const droppableVmas = (comp: Process) => comp.mm.vmas.filter((v) => v.flags.droppable);

describe("droppable-cache's SIGBUS handler (libwayland's)", () => {
  it("installed once at the first access, SA_NODEFER, the old action kept under it", () => {
    const { comp, policy, pool, show } = setup();
    const { pool: p } = pool("c#1", 1, 0x5a);
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
    show(p);
    show(p);
    expect(comp.signals.action("SIGBUS").nodefer).toBe(true);
    // A fault outside any access reraises: the action restored is the one from before the
    // first access (SIG_DFL), not the policy's own (a second install would have saved it).
    policy.beginAccess({ ...bufferOf(p) });
    handlerOf(comp)(bus(p.addr + p.size), comp);
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
  });

  for (const [what, off] of [
    ["pool->data + pool->size", (p: ShmPool) => p.addr + p.size],
    ["pool->data - 1", (p: ShmPool) => p.addr - 1],
  ] as const)
    it(`a fault at ${what} is outside the pool: reraise_sigbus`, () => {
      const { comp, policy, pool, show } = setup();
      const { pool: p } = pool("c#1", 1, 0x5a);
      show(p);
      policy.beginAccess(bufferOf(p));
      handlerOf(comp)(bus(off(p)), comp);
      expect(comp.signals.action("SIGBUS").handler).toBe("default");
      expect(p.state.broken).toBeUndefined();
    });

  it("a fault after the access ended has no current pool: reraise_sigbus", () => {
    const { comp, pool, show } = setup();
    const { pool: p } = pool("c#1", 1, 0x5a);
    show(p);
    handlerOf(comp)(bus(p.addr), comp);
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
  });

  it("a fault on the pool's last byte: zeros over the pool, the handler stays for the next", () => {
    const { comp, client, policy, pool, show } = setup();
    const a = pool("c#1", 1, 0x5a);
    const b = pool("c#2", 1, 0x6b);
    show(a.pool);
    client.ftruncate(a.cfd, 0);
    policy.beginAccess(bufferOf(a.pool));
    handlerOf(comp)(bus(a.pool.addr + a.pool.size - 1), comp);
    expect(a.pool.state.broken).toBe(true);
    expect(all(comp.load(a.pool.addr, PG), 0)).toBe(true);
    expect(typeof comp.signals.action("SIGBUS").handler).toBe("function");
    // The second pool shrinks too: its read is rescued by the same handler.
    client.ftruncate(b.cfd, 0);
    expect(killedBy(() => show(b.pool))).toBeNull();
    expect(comp.alive).toBe(true);
  });
});

function bufferOf(p: ShmPool): BufferView {
  return {
    pool: p,
    offset: 0,
    width: p.size / 4,
    height: 1,
    stride: p.size,
    format: ARGB8888,
    bpp: 4,
    span: p.size,
    name: `${p.name}/b`,
  };
}

describe("droppable-cache's last good frame", () => {
  it("a faulting read shows the client's last good frame, and keeps showing it", () => {
    const { client, pool, show } = setup();
    const { cfd, pool: p } = pool("c#1", 2, 0x5a);
    expect(all(show(p), 0x5a)).toBe(true);
    client.ftruncate(cfd, 0);
    expect(all(show(p), 0x5a)).toBe(true);
    expect(all(show(p), 0x5a)).toBe(true); // the next frame: still frozen, not zeros
  });

  it("the cache is per client: another pool of the same client shows it, another client's does not", () => {
    const { client, pool, show } = setup();
    const c1 = pool("client-1#1", 1, 0x5a);
    const c2 = pool("client-1#2", 1, 0x6b);
    const d1 = pool("client-2#1", 1, 0x7c);
    expect(all(show(c1.pool), 0x5a)).toBe(true);
    client.ftruncate(c2.cfd, 0);
    client.ftruncate(d1.cfd, 0);
    expect(all(show(c2.pool), 0x5a)).toBe(true); // client-1's last good frame
    expect(all(show(d1.pool), 0)).toBe(true); // client-2 has none: black
  });

  it("a last good frame of another size is not shown: black, and nothing was reclaimed", () => {
    const { client, policy, pool, show } = setup();
    const { cfd, pool: p } = pool("c#1", 1, 0x5a);
    show(p);
    client.ftruncate(cfd, 0);
    expect(all(show(p, PG / 2), 0)).toBe(true);
    expect(policy.idle!()).toEqual([]); // black by size, not a "lost to memory pressure"
  });

  it("the cache takes the pages the frame needs, and moves to a bigger mapping for a bigger frame", () => {
    const { comp, client, pool, show } = setup();
    const small = pool("c#1", 1, 0x5a);
    show(small.pool, PG / 2);
    expect(droppableVmas(comp).map((v) => v.end - v.start)).toEqual([PG]);
    const big = pool("c#2", 3, 0x6b);
    show(big.pool);
    // The old cache is unmapped: one droppable mapping, of three pages.
    expect(droppableVmas(comp).map((v) => v.end - v.start)).toEqual([3 * PG]);
    client.ftruncate(big.cfd, 0);
    expect(all(show(big.pool), 0x6b)).toBe(true);
  });

  it("reclaimed: black and one notice, then black with no second notice", () => {
    const { k, client, policy, pool, show } = setup();
    const { cfd, pool: p } = pool("c#1", 1, 0x5a);
    show(p);
    expect(reclaim(k)).toBe(1);
    client.ftruncate(cfd, 0);
    expect(all(show(p), 0)).toBe(true);
    expect(policy.idle!().map((n) => n.what)).toEqual([
      "last good frame lost to memory pressure (droppable pages reclaimed)",
    ]);
    expect(all(show(p), 0)).toBe(true);
    expect(policy.idle!()).toEqual([]);
  });

  it("partly reclaimed: the remaining page is not shown as a half frame, now or later", () => {
    const { comp, client, policy, pool, show } = setup();
    const { cfd, pool: p } = pool("c#1", 2, 0x5a);
    show(p);
    const [cache] = droppableVmas(comp);
    comp.madvise(cache.start, PG, MADV_PAGEOUT); // the first page dropped, the second kept
    client.ftruncate(cfd, 0);
    expect(all(show(p), 0)).toBe(true);
    expect(policy.idle!()).toHaveLength(1);
    expect(all(show(p), 0)).toBe(true);
  });
});
