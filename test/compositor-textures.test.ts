/**
 * The compositor's copies of client buffers (its textures) are bounded (issue 18, finding
 * 3): one copy per buffer however many surfaces show it, none kept for a buffer no surface
 * shows, none after the buffer and the surfaces are gone, and a per-client budget past
 * which the client gets wl_display.error no_memory while others go on.
 */
import { describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import { settle, TestClient } from "../compositor/testing.ts";
import { DISPLAY_ERROR } from "../protocol/schema.ts";

/** Distinct texture arrays held by the compositor's surfaces, and their bytes. */
function retained(comp: Compositor): { copies: number; bytes: number } {
  const surfaces = (
    comp as unknown as { output: { surfaces: Set<{ texture: Uint8Array | null }> } }
  ).output.surfaces;
  const seen = new Set<Uint8Array>();
  for (const s of surfaces) if (s.texture) seen.add(s.texture);
  let bytes = 0;
  for (const t of seen) bytes += t.length;
  return { copies: seen.size, bytes };
}

describe("compositor textures", () => {
  it("one buffer shown on 50 surfaces is copied once", async () => {
    const comp = new Compositor({ policy: "libwayland" });
    const c = await TestClient.connect(comp);
    const w = await c.window(64, 64);
    for (let i = 0; i < 49; i++) c.show(c.surface(), w.buffer, 64, 64);
    await settle();
    comp.frame();
    expect(retained(comp)).toEqual({ copies: 1, bytes: 64 * 64 * 4 });
  });

  it("a surface cycling through many buffers keeps one copy; destroying everything keeps none", async () => {
    const comp = new Compositor({ policy: "libwayland" });
    const c = await TestClient.connect(comp);
    const fd = c.memfd(20 * 64 * 64 * 4);
    const pool = c.createPool(fd, 20 * 64 * 64 * 4);
    const s = c.surface();
    const bufs: number[] = [];
    for (let i = 0; i < 20; i++) {
      bufs.push(c.createBuffer(pool, i * 64 * 64 * 4, 64, 64, 256));
      c.show(s, bufs[i], 64, 64);
      await settle();
      comp.frame();
    }
    expect(retained(comp).copies).toBe(1);
    c.client.request(s, "destroy");
    for (const b of bufs) c.client.request(b, "destroy");
    await settle();
    comp.frame();
    expect(retained(comp)).toEqual({ copies: 0, bytes: 0 });
  });

  it("past the per-client budget the client gets no_memory, another client is served", async () => {
    const comp = new Compositor({ policy: "libwayland", maxClientTextureBytes: 100 * 1024 });
    const greedy = await TestClient.connect(comp, 1);
    await greedy.window(128, 128); // 64 KiB
    comp.frame();
    await greedy.window(128, 128); // another 64 KiB: over 100 KiB
    const other = await TestClient.connect(comp, 2);
    await other.window(128, 128);
    comp.frame();
    await settle();
    expect(greedy.client.error?.code).toBe(DISPLAY_ERROR.no_memory);
    expect(other.client.error).toBeNull();
    expect(retained(comp).copies).toBe(1); // the greedy client's copies went with it
  });

  it("a client ended by its own buffer's read (invalid_fd at end_access) leaves no copy behind", async () => {
    // The read faults past the truncated end; libwayland's handler maps zeros and posts
    // invalid_fd at end_access, which disconnects the client while the frame is reading.
    const comp = new Compositor({ policy: "libwayland" });
    const c = await TestClient.connect(comp);
    const w = await c.window(64, 64);
    c.proc.ftruncate(w.fd, 0);
    comp.frame();
    await settle();
    expect(c.client.error).not.toBeNull();
    expect(retained(comp)).toEqual({ copies: 0, bytes: 0 });
    const counts = (comp as unknown as { output: { texUsers: Map<unknown, number> } }).output;
    expect(counts.texUsers.size).toBe(0);
  });
});
