/**
 * The models of installed versions (libwayland-1-21.ts, wlroots-0-15.ts), driven directly on
 * a compositor process, each rule from the source version named:
 *
 * - wayland 1.21.0 wl_shm_buffer_end_access: after a rescued fault, only
 *   `wl_resource_post_error(buffer->resource, WL_SHM_ERROR_INVALID_FD, "error accessing SHM
 *   buffer")` — no destroyed-resource branch, which d2a3d33 (1.24) added.
 * - wlroots 0.15 types/wlr_buffer.c shm_client_buffer_resource_handle_destroy keeps
 *   `saved_data = wl_shm_buffer_get_data(shm_buffer)`, i.e. `pool->data + buffer->offset`,
 *   and later reads go through it with no begin_access.
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { Kernel } from "../shm/kernel.ts";
import { PG } from "./helpers.ts";
import { pageBuffer, panickingEnv, sentPool } from "./policy-helpers.ts";

function setup(policy: string) {
  const k = new Kernel();
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const instance = getPolicy(policy).create(comp, panickingEnv);
  const cfd = client.memfdCreate("pool", 0);
  client.ftruncate(cfd, 2 * PG);
  client.pwrite(cfd, new Uint8Array(PG).fill(0x5a), 0);
  client.pwrite(cfd, new Uint8Array(PG).fill(0x6b), PG);
  const pool = sentPool(client, comp, cfd, "c#1", 2 * PG);
  instance.mapPool(pool);
  const buffer = (offset: number) => pageBuffer(pool, `c#b${offset}`, offset);
  return { comp, client, cfd, instance, pool, buffer };
}

describe("libwayland 1.21's end_access has no destroyed-resource branch", () => {
  const rescued = (policy: string) => {
    const { client, cfd, instance, buffer } = setup(policy);
    const a = instance.beginAccess(buffer(0));
    client.ftruncate(cfd, 0);
    instance.read(a, new Uint8Array(PG));
    return instance.endAccess(a);
  };
  const error = { code: SHM_ERROR.invalid_fd, message: "error accessing SHM buffer" };

  it("1.21: invalid_fd on the wl_buffer, and nothing for a destroyed one", () => {
    expect(rescued("libwayland-1.21")).toEqual({ error });
  });

  it("1.24 (d2a3d33): the same, plus the implementation error for a destroyed one", () => {
    expect(rescued("libwayland")).toEqual({
      error,
      destroyedError:
        "Error accessing SHM buffer of a wl_buffer resource which has already been destroyed",
    });
  });
});

describe("wlroots 0.15 reads a destroyed buffer through saved_data", () => {
  it("saved_data is pool->data + buffer->offset", () => {
    const { instance, buffer } = setup("wlroots-0.15");
    const dst = new Uint8Array(PG);
    instance.readDestroyed!(buffer(PG), dst);
    expect(dst.every((b) => b === 0x6b)).toBe(true);
  });
});
