/**
 * `copy-pread` driven directly on a compositor process. pread(2) "returns the number of
 * bytes read ... fewer than requested" at end of file and never raises a signal (LINUX.md
 * rules 6 and 7); a short read is answered as libwayland's wl_shm_buffer_end_access
 * answers a fault: wl_shm.invalid_fd "error accessing SHM buffer". On a pipe pread is
 * ESPIPE: refused at create_pool.
 */
import { describe, expect, it } from "vitest";
import { copyPread } from "../compositor/policies/copy-pread.ts";
import { ShmRefusal } from "../compositor/policy.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { Kernel } from "../shm/kernel.ts";
import { PG } from "./helpers.ts";
import { pageBuffer, panickingEnv, sentPool } from "./policy-helpers.ts";

function setup(opts: { pipe?: boolean } = {}) {
  const k = new Kernel();
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const policy = copyPread.create(comp, panickingEnv);
  const cfd = opts.pipe ? client.pipe()[0] : client.memfdCreate("pool", 0);
  if (!opts.pipe) {
    client.ftruncate(cfd, PG);
    client.pwrite(cfd, new Uint8Array(PG).fill(0x5a), 0);
  }
  const pool = sentPool(client, comp, cfd, "c#1");
  const buffer = pageBuffer(pool, "c#2");
  return { comp, client, cfd, policy, pool, buffer };
}

describe("copy-pread", () => {
  it("a full read copies the client's bytes; nothing is sent", () => {
    const { policy, pool, buffer } = setup();
    policy.mapPool(pool);
    expect(pool.addr).toBe(0); // nothing mapped
    const a = policy.beginAccess(buffer);
    const dst = new Uint8Array(PG);
    policy.read(a, dst);
    expect(dst.every((b) => b === 0x5a)).toBe(true);
    expect(policy.endAccess(a)).toBeUndefined();
  });

  it("a short read (file shrunk to half): the rest is zeros, invalid_fd at end_access", () => {
    const { client, cfd, policy, pool, buffer } = setup();
    policy.mapPool(pool);
    client.ftruncate(cfd, PG / 2);
    const a = policy.beginAccess(buffer);
    const dst = new Uint8Array(PG).fill(0xff);
    policy.read(a, dst);
    expect(dst.subarray(0, PG / 2).every((b) => b === 0x5a)).toBe(true);
    expect(dst.subarray(PG / 2).every((b) => b === 0)).toBe(true);
    expect(policy.endAccess(a)).toEqual({
      error: { code: SHM_ERROR.invalid_fd, message: "error accessing SHM buffer" },
    });
  });

  it("a pipe (pread: ESPIPE) is refused at create_pool", () => {
    const { policy, pool } = setup({ pipe: true });
    let r: unknown;
    try {
      policy.mapPool(pool);
    } catch (e) {
      if (!(e instanceof ShmRefusal)) throw e;
      r = e.refusal;
    }
    expect(r).toMatchObject({ code: SHM_ERROR.invalid_fd, message: /^failed pread fd \d+: / });
  });

  it("resize records the size; destroy closes the fd", () => {
    const { comp, policy, pool } = setup();
    policy.mapPool(pool);
    policy.growPool!(pool, 2 * PG);
    expect(pool.size).toBe(2 * PG);
    const fd = pool.fd;
    policy.unmapPool(pool);
    expect(pool.fd).toBe(-1);
    expect(() => comp.fstatSize(fd)).toThrow();
  });
});

describe("copy-pread after the compositor exited", () => {
  it("destroying a pool makes no syscall in the dead process (its fds went with it)", () => {
    const { comp, policy, pool } = setup();
    policy.mapPool(pool);
    comp.exit();
    expect(() => policy.unmapPool(pool)).not.toThrow();
    expect(pool.fd).toBe(-1);
  });
});
