/**
 * WLCS tests/wl_shm.cpp (canonical/wlcs 0357fd78…) and weston tests/bad-buffer-test.c
 * (test_truncated_shm_file), rewritten as shmlab tests against the `libwayland` policy
 * (docs/policy-sources.md §6). Each test names the case it rewrites.
 */

import { describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import { settle, TestClient } from "../compositor/testing.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { LOADER_DATA_START } from "../shm/loader-image.ts";

async function setup() {
  const comp = new Compositor({ policy: "libwayland" });
  return { comp, c: await TestClient.connect(comp) };
}

describe("WLCS wl_shm.cpp against libwayland", () => {
  it("create_pool_with_invalid_fd_is_an_error: a pipe → wl_shm invalid_fd", async () => {
    const { comp, c } = await setup();
    const [r, w] = c.proc.pipe();
    c.createPool(r, 4);
    await settle();
    expect(c.error).toMatchObject({ objectId: c.shmId, code: SHM_ERROR.invalid_fd });
    expect(comp.errors[0]).toMatchObject({ interface: "wl_shm", message: /failed mmap fd/ });
    c.proc.close(w);
    // The refused fd was closed in the compositor.
    expect(comp.proc.fds.entries().length).toBe(0);
  });

  it("create_pool_with_negative_size_is_an_error: size -1 → wl_shm invalid_stride", async () => {
    const { comp, c } = await setup();
    c.createPool(c.memfd(64), -1);
    await settle();
    expect(c.error).toMatchObject({ objectId: c.shmId, code: SHM_ERROR.invalid_stride });
    expect(comp.errors[0].message).toBe("invalid size (-1)");
    expect(comp.proc.fds.entries().length).toBe(0);
  });

  it("advertises_mandatory_formats", async () => {
    const { c } = await setup();
    expect(c.formats).toEqual(expect.arrayContaining([0, 1]));
  });

  it("create_buffer_with_unknown_format_is_an_error: 0xDEADBEEF → wl_shm_pool invalid_format", async () => {
    const { c } = await setup();
    const pool = c.createPool(c.memfd(64), 64);
    c.createBufferRaw(pool, [0, 4, 4, 16, 0xdeadbeef]);
    await settle();
    expect(c.error).toMatchObject({ objectId: pool, code: SHM_ERROR.invalid_format });
  });

  it("create_buffer_exceeding_pool_size_is_an_error: offset = stride → wl_shm_pool invalid_stride", async () => {
    const { c } = await setup();
    const pool = c.createPool(c.memfd(64), 64);
    c.createBuffer(pool, 16, 4, 4, 16, 0);
    await settle();
    expect(c.error).toMatchObject({ objectId: pool, code: SHM_ERROR.invalid_stride });
  });

  it("pool_can_be_resized_larger", async () => {
    const { c } = await setup();
    const pool = c.createPool(c.memfd(128), 64);
    c.createBuffer(pool, 0, 4, 4, 16, 0);
    c.client.request(pool, "resize", [128]);
    c.createBuffer(pool, 64, 4, 4, 16, 0);
    await c.client.roundtrip();
    expect(c.error).toBeNull();
  });

  it("multiple_buffers_can_share_a_pool: buffers survive pool destruction", async () => {
    const { comp, c } = await setup();
    const pool = c.createPool(c.memfd(3 * 64), 3 * 64);
    const bufs = [0, 64, 128].map((off) => c.createBuffer(pool, off, 4, 4, 16, 0));
    c.client.request(pool, "destroy");
    await c.client.roundtrip();
    expect(comp.poolCount).toBe(1);
    // Still usable: shown and read after the pool is gone.
    const s = c.surface();
    c.show(s, bufs[2], 4, 4);
    await settle();
    expect(comp.frame().buffersRead).toBe(1);
    for (const b of bufs) c.client.request(b, "destroy");
    await c.client.roundtrip();
    expect(c.error).toBeNull();
    expect(comp.poolCount).toBe(0);
    // Only the loader's mapping (shm/loader-image.ts) is left.
    expect(comp.proc.mm.vmas.map((v) => v.start)).toEqual([LOADER_DATA_START]);
  });

  it("truncated_shm_file_is_an_error: truncated to 12 bytes → wl_buffer invalid_fd", async () => {
    const { comp, c } = await setup();
    // WLCS/weston: 200x200, stride 800, pool 160000, pool destroyed, ftruncate(fd, 12).
    const fd = c.memfd(160000, { width: 200 });
    const pool = c.createPool(fd, 160000);
    const buf = c.createBuffer(pool, 0, 200, 200, 800, 0);
    c.client.request(pool, "destroy");
    await settle();
    c.proc.ftruncate(fd, 12);
    c.proc.close(fd);
    const s = c.surface();
    c.show(s, buf, 200, 200);
    await settle();
    const f = comp.frame();
    await settle();
    expect(c.error).toMatchObject({ objectId: buf, code: SHM_ERROR.invalid_fd });
    expect(comp.errors[0]).toMatchObject({
      interface: "wl_buffer",
      message: "error accessing SHM buffer",
    });
    expect(f.sigbus).toBe(1);
    expect(comp.alive).toBe(true);
    // The client's pool mapping was freed when it was disconnected.
    // Only the loader's mapping (shm/loader-image.ts) is left.
    expect(comp.proc.mm.vmas.map((v) => v.start)).toEqual([LOADER_DATA_START]);
  });

  it("SecondShmTest: the same on a second server instance in the same kernel", async () => {
    const first = await setup();
    const w1 = await first.c.window(64, 64);
    first.c.proc.ftruncate(w1.fd, 12);
    first.comp.frame();
    const comp2 = new Compositor({ policy: "libwayland", kernel: first.comp.kernel });
    const c2 = await TestClient.connect(comp2, 2);
    const w2 = await c2.window(64, 64);
    c2.proc.ftruncate(w2.fd, 12);
    comp2.frame();
    await settle();
    expect(c2.error).toMatchObject({ objectId: w2.buffer, code: SHM_ERROR.invalid_fd });
    expect(comp2.alive).toBe(true);
  });

  it("client_lies_about_buffer_size: plain libwayland accepts it (§1.2, derived; WLCS expects invalid_stride)", async () => {
    const { c } = await setup();
    const pool = c.createPool(c.memfd(40000), 40000);
    c.createBuffer(pool, 0, 200, 200, 200, 0);
    await c.client.roundtrip();
    expect(c.error).toBeNull();
  });
});

describe("weston tests/bad-buffer-test.c against libwayland", () => {
  it("test_truncated_shm_file: an unsealed file truncated to 12 bytes → wl_buffer invalid_fd", async () => {
    const { comp, c } = await setup();
    const fd = c.memfd(160000, { width: 200 });
    const pool = c.createPool(fd, 160000);
    const buf = c.createBuffer(pool, 0, 200, 200, 800, 0);
    c.client.request(pool, "destroy");
    c.proc.ftruncate(fd, 12);
    c.proc.close(fd);
    const s = c.surface();
    c.show(s, buf, 200, 200);
    await settle();
    comp.frame();
    await settle();
    expect(c.error).toMatchObject({ objectId: buf, code: SHM_ERROR.invalid_fd });
  });
});
