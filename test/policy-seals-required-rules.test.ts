/**
 * `seals-required` (libwayland's sigbus_is_impossible rule of wayland src/wayland-shm.c
 * shm_create_pool, made the admission rule) driven directly on a compositor process:
 * F_GET_SEALS fails with EINVAL on anything but a memfd (fcntl(2): "EINVAL ... fd does not
 * refer to a file that supports sealing"), F_SEAL_SHRINK must be set, and st_size must
 * cover the pool — at create_pool and again at resize, through the kept fd.
 */
import { describe, expect, it } from "vitest";
import { sealsRequired } from "../compositor/policies/seals-required.ts";
import { ShmRefusal } from "../compositor/policy.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { Kernel } from "../shm/kernel.ts";
import { SEAL } from "../shm/uapi.ts";
import { PG } from "./helpers.ts";
import { pageBuffer, panickingEnv, sentPool } from "./policy-helpers.ts";

function setup(opts: { seals?: number; fileSize?: number; pipe?: boolean } = {}) {
  const k = new Kernel();
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const policy = sealsRequired.create(comp, panickingEnv);
  let cfd: number;
  if (opts.pipe) cfd = client.pipe()[0];
  else {
    cfd = client.memfdCreate("pool", 2 /* MFD_ALLOW_SEALING */);
    client.ftruncate(cfd, opts.fileSize ?? PG);
    client.pwrite(cfd, new Uint8Array(Math.min(PG, opts.fileSize ?? PG)).fill(0x5a), 0);
    if (opts.seals) client.addSeals(cfd, opts.seals);
  }
  const pool = sentPool(client, comp, cfd, "c#1");
  const buffer = pageBuffer(pool, "c#2");
  return { comp, client, cfd, policy, pool, buffer };
}

function refusal(fn: () => void) {
  try {
    fn();
  } catch (e) {
    if (e instanceof ShmRefusal) return e.refusal;
    throw e;
  }
  return null;
}

describe("seals-required: create_pool", () => {
  it("a pipe (F_GET_SEALS: EINVAL) is refused with invalid_fd", () => {
    const { policy, pool } = setup({ pipe: true });
    expect(refusal(() => policy.mapPool(pool))).toEqual({
      code: SHM_ERROR.invalid_fd,
      message: "pool fd is not a sealable memfd",
    });
  });

  it("a memfd without F_SEAL_SHRINK is refused", () => {
    const { policy, pool } = setup({ seals: SEAL.F_SEAL_GROW });
    expect(refusal(() => policy.mapPool(pool))?.message).toMatch(/F_SEAL_SHRINK/);
  });

  it("sealed, file exactly the pool's size: mapped, the client's bytes read", () => {
    const { policy, pool, buffer } = setup({ seals: SEAL.F_SEAL_SHRINK });
    expect(refusal(() => policy.mapPool(pool))).toBeNull();
    const a = policy.beginAccess(buffer);
    const dst = new Uint8Array(PG);
    policy.read(a, dst);
    expect(dst.every((b) => b === 0x5a)).toBe(true);
  });

  it("sealed but one byte short of the pool: refused", () => {
    const { policy, pool } = setup({ seals: SEAL.F_SEAL_SHRINK, fileSize: PG - 1 });
    expect(refusal(() => policy.mapPool(pool))?.code).toBe(SHM_ERROR.invalid_fd);
  });
});

describe("seals-required: resize re-checks through the kept fd", () => {
  it("grown file: the resize is accepted (the fd was kept for the check)", () => {
    const { client, cfd, policy, pool } = setup({ seals: SEAL.F_SEAL_SHRINK });
    policy.mapPool(pool);
    expect(pool.fd).toBeGreaterThanOrEqual(0);
    client.ftruncate(cfd, 2 * PG);
    expect(refusal(() => policy.growPool!(pool, 2 * PG))).toBeNull();
    expect(pool.size).toBe(2 * PG);
  });

  it("a resize past the sealed file is refused", () => {
    const { policy, pool } = setup({ seals: SEAL.F_SEAL_SHRINK });
    policy.mapPool(pool);
    const r = refusal(() => policy.growPool!(pool, 2 * PG));
    expect(r?.code).toBe(SHM_ERROR.invalid_fd);
    // The client is told both sizes: the pool it asked for and the file it sealed.
    expect(r?.message).toContain(String(2 * PG));
    expect(r?.message).toContain(String(PG));
  });

  it("destroy closes the kept fd", () => {
    const { comp, policy, pool } = setup({ seals: SEAL.F_SEAL_SHRINK });
    policy.mapPool(pool);
    const fd = pool.fd;
    policy.unmapPool(pool);
    expect(pool.fd).toBe(-1);
    expect(() => comp.fstatSize(fd)).toThrow();
  });
});
