/**
 * KWin's own wl_shm (src/wayland/shmclientbuffer.cpp, KWin 6), driven directly on a
 * compositor process. The rules pinned, each from the function named:
 *
 * - ShmPool::ShmPool: `sigbusImpossible = statbuf.st_size >= this->mapping->size()` when
 *   F_GET_SEALS has F_SEAL_SHRINK.
 * - ShmClientBuffer::map: unless sigbusImpossible, std::call_once installs sigbusHandler
 *   (SA_SIGINFO | SA_NODEFER) and saves prevSigbusAction; it is never uninstalled. One
 *   ShmAccess per buffer (m_shmAccess), counted; it holds the pool's mapping (shared_ptr).
 * - ShmClientBuffer::unmap: the access is unlinked (and its mapping reference dropped)
 *   when the count reaches 0.
 * - sigbusHandler: `addr >= mappingStart && addr < mappingStart + size` over
 *   s_accessedBuffers; no match → reraise *calls* prevSigbusAction's handler (SIG_DFL: a
 *   call through a null pointer, SIGSEGV; common.ts callPrevious).
 * - ShmPool::shm_pool_resize: `mapping = remapping`, the old MemoryMap lives while an
 *   access holds it.
 */
import { describe, expect, it } from "vitest";
import { kwin } from "../compositor/policies/kwin.ts";
import type { ShmPool } from "../compositor/policy.ts";
import { ShmRefusal } from "../compositor/policy.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { ErrnoError } from "../shm/errors.ts";
import { Kernel } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { SEAL } from "../shm/uapi.ts";
import { PG } from "./helpers.ts";
import { handlerOf, killedBy, pageBuffer, panickingEnv, sentPool } from "./policy-helpers.ts";

interface PoolSpec {
  /** The file's size (the pool is always one page). */
  fileSize?: number;
  seals?: number;
}

function setup(specs: PoolSpec[] = [{}]) {
  const k = new Kernel();
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const policy = kwin.create(comp, panickingEnv);
  const pools = specs.map((spec, i) => {
    const cfd = client.memfdCreate(`pool${i}`, 2 /* MFD_ALLOW_SEALING */);
    client.ftruncate(cfd, spec.fileSize ?? PG);
    client.pwrite(cfd, new Uint8Array(Math.min(PG, spec.fileSize ?? PG)).fill(0x5a), 0);
    if (spec.seals) client.addSeals(cfd, spec.seals);
    const pool = sentPool(client, comp, cfd, `c#${i}`);
    policy.mapPool(pool);
    const buffer = pageBuffer(pool, `c#b${i}`);
    return { cfd, pool, buffer };
  });
  return { comp, client, policy, pools };
}

/** Whether a VMA covers addr in comp (munmap removed it or not). */
const mapped = (comp: Process, addr: number) => comp.mm.find(addr) !== undefined;

const bus = (addr: number) => ({ signo: "SIGBUS" as const, code: "BUS_ADRERR" as const, addr });

describe("KWin sigbusHandler: only an accessed buffer's mapping is handled", () => {
  it("si_addr == mappingStart + size is outside: reraise calls SIG_DFL (SIGSEGV)", () => {
    const { comp, policy, pools } = setup();
    policy.beginAccess(pools[0].buffer);
    const h = handlerOf(comp);
    const k = killedBy(() => h(bus(pools[0].pool.addr + PG), comp));
    expect(k?.signal).toBe("SIGSEGV");
    expect(comp.alive).toBe(false);
  });

  it("one byte below mappingStart is outside too", () => {
    const { comp, policy, pools } = setup();
    policy.beginAccess(pools[0].buffer);
    const h = handlerOf(comp);
    expect(killedBy(() => h(bus(pools[0].pool.addr - 1), comp))?.signal).toBe("SIGSEGV");
  });

  it("the mapping's last byte: zeros over the whole mapping, the process lives, nothing sent", () => {
    const { comp, client, policy, pools } = setup();
    const { cfd, pool, buffer } = pools[0];
    const a = policy.beginAccess(buffer);
    client.ftruncate(cfd, 0);
    handlerOf(comp)(bus(pool.addr + PG - 1), comp);
    expect(comp.alive).toBe(true);
    const dst = new Uint8Array(PG).fill(0xff);
    policy.read(a, dst);
    expect(dst.every((b) => b === 0)).toBe(true);
    expect(policy.endAccess(a)).toBeUndefined();
  });

  it("after unmap (count 0) the buffer's mapping is no longer covered", () => {
    const { comp, policy, pools } = setup();
    const a = policy.beginAccess(pools[0].buffer);
    policy.endAccess(a);
    // call_once: the handler stays installed after the last unmap.
    const h = handlerOf(comp);
    expect(killedBy(() => h(bus(pools[0].pool.addr), comp))?.signal).toBe("SIGSEGV");
  });

  it("the access is counted: two maps of one buffer, one unmap, still covered", () => {
    const { comp, client, policy, pools } = setup();
    const { cfd, pool, buffer } = pools[0];
    const a1 = policy.beginAccess(buffer);
    const a2 = policy.beginAccess(buffer);
    policy.endAccess(a2);
    client.ftruncate(cfd, 0);
    const h = handlerOf(comp);
    h(bus(pool.addr), comp);
    expect(comp.alive).toBe(true);
    policy.endAccess(a1);
    expect(killedBy(() => h(bus(pool.addr), comp))?.signal).toBe("SIGSEGV");
  });
});

describe("KWin map: the handler is installed once, and not at all for a sealed pool", () => {
  it("installed with SA_NODEFER at the first map; a second map keeps prevSigbusAction (SIG_DFL)", () => {
    const { comp, policy, pools } = setup([{}, {}]);
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
    const a = policy.beginAccess(pools[0].buffer);
    const h = handlerOf(comp);
    expect(comp.signals.action("SIGBUS").nodefer).toBe(true);
    policy.beginAccess(pools[1].buffer);
    expect(handlerOf(comp)).toBe(h);
    const dst = new Uint8Array(PG);
    policy.read(a, dst);
    expect(dst.every((b) => b === 0x5a)).toBe(true);
    // prevSigbusAction is still SIG_DFL, not the handler itself: an unknown address dies.
    expect(killedBy(() => h(bus(1), comp))?.signal).toBe("SIGSEGV");
  });

  it("F_SEAL_SHRINK and st_size == the mapping's size: sigbusImpossible, no handler", () => {
    const { comp, policy, pools } = setup([{ seals: SEAL.F_SEAL_SHRINK }]);
    policy.beginAccess(pools[0].buffer);
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
  });

  it("F_SEAL_SHRINK but st_size < the mapping's size: the handler is installed", () => {
    const { comp, policy, pools } = setup([{ seals: SEAL.F_SEAL_SHRINK, fileSize: PG - 1 }]);
    policy.beginAccess(pools[0].buffer);
    expect(typeof comp.signals.action("SIGBUS").handler).toBe("function");
  });

  it("a file sealed otherwise (F_SEAL_GROW only) is not sigbusImpossible", () => {
    const { comp, policy, pools } = setup([{ seals: SEAL.F_SEAL_GROW }]);
    policy.beginAccess(pools[0].buffer);
    expect(typeof comp.signals.action("SIGBUS").handler).toBe("function");
  });
});

describe("KWin MemoryMap lifetime (shared_ptr held by the pool and each access)", () => {
  it("resize during an access: the old mapping stays until unmap, then is unmapped", () => {
    const { comp, client, policy, pools } = setup();
    const { cfd, pool, buffer } = pools[0];
    const a = policy.beginAccess(buffer);
    const oldAddr = pool.addr;
    client.ftruncate(cfd, 2 * PG);
    policy.growPool!(pool, 2 * PG);
    expect(pool.size).toBe(2 * PG);
    expect(mapped(comp, oldAddr)).toBe(true);
    expect(mapped(comp, pool.addr + PG)).toBe(true);
    policy.endAccess(a);
    expect(mapped(comp, oldAddr)).toBe(false);
    expect(mapped(comp, pool.addr)).toBe(true);
  });

  it("pool destroyed during an access: fd closed at once, mapping unmapped at the last unmap", () => {
    const { comp, policy, pools } = setup();
    const { pool, buffer } = pools[0];
    const fd = pool.fd;
    const addr = pool.addr;
    const a = policy.beginAccess(buffer);
    policy.unmapPool(pool);
    expect(pool.fd).toBe(-1);
    expect(() => comp.fstatSize(fd)).toThrow(ErrnoError);
    expect(mapped(comp, addr)).toBe(true);
    policy.endAccess(a);
    expect(mapped(comp, addr)).toBe(false);
  });
});

describe("KWin shm_create_pool and the damage upload", () => {
  it("an fd that cannot be mapped (a pipe: mmap ENODEV) is 'failed to map shm pool' (invalid_fd)", () => {
    const k = new Kernel();
    const comp = k.spawn("compositor");
    const client = k.spawn("client");
    const policy = kwin.create(comp, panickingEnv);
    const [r] = client.pipe();
    const pool: ShmPool = {
      name: "c#1",
      fd: client.sendFd(r, comp),
      size: PG,
      addr: 0,
      state: {},
      freed: false,
    };
    let refusal: unknown;
    try {
      policy.mapPool(pool);
    } catch (e) {
      if (!(e instanceof ShmRefusal)) throw e;
      refusal = e.refusal;
    }
    expect(refusal).toEqual({ code: SHM_ERROR.invalid_fd, message: "failed to map shm pool" });
  });

  it("readRange copies only the damaged bytes (m_texture->update(image, rect))", () => {
    const { policy, pools } = setup();
    const a = policy.beginAccess(pools[0].buffer);
    const dst = new Uint8Array(PG).fill(0xff);
    policy.readRange!(a, dst, 16, 8);
    expect([...dst.subarray(14, 26)]).toEqual([
      0xff, 0xff, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0xff, 0xff,
    ]);
  });
});
