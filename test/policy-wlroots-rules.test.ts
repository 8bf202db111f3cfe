/**
 * wlroots' own wl_shm (types/wlr_shm.c, 0.17+), driven directly on a compositor process.
 * The rules pinned, each from the function named:
 *
 * - handle_sigbus: `if (addr >= mapping_start && addr < mapping_start + mapping_size)` over
 *   the list of active accesses; no match → `goto reraise`, which *calls* prev_action's
 *   handler (SIG_DFL is a call through a null pointer: SIGSEGV, common.ts callPrevious).
 * - buffer_begin_data_ptr_access: sigaction(SIGBUS, {handle_sigbus, SA_SIGINFO |
 *   SA_NODEFER}) only when `sigbus_data == NULL`; otherwise prev_action is copied from the
 *   head of the list.
 * - buffer_end_data_ptr_access: unlinks its node; `if (sigbus_data == NULL)` restores
 *   prev_action; then mapping_consider_destroy(mapping).
 * - mapping_consider_destroy: munmap only if `mapping->dropped` and no active access holds
 *   it; mapping_drop (from pool_handle_resize and pool_consider_destroy) sets `dropped`.
 * - pool_consider_destroy: mapping_drop, then close(pool->fd).
 */
import { describe, expect, it } from "vitest";
import { wlroots } from "../compositor/policies/wlroots.ts";
import { ErrnoError, ProcessKilled } from "../shm/errors.ts";
import { Kernel } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { PG } from "./helpers.ts";
import { handlerOf, killedBy, pageBuffer, panickingEnv, sentPool } from "./policy-helpers.ts";

/** A compositor with wlroots' policy and `n` one-page pools of 0x5a bytes. */
function setup(n = 1) {
  const k = new Kernel();
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const policy = wlroots.create(comp, panickingEnv);
  const pools = Array.from({ length: n }, (_, i) => {
    const cfd = client.memfdCreate(`pool${i}`, 0);
    client.ftruncate(cfd, PG);
    client.pwrite(cfd, new Uint8Array(PG).fill(0x5a), 0);
    const pool = sentPool(client, comp, cfd, `c#${i}`);
    policy.mapPool(pool);
    const buffer = pageBuffer(pool, `c#b${i}`);
    return { cfd, pool, buffer };
  });
  return { comp, client, policy, pools };
}

/** Whether a VMA covers addr in comp (munmap removed it or not). */
function mapped(comp: Process, addr: number): boolean {
  return comp.mm.find(addr) !== undefined;
}

describe("wlroots handle_sigbus: only an active access's mapping is handled", () => {
  it("a fault at mapping_start + mapping_size is not in the mapping: reraise calls SIG_DFL (SIGSEGV at 0)", () => {
    const { comp, policy, pools } = setup();
    const { pool, buffer } = pools[0];
    policy.beginAccess(buffer);
    const h = handlerOf(comp);
    const k = killedBy(() =>
      h({ signo: "SIGBUS", code: "BUS_ADRERR", addr: pool.addr + pool.size }, comp),
    );
    expect(k).toBeInstanceOf(ProcessKilled);
    expect(k!.signal).toBe("SIGSEGV");
    expect(comp.alive).toBe(false);
  });

  it("a fault one byte below mapping_start is not in the mapping either", () => {
    const { comp, policy, pools } = setup();
    policy.beginAccess(pools[0].buffer);
    const h = handlerOf(comp);
    const k = killedBy(() =>
      h({ signo: "SIGBUS", code: "BUS_ADRERR", addr: pools[0].pool.addr - 1 }, comp),
    );
    expect(k?.signal).toBe("SIGSEGV");
  });

  it("a fault on the mapping's last byte maps zeros over the whole mapping; the process lives", () => {
    const { comp, client, policy, pools } = setup();
    const { cfd, pool, buffer } = pools[0];
    const a = policy.beginAccess(buffer);
    client.ftruncate(cfd, 0);
    handlerOf(comp)({ signo: "SIGBUS", code: "BUS_ADRERR", addr: pool.addr + pool.size - 1 }, comp);
    expect(comp.alive).toBe(true);
    const dst = new Uint8Array(PG).fill(0xff);
    policy.read(a, dst);
    expect(dst.every((b) => b === 0)).toBe(true);
    // Nothing is sent: end_data_ptr_access returns nothing.
    expect(policy.endAccess(a)).toBeUndefined();
  });

  it("a pool with no active access is not covered, even while another pool's access is active", () => {
    const { comp, policy, pools } = setup(2);
    policy.beginAccess(pools[0].buffer);
    const h = handlerOf(comp);
    const k = killedBy(() =>
      h({ signo: "SIGBUS", code: "BUS_ADRERR", addr: pools[1].pool.addr }, comp),
    );
    expect(k?.signal).toBe("SIGSEGV");
  });

  it("a previous handler that is a function is called, not the default", () => {
    const { comp, policy, pools } = setup();
    const seen: number[] = [];
    comp.sigaction("SIGBUS", { handler: (info) => void seen.push(info.addr) });
    policy.beginAccess(pools[0].buffer);
    const h = handlerOf(comp);
    h({ signo: "SIGBUS", code: "BUS_ADRERR", addr: 12345 }, comp);
    expect(seen).toEqual([12345]);
    expect(comp.alive).toBe(true);
  });
});

describe("wlroots begin/end_data_ptr_access: one handler while any access is active", () => {
  it("installed with SA_NODEFER at the first access; reads the client's bytes", () => {
    const { comp, policy, pools } = setup();
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
    const a = policy.beginAccess(pools[0].buffer);
    expect(comp.signals.action("SIGBUS").nodefer).toBe(true);
    const dst = new Uint8Array(PG);
    policy.read(a, dst);
    expect(dst.every((b) => b === 0x5a)).toBe(true);
  });

  it("nested accesses: the handler stays until the last ends, then the old action is back", () => {
    const { comp, policy, pools } = setup(2);
    const a = policy.beginAccess(pools[0].buffer);
    const h = handlerOf(comp);
    const b = policy.beginAccess(pools[1].buffer);
    expect(handlerOf(comp)).toBe(h);
    policy.endAccess(b); // the head of the list ends first
    expect(handlerOf(comp)).toBe(h);
    policy.endAccess(a);
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
  });

  it("nested accesses ended oldest first: still restored only at the last", () => {
    const { comp, policy, pools } = setup(2);
    const a = policy.beginAccess(pools[0].buffer);
    const b = policy.beginAccess(pools[1].buffer);
    policy.endAccess(a);
    expect(typeof comp.signals.action("SIGBUS").handler).toBe("function");
    policy.endAccess(b);
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
  });
});

describe("wlroots mapping_drop / mapping_consider_destroy", () => {
  it("resize during an access: the old mapping stays until end_data_ptr_access, then is unmapped", () => {
    const { comp, client, policy, pools } = setup();
    const { cfd, pool, buffer } = pools[0];
    const a = policy.beginAccess(buffer);
    const oldAddr = pool.addr;
    client.ftruncate(cfd, 2 * PG);
    policy.growPool!(pool, 2 * PG);
    expect(pool.size).toBe(2 * PG);
    expect(pool.addr).not.toBe(oldAddr);
    expect(mapped(comp, oldAddr)).toBe(true); // the access still holds it
    expect(mapped(comp, pool.addr + PG)).toBe(true);
    policy.endAccess(a);
    expect(mapped(comp, oldAddr)).toBe(false);
    expect(mapped(comp, pool.addr)).toBe(true); // the new mapping is not dropped
  });

  it("resize with no access active unmaps the old mapping at once", () => {
    const { comp, client, policy, pools } = setup();
    const { cfd, pool } = pools[0];
    const oldAddr = pool.addr;
    client.ftruncate(cfd, 2 * PG);
    policy.growPool!(pool, 2 * PG);
    expect(mapped(comp, oldAddr)).toBe(false);
  });

  it("pool destroyed during an access: unmapped at the access's end; the fd is closed at once", () => {
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

  it("pool destroyed with no access: unmapped and closed", () => {
    const { comp, policy, pools } = setup();
    const { pool } = pools[0];
    const fd = pool.fd;
    const addr = pool.addr;
    policy.unmapPool(pool);
    expect(mapped(comp, addr)).toBe(false);
    expect(() => comp.fstatSize(fd)).toThrow(ErrnoError);
  });
});
