/**
 * libwayland's sigbus_handler and begin/end_access (wayland src/wayland-shm.c), driven
 * directly on a compositor process, at the edges of the pool:
 *
 *   pool = sigbus_data->current_pool;
 *   if (pool == NULL || (char *) info->si_addr < pool->data ||
 *       (char *) info->si_addr >= pool->data + pool->size) {
 *           reraise_sigbus(); return;
 *   }
 *   sigbus_data->fallback_mapping_used = 1;
 *   if (mmap(pool->data, pool->size, PROT_READ | PROT_WRITE,
 *            MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, 0, 0) == MAP_FAILED) { reraise_sigbus(); ...
 */
import { describe, expect, it } from "vitest";
import { DESTROYED_BUFFER_ERROR, libwayland } from "../compositor/policies/libwayland.ts";
import type { BufferView, PolicyEnv, ShmPool } from "../compositor/policy.ts";
import { ARGB8888 } from "../compositor/validation.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { Kernel } from "../shm/kernel.ts";
import { SEAL } from "../shm/uapi.ts";
import { PG } from "./helpers.ts";
import { handlerOf } from "./policy-helpers.ts";

/** A compositor process with libwayland's policy and one 2-page pool of 0x5a bytes. */
function setup(opts: { seals?: number } = {}) {
  const k = new Kernel();
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const cfd = client.memfdCreate("pool", 2 /* MFD_ALLOW_SEALING */);
  client.ftruncate(cfd, 2 * PG);
  client.pwrite(cfd, new Uint8Array(2 * PG).fill(0x5a), 0);
  if (opts.seals) client.addSeals(cfd, opts.seals);
  const env: PolicyEnv = {
    panic: (reason) => {
      throw new Error(`panic: ${reason}`);
    },
    onBlocked: () => {},
  };
  const policy = libwayland.create(comp, env);
  const pool: ShmPool = {
    name: "c#1",
    fd: client.sendFd(cfd, comp),
    size: 2 * PG,
    addr: 0,
    state: {},
    freed: false,
  };
  policy.mapPool(pool);
  const buffer: BufferView = {
    pool,
    offset: 0,
    width: 2 * (PG / 4),
    height: 1,
    stride: 2 * PG,
    format: ARGB8888,
    bpp: 4,
    span: 2 * PG,
    name: "c#2",
  };
  return { k, comp, client, cfd, policy, pool, buffer };
}

/** The handler libwayland installed (sigaction on the first begin_access). */
describe("libwayland sigbus_handler: the pool's range decides", () => {
  it("a fault on the pool's first byte maps zeros over the whole pool and reports invalid_fd at end_access", () => {
    const { comp, client, cfd, policy, pool, buffer } = setup();
    const a = policy.beginAccess(buffer);
    client.ftruncate(cfd, 0);
    const dst = new Uint8Array(buffer.span);
    policy.read(a, dst);
    expect(dst.every((b) => b === 0)).toBe(true);
    expect(comp.alive).toBe(true);
    expect(comp.counters.sigbus).toBe(1); // one fault, at pool->data; the zeros cover both pages
    expect(policy.endAccess(a)).toEqual({
      error: { code: SHM_ERROR.invalid_fd, message: "error accessing SHM buffer" },
      // >= 1.24 (d2a3d33): what is posted instead if the wl_buffer is already destroyed.
      destroyedError: DESTROYED_BUFFER_ERROR,
    });
    expect(pool.addr).not.toBe(0);
  });

  it("a SIGBUS one byte past the pool (si_addr == data + size) is re-raised: the default action is back, nothing mapped over the pool", () => {
    const { comp, policy, pool, buffer } = setup();
    policy.beginAccess(buffer);
    const handler = handlerOf(comp);
    expect(() =>
      handler({ signo: "SIGBUS", code: "BUS_ADRERR", addr: pool.addr + pool.size }, comp),
    ).not.toThrow();
    // reraise_sigbus restored the old (default) action: the next SIGBUS kills.
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
    // Nothing was mapped over the pool: it still reads the client's bytes.
    expect(comp.load(pool.addr + pool.size - 1, 1)[0]).toBe(0x5a);
  });

  it("a SIGBUS one byte before the pool is re-raised; the pool's last byte is handled", () => {
    const below = setup();
    below.policy.beginAccess(below.buffer);
    handlerOf(below.comp)(
      { signo: "SIGBUS", code: "BUS_ADRERR", addr: below.pool.addr - 1 },
      below.comp,
    );
    expect(below.comp.signals.action("SIGBUS").handler).toBe("default");

    const last = setup();
    const a = last.policy.beginAccess(last.buffer);
    const handler = handlerOf(last.comp);
    handler(
      { signo: "SIGBUS", code: "BUS_ADRERR", addr: last.pool.addr + last.pool.size - 1 },
      last.comp,
    );
    expect(last.comp.signals.action("SIGBUS").handler).toBe(handler);
    expect(last.comp.load(last.pool.addr, 1)[0]).toBe(0); // zeros over the pool
    expect(last.policy.endAccess(a)?.error?.code).toBe(SHM_ERROR.invalid_fd);
  });

  it("outside any access (no current pool) a SIGBUS is re-raised even inside the pool", () => {
    const { comp, policy, pool, buffer } = setup();
    const a = policy.beginAccess(buffer);
    expect(policy.endAccess(a)).toBeUndefined();
    handlerOf(comp)({ signo: "SIGBUS", code: "BUS_ADRERR", addr: pool.addr }, comp);
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
  });

  it("the handler is installed once, at the first begin_access, with SA_NODEFER", () => {
    const { comp, policy, buffer } = setup();
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
    const a = policy.beginAccess(buffer);
    const h = comp.signals.action("SIGBUS");
    expect(typeof h.handler).toBe("function");
    expect(h.nodefer).toBe(true);
    policy.endAccess(a);
    policy.beginAccess(buffer);
    expect(comp.signals.action("SIGBUS")).toBe(h);
  });
});

describe("libwayland begin/end_access nesting", () => {
  it("only the outermost end_access reports the fallback mapping", () => {
    const { client, cfd, policy, buffer } = setup();
    const outer = policy.beginAccess(buffer);
    const inner = policy.beginAccess(buffer);
    client.ftruncate(cfd, 0);
    policy.read(inner, new Uint8Array(buffer.span));
    expect(policy.endAccess(inner)).toBeUndefined();
    expect(policy.endAccess(outer)?.error?.code).toBe(SHM_ERROR.invalid_fd);
    // The flag is reset: a clean access afterwards reports nothing.
    const again = policy.beginAccess(buffer);
    expect(policy.endAccess(again)).toBeUndefined();
  });

  it("end_access without begin_access is wl_abort", () => {
    const { policy, buffer } = setup();
    const a = policy.beginAccess(buffer);
    policy.endAccess(a);
    expect(() => policy.endAccess(a)).toThrow(/wl_abort: sigbus_data is NULL/);
  });

  it("a second pool inside an access on the first is wl_abort (one current_pool per thread)", () => {
    const one = setup();
    const a = one.policy.beginAccess(one.buffer);
    const otherPool: ShmPool = { ...one.pool, name: "c#9", state: {} };
    expect(() => one.policy.beginAccess({ ...one.buffer, pool: otherPool })).toThrow(
      /Incorrect pool passed for current thread/,
    );
    expect(one.policy.endAccess(a)).toBeUndefined();
  });
});

describe("libwayland: a sealed pool skips the handler (sigbus_is_impossible)", () => {
  // shm_create_pool: "if (seals & F_SEAL_SHRINK) ... pool->sigbus_is_impossible = statbuf.st_size >= size"
  it("F_SEAL_SHRINK with the file at least the pool's size: no handler, nothing to report", () => {
    const { comp, policy, buffer } = setup({ seals: SEAL.F_SEAL_SHRINK });
    const a = policy.beginAccess(buffer);
    expect(comp.signals.action("SIGBUS").handler).toBe("default");
    const dst = new Uint8Array(buffer.span);
    policy.read(a, dst);
    expect(dst[0]).toBe(0x5a);
    expect(policy.endAccess(a)).toBeUndefined();
  });

  it("F_SEAL_GROW alone does not make SIGBUS impossible: the handler is installed", () => {
    const { comp, policy, buffer } = setup({ seals: SEAL.F_SEAL_GROW });
    policy.beginAccess(buffer);
    expect(typeof comp.signals.action("SIGBUS").handler).toBe("function");
  });

  it("F_SEAL_SHRINK on a file smaller than the pool: the handler is still needed", () => {
    const k = new Kernel();
    const comp = k.spawn("compositor");
    const fd = comp.memfdCreate("pool", 2);
    comp.ftruncate(fd, PG);
    comp.addSeals(fd, SEAL.F_SEAL_SHRINK);
    const policy = libwayland.create(comp, {
      panic: (r) => {
        throw new Error(r);
      },
      onBlocked: () => {},
    });
    const pool: ShmPool = { name: "p", fd, size: 2 * PG, addr: 0, state: {}, freed: false };
    policy.mapPool(pool);
    expect(pool.state.sigbusIsImpossible).toBe(false);
    const b: BufferView = {
      pool,
      offset: 0,
      width: PG / 4,
      height: 2,
      stride: PG,
      format: ARGB8888,
      bpp: 4,
      span: 2 * PG,
      name: "b",
    };
    const a = policy.beginAccess(b);
    policy.read(a, new Uint8Array(b.span)); // page 2 is beyond EOF: handled
    expect(comp.alive).toBe(true);
    expect(policy.endAccess(a)?.error?.code).toBe(SHM_ERROR.invalid_fd);
  });
});
