/**
 * The two kernel proposals as mapping policies (map-nofault, zero-beyond-eof), driven
 * directly on a compositor process. Both keep libwayland's pool lifecycle (wayland
 * src/wayland-shm.c: shm_create_pool's mmap, shm_pool_finish_resize's
 * mremap(MREMAP_MAYMOVE), shm_pool_unref's munmap) and differ only in how the mapping is
 * made; a read beyond EOF sees zeros, with no signal, in both.
 */
import { describe, expect, it } from "vitest";
import { mapNofault } from "../compositor/policies/map-nofault.ts";
import { zeroBeyondEof } from "../compositor/policies/zero-beyond-eof.ts";
import type { BufferView, Policy } from "../compositor/policy.ts";
import { ShmRefusal } from "../compositor/policy.ts";
import { ARGB8888 } from "../compositor/validation.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { Kernel } from "../shm/kernel.ts";
import { PG } from "./helpers.ts";
import { panickingEnv, sentPool } from "./policy-helpers.ts";

function setup(p: Policy, opts: { pipe?: boolean } = {}) {
  const k = new Kernel({ features: ["map-nofault", "zero-beyond-eof"] });
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const policy = p.create(comp, panickingEnv);
  const cfd = opts.pipe ? client.pipe()[0] : client.memfdCreate("pool", 0);
  if (!opts.pipe) {
    client.ftruncate(cfd, 2 * PG);
    client.pwrite(cfd, new Uint8Array(2 * PG).fill(0x5a), 0);
  }
  const pool = sentPool(client, comp, cfd, "c#1");
  const view = (span: number): BufferView => ({
    pool,
    offset: 0,
    width: span / 4,
    height: 1,
    stride: span,
    format: ARGB8888,
    bpp: 4,
    span,
    name: "c#2",
  });
  return { comp, client, cfd, policy, pool, view };
}

for (const p of [mapNofault, zeroBeyondEof]) {
  describe(`${p.name}: libwayland's pool lifecycle`, () => {
    it("reads the client's bytes; after ftruncate(0) reads zeros and the process lives", () => {
      const { comp, client, cfd, policy, pool, view } = setup(p);
      policy.mapPool(pool);
      const a = policy.beginAccess(view(PG));
      const dst = new Uint8Array(PG);
      policy.read(a, dst);
      expect(dst.every((b) => b === 0x5a)).toBe(true);
      client.ftruncate(cfd, 0);
      const after = new Uint8Array(PG).fill(0xff);
      policy.read(policy.beginAccess(view(PG)), after);
      expect(after.every((b) => b === 0)).toBe(true);
      expect(comp.alive).toBe(true);
      expect(comp.counters.sigbus).toBe(0);
    });

    it("resize: mremap to the new size, the second page read", () => {
      const { policy, pool, view } = setup(p);
      policy.mapPool(pool);
      policy.growPool!(pool, 2 * PG);
      expect(pool.size).toBe(2 * PG);
      const dst = new Uint8Array(2 * PG);
      policy.read(policy.beginAccess(view(2 * PG)), dst);
      expect(dst.every((b) => b === 0x5a)).toBe(true);
    });

    it("destroy: munmap", () => {
      const { comp, policy, pool } = setup(p);
      policy.mapPool(pool);
      const addr = pool.addr;
      policy.unmapPool(pool);
      expect(comp.mm.find(addr)).toBeUndefined();
    });

    it("a pipe is refused with libwayland's mmap error", () => {
      const { policy, pool } = setup(p, { pipe: true });
      let r: unknown;
      try {
        policy.mapPool(pool);
      } catch (e) {
        if (!(e instanceof ShmRefusal)) throw e;
        r = e.refusal;
      }
      expect(r).toMatchObject({ code: SHM_ERROR.invalid_fd, message: /^failed mmap fd \d+: / });
    });
  });
}
