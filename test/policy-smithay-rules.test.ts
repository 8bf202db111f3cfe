/**
 * Smithay's wl_shm (src/wayland/shm/pool.rs and mod.rs), driven directly on a compositor
 * process. The rules pinned, each from the function named:
 *
 * - Pool::with_data: `place_sigbus_handler()` once (SA_SIGINFO | SA_NODEFER); the
 *   thread-local SIGBUS_GUARD is set to (the MemMap, false); a guard already set panics
 *   "Recursive access to a SHM pool content is not supported."; after the access the guard
 *   is reset to (null, false) and `triggered` makes it Err(()).
 * - with_buffer_contents: Err → `buffer.post_error(InvalidFd, "Bad pool size.")`.
 * - sigbus_handler: the guard's MemMap `contains(si_addr)` (ptr <= addr < ptr + size) →
 *   triggered = true, nullify() (anonymous zeros over the whole map); else reraise_sigbus
 *   (restore the old action and raise: SIG_DFL kills by SIGBUS).
 * - MemMap::remap (InnerPool::resize): munmap the old map, mmap from the kept fd.
 * - Drop for Pool: close(fd).
 */
import { describe, expect, it } from "vitest";
import { smithay } from "../compositor/policies/smithay.ts";
import type { ShmPool } from "../compositor/policy.ts";
import { ShmRefusal } from "../compositor/policy.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { ErrnoError } from "../shm/errors.ts";
import { Kernel } from "../shm/kernel.ts";
import { PG } from "./helpers.ts";
import { handlerOf, pageBuffer, recordingEnv, sentPool } from "./policy-helpers.ts";

function setup(n = 1, thread?: () => string) {
  const k = new Kernel();
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const panics: string[] = [];
  const env = recordingEnv(panics, thread ? { thread } : {});
  const policy = smithay.create(comp, env);
  const pools = Array.from({ length: n }, (_, i) => {
    const cfd = client.memfdCreate(`pool${i}`, 0);
    client.ftruncate(cfd, PG);
    client.pwrite(cfd, new Uint8Array(PG).fill(0x5a), 0);
    const pool = sentPool(client, comp, cfd, `c#${i}`);
    policy.mapPool(pool);
    const buffer = pageBuffer(pool, `c#b${i}`);
    return { cfd, pool, buffer };
  });
  return { comp, client, policy, pools, panics };
}

const bus = (addr: number) => ({ signo: "SIGBUS" as const, code: "BUS_ADRERR" as const, addr });
const BAD_POOL = { error: { code: SHM_ERROR.invalid_fd, message: "Bad pool size." } };

describe("Smithay sigbus_handler: the guarded MemMap's range decides", () => {
  it("the map's last byte: triggered, zeros over the map, 'Bad pool size.' after the access", () => {
    const { comp, client, policy, pools } = setup();
    const { cfd, pool, buffer } = pools[0];
    const a = policy.beginAccess(buffer);
    client.ftruncate(cfd, 0);
    handlerOf(comp)(bus(pool.addr + PG - 1), comp);
    expect(typeof comp.signals.action("SIGBUS").handler).toBe("function"); // not re-raised
    const dst = new Uint8Array(PG).fill(0xff);
    policy.read(a, dst);
    expect(dst.every((b) => b === 0)).toBe(true);
    expect(policy.endAccess(a)).toEqual(BAD_POOL);
  });

  for (const [what, off] of [
    ["ptr + size", PG],
    ["ptr - 1", -1],
  ] as const) {
    it(`si_addr == ${what} is outside: re-raised (the old SIG_DFL restored), not triggered`, () => {
      const { comp, policy, pools } = setup();
      const a = policy.beginAccess(pools[0].buffer);
      handlerOf(comp)(bus(pools[0].pool.addr + off), comp);
      expect(comp.signals.action("SIGBUS").handler).toBe("default");
      expect(policy.endAccess(a)).toBeUndefined();
    });
  }

  it("no access in progress (guard null): re-raised even inside the pool", () => {
    const { comp, policy, pools } = setup();
    const a = policy.beginAccess(pools[0].buffer);
    expect(policy.endAccess(a)).toBeUndefined();
    handlerOf(comp)(bus(pools[0].pool.addr), comp);
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
  });

  it("the guard is per thread: a fault on another thread with no access is re-raised", () => {
    let t = "main";
    const { comp, policy, pools } = setup(1, () => t);
    policy.beginAccess(pools[0].buffer);
    t = "render";
    handlerOf(comp)(bus(pools[0].pool.addr), comp);
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
  });

  it("a clean access returns Ok: nothing sent, the client's bytes read", () => {
    const { policy, pools } = setup();
    const a = policy.beginAccess(pools[0].buffer);
    const dst = new Uint8Array(PG);
    policy.read(a, dst);
    expect(dst.every((b) => b === 0x5a)).toBe(true);
    expect(policy.endAccess(a)).toBeUndefined();
  });

  it("triggered is reset: the access after a triggered one is Ok", () => {
    const { comp, client, policy, pools } = setup();
    const { cfd, pool, buffer } = pools[0];
    const a = policy.beginAccess(buffer);
    client.ftruncate(cfd, 0);
    handlerOf(comp)(bus(pool.addr), comp);
    expect(policy.endAccess(a)).toEqual(BAD_POOL);
    expect(policy.endAccess(policy.beginAccess(buffer))).toBeUndefined();
  });
});

describe("Smithay with_data: handler once, recursion panics", () => {
  it("installed once with SA_NODEFER; the old action saved is SIG_DFL", () => {
    const { comp, policy, pools } = setup(2);
    policy.endAccess(policy.beginAccess(pools[0].buffer));
    const h = handlerOf(comp);
    expect(comp.signals.action("SIGBUS").nodefer).toBe(true);
    policy.beginAccess(pools[1].buffer);
    expect(handlerOf(comp)).toBe(h);
    h(bus(1), comp); // outside: reraise restores the saved action, SIG_DFL — not h itself
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
  });

  it("a second access on the same thread, even to another pool, panics", () => {
    const { policy, pools, panics } = setup(2);
    policy.beginAccess(pools[0].buffer);
    expect(() => policy.beginAccess(pools[1].buffer)).toThrow(/panic/);
    expect(panics).toEqual(["Recursive access to a SHM pool content is not supported."]);
  });

  it("sequential accesses do not panic", () => {
    const { policy, pools, panics } = setup();
    policy.endAccess(policy.beginAccess(pools[0].buffer));
    policy.endAccess(policy.beginAccess(pools[0].buffer));
    expect(panics).toEqual([]);
  });
});

describe("Smithay pool lifetime", () => {
  it("remap: the old map is unmapped, the new one is mapped from the kept fd", () => {
    const { comp, client, policy, pools } = setup();
    const { cfd, pool } = pools[0];
    const old = pool.addr;
    client.ftruncate(cfd, 2 * PG);
    policy.growPool!(pool, 2 * PG);
    expect(pool.size).toBe(2 * PG);
    expect(comp.mm.find(pool.addr + PG)).toBeDefined();
    // The old map is gone: its address is free, or reused by the new map (top-down mmap).
    const v = comp.mm.find(old);
    expect(v === undefined || v === comp.mm.find(pool.addr)).toBe(true);
  });

  it("Drop for Pool: unmapped and the fd closed", () => {
    const { comp, policy, pools } = setup();
    const { pool } = pools[0];
    const fd = pool.fd;
    const addr = pool.addr;
    policy.unmapPool(pool);
    expect(pool.fd).toBe(-1);
    expect(() => comp.fstatSize(fd)).toThrow(ErrnoError);
    expect(comp.mm.find(addr)).toBeUndefined();
  });
});

describe("Smithay create_pool (handlers.rs)", () => {
  it('Pool::new failing (a pipe: mmap ENODEV) posts InvalidFd "Failed to mmap fd {fd}"', () => {
    const k = new Kernel();
    const comp = k.spawn("compositor");
    const client = k.spawn("client");
    const policy = smithay.create(comp, {
      panic: (reason) => {
        throw new Error(`panic: ${reason}`);
      },
      onBlocked: () => {},
    });
    const fd = client.sendFd(client.pipe()[0], comp);
    const pool: ShmPool = { name: "c#1", fd, size: PG, addr: 0, state: {}, freed: false };
    let refusal: unknown;
    try {
      policy.mapPool(pool);
    } catch (e) {
      if (!(e instanceof ShmRefusal)) throw e;
      refusal = e.refusal;
    }
    expect(refusal).toEqual({ code: SHM_ERROR.invalid_fd, message: `Failed to mmap fd ${fd}` });
  });
});
