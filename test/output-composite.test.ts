/**
 * Compositing into the output: each drawn region holds its surface's pixels (whole rows
 * copied at once where they are contiguous), and every pixel no surface covers is
 * background — also where a surface was on an earlier frame and is no longer.
 */
import { describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import type { SurfacePlacement } from "../compositor/output.ts";
import { patternPixel, settle, TestClient } from "../compositor/testing.ts";

/** Pixels outside every placement that are not background. */
function strayPixels(comp: Compositor): number {
  const places = comp.placements();
  let n = 0;
  for (let y = 0; y < comp.height; y++)
    for (let x = 0; x < comp.width; x++) {
      const inside = places.some(
        (p) => x >= p.x && x < p.x + p.width && y >= p.y && y < p.y + p.height,
      );
      if (!inside && comp.framebuffer[y * comp.width + x] !== 0) n++;
    }
  return n;
}

/** Every pixel of a placement against the client's pattern (testing.ts). */
function wrongPixels(comp: Compositor, p: SurfacePlacement, index: number): number {
  const px = comp.regionPixels(p);
  let n = 0;
  for (let y = 0; y < p.height; y++)
    for (let x = 0; x < p.width; x++)
      if (px[y * p.width + x] >>> 0 !== patternPixel(index, x, y)) n++;
  return n;
}

describe("output compositing", () => {
  // Regions covering most of the output: only the gaps are cleared; covering little: the
  // whole output is cleared before drawing. Both must clear what the gone surface covered.
  it.each([
    { how: "gaps cleared", out: [200, 100], a: [100, 100], b: [100, 90], at: [100, 0] },
    { how: "fill first", out: [200, 200], a: [90, 90], b: [120, 80], at: [100, 0] },
  ])(
    "clears what a surface that went away covered, and keeps the others' pixels ($how)",
    async ({ out, a: sa, b: sb, at }) => {
      const comp = new Compositor({ policy: "none", width: out[0], height: out[1] });
      const a = await TestClient.connect(comp, 1);
      const b = await TestClient.connect(comp, 2);
      await a.window(sa[0], sa[1]);
      const wb = await b.window(sb[0], sb[1]);
      comp.frame();
      const second = comp.placements()[1];
      expect([second.x, second.y]).toEqual(at);
      expect(wrongPixels(comp, second, 2)).toBe(0);
      expect(strayPixels(comp)).toBe(0);
      // b's surface shows nothing any more (a null attach): its tile goes back to background.
      b.client.request(wb.surface, "attach", [0, 0, 0]);
      b.client.request(wb.surface, "commit");
      await settle();
      comp.frame();
      expect(comp.placements()).toHaveLength(1);
      expect(strayPixels(comp)).toBe(0);
      expect(wrongPixels(comp, comp.placements()[0], 1)).toBe(0);
    },
  );

  it("draws a surface as wide as the output, packed, in one piece and exactly", async () => {
    const comp = new Compositor({ policy: "libwayland", width: 64, height: 48 });
    const a = await TestClient.connect(comp, 3);
    await a.window(64, 40);
    comp.frame();
    const [p] = comp.placements();
    expect([p.x, p.y, p.width, p.height]).toEqual([0, 0, 64, 40]);
    expect(wrongPixels(comp, p, 3)).toBe(0);
    expect(strayPixels(comp)).toBe(0);
  });

  it("draws a surface clipped to its tile row by row, and clears the tile's remainder", async () => {
    const comp = new Compositor({ policy: "none", width: 100, height: 60 });
    const cs = [1, 2, 3].map((i) => new TestClient(comp, i));
    for (const c of cs) await c.init();
    await cs[0].window(70, 20); // wider than its 50-pixel tile: clipped
    await cs[1].window(30, 40);
    await cs[2].window(10, 10);
    comp.frame();
    const ps = comp.placements();
    expect(ps.map((p) => [p.x, p.y, p.width, p.height])).toEqual([
      [0, 0, 50, 20],
      [50, 0, 30, 30],
      [0, 30, 10, 10],
    ]);
    expect(ps.map((p, i) => wrongPixels(comp, p, i + 1))).toEqual([0, 0, 0]);
    expect(strayPixels(comp)).toBe(0);
  });
});
