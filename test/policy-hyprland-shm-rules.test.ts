/**
 * Hyprland's own wl_shm (src/protocols/core/Shm.cpp; compositor/policies/hyprland.ts),
 * driven directly on a compositor process. The rules pinned, from the functions named:
 *
 * - shmIsSizeValid (after PR #8572): `(size_t)st.st_size >= size` with an int32_t size: C's
 *   usual arithmetic conversions make a negative size a huge size_t, so it is refused with
 *   `error(-1, "The size of the file is not big enough for the shm pool")`.
 * - CSHMPool's `mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)` with a
 *   size_t size; MAP_FAILED is WL_SHM_ERROR_INVALID_FD "Couldn't mmap from fd". mmap(2):
 *   a zero length is EINVAL; a length no address range fits is ENOMEM.
 * - The resize lambda: shrinking is error -1, then the same fstat check (the old mapping
 *   stays), then CSHMPool::resize: munmap and mmap anew at the new size; `if (data ==
 *   MAP_FAILED) LOGM(ERR, ...)`: a failed mmap is only logged, data stays MAP_FAILED.
 * - Before PR #8572 (hyprland-0.45) nothing compares the size with the file.
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import { ShmRefusal } from "../compositor/policy.ts";
import { HYPRLAND_ERROR_MINUS_ONE } from "../compositor/validation.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { Kernel } from "../shm/kernel.ts";
import { MFD, SEAL } from "../shm/uapi.ts";
import { PG } from "./helpers.ts";
import { killedBy, panickingEnv, sentPool } from "./policy-helpers.ts";

const NOT_BIG_ENOUGH = "The size of the file is not big enough for the shm pool";
const NO_MMAP = "Couldn't mmap from fd";

function setup(policy: "hyprland" | "hyprland-0.45", fileSize: number, poolSize: number) {
  const k = new Kernel();
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const instance = getPolicy(policy).create(comp, panickingEnv);
  const cfd = client.memfdCreate("pool", MFD.MFD_ALLOW_SEALING);
  client.ftruncate(cfd, fileSize);
  client.pwrite(cfd, new Uint8Array(fileSize).fill(0x5a), 0);
  const pool = sentPool(client, comp, cfd, "c#1", poolSize);
  return { comp, client, instance, cfd, pool };
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

describe("Hyprland create_pool (after PR #8572)", () => {
  it("a negative size is a huge size_t: not big enough, error -1", () => {
    const { instance, pool } = setup("hyprland", PG, -PG);
    expect(refusal(() => instance.mapPool(pool))).toEqual({
      code: HYPRLAND_ERROR_MINUS_ONE,
      message: NOT_BIG_ENOUGH,
    });
  });

  it("size 0 passes the size check (st_size >= 0) and fails mmap: invalid_fd", () => {
    const { instance, pool } = setup("hyprland", PG, 0);
    expect(refusal(() => instance.mapPool(pool))).toEqual({
      code: SHM_ERROR.invalid_fd,
      message: NO_MMAP,
    });
  });

  it("a file smaller than the pool: error -1; as large: mapped", () => {
    const small = setup("hyprland", PG, 2 * PG);
    expect(refusal(() => small.instance.mapPool(small.pool))?.code).toBe(HYPRLAND_ERROR_MINUS_ONE);
    const ok = setup("hyprland", 2 * PG, 2 * PG);
    expect(refusal(() => ok.instance.mapPool(ok.pool))).toBeNull();
    expect(ok.comp.load(ok.pool.addr + 2 * PG - 1, 1)[0]).toBe(0x5a);
  });
});

describe("Hyprland 0.45 create_pool (no shmIsSizeValid)", () => {
  it("a negative size goes to mmap as a huge size_t: ENOMEM, invalid_fd", () => {
    const { instance, pool } = setup("hyprland-0.45", PG, -PG);
    expect(refusal(() => instance.mapPool(pool))).toEqual({
      code: SHM_ERROR.invalid_fd,
      message: NO_MMAP,
    });
  });

  it("a pool larger than its file is mapped", () => {
    const { instance, pool } = setup("hyprland-0.45", PG, 2 * PG);
    expect(refusal(() => instance.mapPool(pool))).toBeNull();
    expect(pool.addr).not.toBe(0);
  });
});

describe("Hyprland resize", () => {
  it("grown with the file: the new size is mapped (munmap + mmap anew)", () => {
    const { comp, client, instance, cfd, pool } = setup("hyprland", PG, PG);
    instance.mapPool(pool);
    client.ftruncate(cfd, 3 * PG);
    client.pwrite(cfd, new Uint8Array(2 * PG).fill(0x77), PG);
    instance.growPool(pool, 3 * PG);
    expect(pool.size).toBe(3 * PG);
    expect(comp.load(pool.addr + 3 * PG - 1, 1)[0]).toBe(0x77);
    expect(comp.load(pool.addr, 1)[0]).toBe(0x5a);
  });

  it("the new mmap failing is only logged: nothing posted, and the next read faults (SIGSEGV)", () => {
    // memfd_create(2): F_SEAL_FUTURE_WRITE may be added under an existing writable shared
    // mapping, and then a new mmap(PROT_WRITE, MAP_SHARED) of the file is EPERM.
    const { comp, client, instance, cfd, pool } = setup("hyprland", PG, PG);
    instance.mapPool(pool);
    client.ftruncate(cfd, 2 * PG);
    client.addSeals(cfd, SEAL.F_SEAL_FUTURE_WRITE);
    expect(refusal(() => instance.growPool(pool, 2 * PG))).toBeNull();
    expect(pool.size).toBe(2 * PG);
    const a = instance.beginAccess({
      pool,
      offset: 0,
      width: PG / 4,
      height: 1,
      stride: PG,
      format: 0,
      bpp: 4,
      span: PG,
      name: "c#b1",
    });
    const k = killedBy(() => instance.read(a, new Uint8Array(PG)));
    expect(k?.signal).toBe("SIGSEGV");
    expect(comp.alive).toBe(false);
  });

  it("a resize replaces the mapping: one mapping of the file, the old one gone", () => {
    const { comp, client, instance, cfd, pool } = setup("hyprland", PG, PG);
    instance.mapPool(pool);
    client.ftruncate(cfd, 4 * PG);
    instance.growPool(pool, 4 * PG);
    const fileMaps = comp.mm.vmas.filter((v) => v.file !== undefined);
    expect(fileMaps.map((v) => [v.start, v.end - v.start])).toEqual([[pool.addr, 4 * PG]]);
    instance.unmapPool(pool);
    expect(comp.mm.vmas.filter((v) => v.file !== undefined)).toEqual([]);
  });

  it("a second resize after a failed one: `if (data) munmap(data, size)`'s EINVAL is ignored", () => {
    const { client, instance, cfd, pool } = setup("hyprland", PG, PG);
    instance.mapPool(pool);
    client.ftruncate(cfd, 3 * PG);
    client.addSeals(cfd, SEAL.F_SEAL_FUTURE_WRITE);
    instance.growPool(pool, 2 * PG);
    expect(refusal(() => instance.growPool(pool, 3 * PG))).toBeNull();
    expect(pool.size).toBe(3 * PG);
  });

  it("after a failed resize, destroying the pool is quiet (munmap(MAP_FAILED)'s EINVAL ignored) and closes the fd", () => {
    const { comp, client, instance, cfd, pool } = setup("hyprland", PG, PG);
    instance.mapPool(pool);
    client.ftruncate(cfd, 2 * PG);
    client.addSeals(cfd, SEAL.F_SEAL_FUTURE_WRITE);
    instance.growPool(pool, 2 * PG);
    const fd = pool.fd;
    instance.unmapPool(pool);
    expect(() => comp.fstatSize(fd)).toThrow();
  });

  it("grown past the file: error -1 and the old mapping stays", () => {
    const { comp, instance, pool } = setup("hyprland", PG, PG);
    instance.mapPool(pool);
    const addr = pool.addr;
    expect(refusal(() => instance.growPool(pool, 3 * PG))?.code).toBe(HYPRLAND_ERROR_MINUS_ONE);
    expect(pool.addr).toBe(addr);
    expect(pool.size).toBe(PG);
    expect(comp.load(addr, 1)[0]).toBe(0x5a);
  });
});
