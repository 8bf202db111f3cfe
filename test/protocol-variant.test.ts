import { describe, expect, it } from "vitest";
import { NEW_ID, type ProtocolClient } from "../protocol/client.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { createTestServer } from "../protocol/testing/test-server.ts";
import {
  getVariant,
  type ProtocolVariant,
  registerVariant,
  resolveVariant,
  variantNames,
  withErrorEntry,
} from "../protocol/variant.ts";
import { MFD, SEAL } from "../shm/uapi.ts";

async function shmSession(variant: string | ProtocolVariant) {
  const ts = createTestServer({ variant });
  const { client, proc } = ts.connectLocal();
  const reg = client.request(1, "get_registry", [NEW_ID]);
  const shm = client.request(reg, "bind", [2, "wl_shm", 2, NEW_ID]);
  await client.roundtrip();
  return { ts, client, proc, shm };
}

function pool(client: ProtocolClient, shm: number, fd: number, size: number): number {
  return client.request(shm, "create_pool", [NEW_ID, fd, size]);
}

describe("protocol variants", () => {
  it("are selectable by name", () => {
    expect(variantNames()).toEqual(
      expect.arrayContaining(["standard", "sealed-pools", "shrinkable-pools"]),
    );
    expect(() => getVariant("nope")).toThrow(/unknown protocol variant/);
  });

  it("standard: an unsealed pool is accepted and a shrinking resize is wl_shm.invalid_fd", async () => {
    const { client, proc, shm } = await shmSession("standard");
    const fd = proc.memfdCreate("p", 0);
    proc.ftruncate(fd, 8192);
    const p = pool(client, shm, fd, 8192);
    await client.roundtrip();
    expect(client.error).toBeNull();
    client.request(p, "resize", [4096]);
    await client.roundtrip().catch(() => {});
    expect(client.error).toMatchObject({
      fromServer: true,
      objectId: p,
      code: SHM_ERROR.invalid_fd,
    });
    expect(client.error?.message).toBe("shrinking pool invalid");
  });

  it("sealed-pools: create_pool refuses an fd without F_SEAL_SHRINK", async () => {
    const { client, proc, shm } = await shmSession("sealed-pools");
    const fd = proc.memfdCreate("p", MFD.MFD_ALLOW_SEALING);
    proc.ftruncate(fd, 4096);
    pool(client, shm, fd, 4096);
    await client.roundtrip().catch(() => {});
    expect(client.error).toMatchObject({
      fromServer: true,
      objectId: shm,
      code: SHM_ERROR.invalid_fd,
    });
    expect(client.error?.message).toMatch(/F_SEAL_SHRINK/);
  });

  it("sealed-pools: create_pool accepts a sealed fd, and the seal stops the shrink attack", async () => {
    const { ts, client, proc, shm } = await shmSession("sealed-pools");
    const fd = proc.memfdCreate("p", MFD.MFD_ALLOW_SEALING);
    proc.ftruncate(fd, 4096);
    proc.addSeals(fd, SEAL.F_SEAL_SHRINK);
    pool(client, shm, fd, 4096);
    await client.roundtrip();
    expect(client.error).toBeNull();
    expect(() => proc.ftruncate(fd, 0)).toThrow(/EPERM/);
    expect(ts.server.variant.rules.createPoolRequiredSeals).toBe(SEAL.F_SEAL_SHRINK);
  });

  it("shrinkable-pools: a shrinking resize is accepted and remembered", async () => {
    const { ts, client, proc, shm } = await shmSession("shrinkable-pools");
    const fd = proc.memfdCreate("p", 0);
    proc.ftruncate(fd, 8192);
    const p = pool(client, shm, fd, 8192);
    client.request(p, "resize", [4096]);
    await client.roundtrip();
    expect(client.error).toBeNull();
    expect(ts.server.variant.rules.poolsMayShrink).toBe(true);
    client.request(p, "resize", [-1]);
    await client.roundtrip().catch(() => {});
    expect(client.error).toMatchObject({ objectId: p, code: SHM_ERROR.invalid_fd });
  });

  it("a user variant can change the schema and refuse with its own error code", async () => {
    const v: ProtocolVariant = {
      name: "max-pool-1m",
      description: "pools larger than 1 MiB are refused with a new wl_shm error",
      schema: (base) => withErrorEntry(base, "wl_shm", "pool_too_large", 3),
      hooks: {
        "wl_shm.create_pool": (ctx) => {
          if ((ctx.args[2] as number) > 1 << 20)
            throw ctx.refuse("pool_too_large", "pool over 1 MiB");
        },
      },
    };
    registerVariant(v);
    expect(() => registerVariant(v)).toThrow(/already/);
    expect(resolveVariant(v).schema.interfaces.wl_shm.enums[0].entries.at(-1)).toEqual({
      name: "pool_too_large",
      value: 3,
    });
    const { client, proc, shm } = await shmSession("max-pool-1m");
    const fd = proc.memfdCreate("p", 0);
    pool(client, shm, fd, 2 << 20);
    await client.roundtrip().catch(() => {});
    expect(client.error).toMatchObject({ objectId: shm, code: 3, message: "pool over 1 MiB" });
  });

  it("a hook naming an error that does not exist is the server's bug, not the client's", async () => {
    const { client, proc, shm } = await shmSession({
      name: "broken",
      description: "names a missing error",
      hooks: {
        "wl_shm.create_pool": (ctx) => {
          throw ctx.refuse("no_such_error", "x");
        },
      },
    });
    pool(client, shm, proc.memfdCreate("p", 0), 4096);
    await client.roundtrip().catch(() => {});
    expect(client.error).toMatchObject({ fromServer: true, code: 3 }); // implementation
  });
});
