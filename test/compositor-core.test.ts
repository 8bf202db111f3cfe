/**
 * The compositor's own behaviour, policy aside: globals, surfaces, compositing into the
 * framebuffer with a reported placement, release and frame callbacks, pools outliving their
 * wl_shm_pool, resize by mremap (deferred while read), containment of protocol errors and
 * freeing a disconnected client's resources in the kernel.
 */
import { describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import { patternPixel, settle, TestClient } from "../compositor/testing.ts";
import { encodeMessage } from "../protocol/codec.ts";
import { requestOpcode, SHM_ERROR } from "../protocol/schema.ts";
import { Kernel } from "../shm/kernel.ts";
import { ownVmas } from "./helpers.ts";

function expectPattern(comp: Compositor, index: number, surface: number, w: number, h: number) {
  const p = comp
    .placements()
    .find((x) => x.surface === surface && x.clientId > 0 && x.client.endsWith(`-${index}`));
  expect(p).toBeDefined();
  const px = comp.regionPixels(p!);
  for (const [x, y] of [
    [0, 0],
    [w - 1, 0],
    [0, h - 1],
    [w - 1, h - 1],
    [w >> 1, h >> 1],
  ]) {
    if (x >= p!.width || y >= p!.height) continue;
    expect(px[y * p!.width + x] >>> 0).toBe(patternPixel(index, x, y));
  }
}

describe("compositor", () => {
  it("advertises wl_compositor and wl_shm v2 with argb8888 and xrgb8888", async () => {
    const comp = new Compositor({ policy: "libwayland" });
    const c = await TestClient.connect(comp);
    expect(c.formats).toEqual([0, 1]);
    expect(comp.server.getGlobals().map((g) => [g.interface, g.version])).toEqual([
      ["wl_compositor", 4],
      ["wl_shm", 2],
    ]);
  });

  it("composites a committed buffer, reports its placement, releases it and sends frame done", async () => {
    const comp = new Compositor({ policy: "libwayland", width: 320, height: 240 });
    const c = await TestClient.connect(comp);
    const w = await c.window(64, 48);
    const s = comp.frame();
    expect(s.buffersRead).toBe(1);
    expect(s.bytesCopied).toBe(64 * 48 * 4);
    expect(s.surfaces).toEqual([
      expect.objectContaining({ surface: w.surface, x: 0, y: 0, width: 64, height: 48 }),
    ]);
    expectPattern(comp, 1, w.surface, 64, 48);
    expect(comp.framebuffer[64]).toBe(0); // right of the surface: background
    await settle();
    expect(c.released.has(w.buffer)).toBe(true);
    expect(c.framesDone).toBe(1);
    // Nothing new committed: the next frame reads nothing and shows the same pixels.
    const s2 = comp.frame();
    expect(s2.buffersRead).toBe(0);
    expectPattern(comp, 1, w.surface, 64, 48);
  });

  it("tiles several clients' surfaces without overlap and shows each one's own pixels", async () => {
    const comp = new Compositor({ policy: "none", width: 200, height: 200 });
    const cs = [await TestClient.connect(comp, 1), await TestClient.connect(comp, 2)];
    const c3 = new TestClient(comp, 3);
    await c3.init();
    const ws = [await cs[0].window(90, 90), await cs[1].window(120, 80), await c3.window(50, 50)];
    comp.frame();
    const pl = comp.placements();
    expect(pl.map((p) => [p.x, p.y, p.width, p.height])).toEqual([
      [0, 0, 90, 90],
      [100, 0, 100, 80],
      [0, 100, 50, 50],
    ]);
    expectPattern(comp, 1, ws[0].surface, 90, 90);
    expectPattern(comp, 2, ws[1].surface, 100, 80);
    expectPattern(comp, 3, ws[2].surface, 50, 50);
  });

  it("keeps a pool mapped while a buffer uses it after wl_shm_pool.destroy", async () => {
    const comp = new Compositor({ policy: "libwayland" });
    const c = await TestClient.connect(comp);
    const fd = c.memfd(32 * 32 * 4, { width: 32 });
    const pool = c.createPool(fd, 32 * 32 * 4);
    const buf = c.createBuffer(pool, 0, 32, 32, 128);
    c.client.request(pool, "destroy");
    const surf = c.surface();
    c.show(surf, buf, 32, 32);
    await settle();
    expect(comp.poolCount).toBe(1);
    comp.frame();
    expectPattern(comp, 1, surf, 32, 32);
    c.client.request(buf, "destroy");
    await settle();
    expect(comp.poolCount).toBe(0);
    expect(ownVmas(comp.proc).length).toBe(0);
  });

  it("grows a pool with mremap and serves buffers in the new range", async () => {
    const comp = new Compositor({ policy: "libwayland" });
    const c = await TestClient.connect(comp);
    const fd = c.memfd(8192, { width: 16 });
    const pool = c.createPool(fd, 4096);
    c.client.request(pool, "resize", [8192]);
    const buf = c.createBuffer(pool, 4096, 16, 64, 64);
    const surf = c.surface();
    c.show(surf, buf, 16, 64);
    await settle();
    expect(c.error).toBeNull();
    expect(comp.proc.counters.syscalls.mremap).toBe(1);
    comp.frame();
    const p = comp.placements()[0];
    // Offset 4096 is pixel 1024 of the pattern: row 64 of a 16-wide image.
    expect(comp.regionPixels(p)[0]).toBe(patternPixel(1, 0, 64));
  });

  it("defers a resize that arrives while the pool is being read, as libwayland does", async () => {
    const comp = new Compositor({ policy: "libwayland" });
    const c = await TestClient.connect(comp);
    const w = await c.window(32, 32, { fileSize: 3 * 4096 });
    const op = requestOpcode(comp.server.schema, "wl_shm_pool", "resize");
    comp.withAccess(c.remote, w.buffer, () => {
      // Delivered synchronously inside the access, as a preemption point would.
      c.remote.receive(encodeMessage(w.pool, op, [3 * 4096]), []);
      expect(comp.proc.counters.syscalls.mremap ?? 0).toBe(0);
    });
    expect(comp.proc.counters.syscalls.mremap).toBe(1);
  });

  it("ends only the offending client on a protocol error and frees all its resources", async () => {
    const kernel = new Kernel();
    const comp = new Compositor({ kernel, policy: "libwayland" });
    const good = await TestClient.connect(comp, 1);
    const bad = await TestClient.connect(comp, 2);
    const wg = await good.window(16, 16);
    await bad.window(16, 16);
    const fd = bad.memfd(4096);
    bad.createPool(fd, 4096); // a second pool, kept open
    await settle();
    comp.frame();
    expect(comp.proc.fds.entries().length).toBe(0); // libwayland closes fds once mapped
    expect(ownVmas(comp.proc).length).toBe(3);
    // The bad client sends a shrinking resize of a third pool: wl_shm_pool.invalid_fd.
    const p3 = bad.createPool(bad.memfd(8192), 8192);
    bad.client.request(p3, "resize", [4096]);
    await settle();
    expect(bad.error).toMatchObject({ objectId: p3, code: SHM_ERROR.invalid_fd });
    expect(comp.errors).toEqual([
      expect.objectContaining({ client: "client-2", interface: "wl_shm_pool", code: 2 }),
    ]);
    expect(ownVmas(comp.proc).length).toBe(1);
    expect(comp.poolCount).toBe(1);
    expect(good.error).toBeNull();
    good.show(wg.surface, wg.buffer, 16, 16);
    await settle();
    const s = comp.frame();
    expect(s.surfaces.map((p) => p.client)).toEqual(["client-1"]);
    expectPattern(comp, 1, wg.surface, 16, 16);
  });

  it("frees a client's pools when it disconnects", async () => {
    const comp = new Compositor({ policy: "wlroots" }); // keeps the fds: check both
    const c = await TestClient.connect(comp);
    await c.window(16, 16);
    comp.frame();
    expect(comp.proc.fds.entries().length).toBe(1);
    expect(ownVmas(comp.proc).length).toBe(1);
    c.client.close();
    await settle();
    expect(comp.proc.fds.entries().length).toBe(0);
    expect(ownVmas(comp.proc).length).toBe(0);
    expect(comp.server.clients.size).toBe(0);
  });

  it("counts per frame and per run from the compositor's kernel counters", async () => {
    const comp = new Compositor({ policy: "none" });
    const c = await TestClient.connect(comp);
    await c.window(64, 64);
    const s = comp.frame();
    // 16 KiB: four cached pages in one 64 KiB window; the read's first fault maps all four
    // (do_fault_around → filemap_map_pages), as on Linux: one fault.
    expect(s.faults).toBe(1);
    expect(s.signals).toBe(0);
    expect(s.bytesUserRead).toBe(64 * 64 * 4);
    expect(s.buffersRead).toBe(1);
    expect(s.bytesCopied).toBe(64 * 64 * 4);
    const r = comp.stats();
    expect(r.frames).toBe(1);
    expect(r.alive).toBe(true);
    expect(r.syscalls).toBeGreaterThanOrEqual(2); // mmap and close
  });

  it("refuses a policy whose kernel feature is off", () => {
    expect(() => new Compositor({ policy: "map-nofault" })).toThrow(/map-nofault/);
    expect(
      () =>
        new Compositor({
          policy: "map-nofault",
          kernel: new Kernel({ features: ["map-nofault"] }),
        }),
    ).not.toThrow();
  });
});
