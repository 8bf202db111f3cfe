import { describe, expect, it } from "vitest";
import {
  classifyRegion,
  countForeign,
  emptyCounts,
  patternTile,
  pixelAt,
  type RegionCounts,
  renderFrame,
} from "../client/pattern.ts";
import { Rng } from "../lab/rng.ts";

/** The definition, pixel by pixel from pixelAt: what classifyRegion must count. */
function reference(
  seed: number,
  px: Uint32Array,
  stridePx: number,
  r: { x: number; y: number; width: number; height: number; bx: number; by: number },
  expected: { client: number; frame: number },
  stale: number[],
  foreign: number[],
): RegionCounts {
  const c = emptyCounts();
  for (let y = 0; y < r.height; y++)
    for (let x = 0; x < r.width; x++) {
      const v = px[(r.y + y) * stridePx + r.x + x];
      const bx = x + r.bx;
      const by = y + r.by;
      c.total++;
      if (v === 0) c.zero++;
      else if (v === pixelAt(seed, expected.client, expected.frame, bx, by)) c.correct++;
      else if (stale.some((f) => v === pixelAt(seed, expected.client, f, bx, by))) c.stale++;
      else if (v >>> 16 === (0xff00 | ((expected.client + 1) & 0xff)) >>> 0) c.other++;
      else if (v >>> 24 === 0xff && foreign.some((f) => ((v >>> 16) & 0xff) === ((f + 1) & 0xff)))
        c.foreign++;
      else c.other++;
    }
  return c;
}

/** An output of w×h with client 0's frame 5 at (ox, oy), spoilt at random places. */
function scene(seed: number, rng: Rng, w: number, h: number, ox: number, oy: number, size: number) {
  const px = new Uint32Array(w * h);
  for (let i = 0; i < px.length; i++) px[i] = pixelAt(seed, 2, 1, i % w, Math.floor(i / w));
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const i = (oy + y) * w + ox + x;
      const k = rng.chance(0.7) ? -1 : rng.int(0, 4);
      px[i] =
        k === -1
          ? pixelAt(seed, 0, 5, x, y)
          : k === 0
            ? 0
            : k === 1
              ? pixelAt(seed, 0, rng.int(0, 4), x, y) // stale
              : k === 2
                ? pixelAt(seed, 1, rng.int(0, 9), x, y) // foreign
                : k === 3
                  ? pixelAt(seed, 0, 5, x + 1, y) // own, misplaced
                  : rng.u32(); // garbage
    }
  return px;
}

describe("classifyRegion: the word-by-word path counts exactly what the definition does", () => {
  it("matches a pixel-by-pixel reference on spoilt regions, insets and unaligned bytes", () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 30; trial++) {
      const seed = rng.int(1, 1000);
      const w = 40;
      const h = 30;
      const size = 16;
      const ox = rng.int(0, w - size);
      const oy = rng.int(0, h - size);
      const px = scene(seed, rng, w, h, ox, oy, size);
      // A sub-rectangle of the region, as regionsOf hands out around an inset.
      const bx = rng.int(0, 8);
      const by = rng.int(0, 8);
      const r = { x: ox + bx, y: oy + by, width: size - bx, height: size - by, bx, by };
      const stale = [0, 1, 2, 3, 4, 5];
      const want = reference(seed, px, w, r, { client: 0, frame: 5 }, stale, [1, 2]);
      const input = {
        seed,
        stride: w * 4,
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
        bufferX: bx,
        bufferY: by,
        expected: { client: 0, frame: 5 },
        stale,
        foreign: [{ client: 1 }, { client: 2 }],
      };
      const bytes = new Uint8Array(px.buffer);
      expect(classifyRegion({ ...input, pixels: bytes })).toEqual(want);
      // The same bytes one byte off alignment: the byte-wise path, the same counts.
      const odd = new Uint8Array(bytes.length + 1).subarray(1);
      odd.set(bytes);
      expect(classifyRegion({ ...input, pixels: odd })).toEqual(want);
      expect(want.correct).toBeGreaterThan(0);
      expect(want.stale + want.foreign + want.zero + want.other).toBeGreaterThan(0);
    }
  });

  it("counts foreign pixels (countForeign) as classifyRegion does, without hashing", () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 20; trial++) {
      const seed = rng.int(1, 1000);
      const px = scene(seed, rng, 32, 32, 4, 4, 20);
      const bytes = new Uint8Array(px.buffer);
      const region = { stride: 128, x: 2, y: 3, width: 24, height: 25 };
      const full = classifyRegion({
        seed,
        pixels: bytes,
        ...region,
        expected: { client: 0, frame: 0 },
        foreign: [{ client: 1 }, { client: 2 }],
      });
      expect(countForeign({ pixels: bytes, ...region, owner: 0, others: [1, 2] })).toBe(
        full.foreign,
      );
      expect(full.foreign).toBeGreaterThan(0);
      // Only the clients named count: client 2's background is not foreign when left out.
      const onlyOne = classifyRegion({
        seed,
        pixels: bytes,
        ...region,
        expected: { client: 0, frame: 0 },
        foreign: [{ client: 1 }],
      });
      expect(countForeign({ pixels: bytes, ...region, owner: 0, others: [1] })).toBe(
        onlyOne.foreign,
      );
    }
  });

  it("regions reaching outside the pixels read as before (zero), not past the array", () => {
    const px = renderFrame(3, 0, 1, 8, 8);
    const bytes = new Uint8Array(px.buffer);
    const c = classifyRegion({
      seed: 3,
      pixels: bytes,
      stride: 32,
      x: 4,
      y: 6,
      width: 4,
      height: 4,
      bufferX: 4,
      bufferY: 6,
      expected: { client: 0, frame: 1 },
    });
    expect(c).toEqual({ correct: 8, stale: 0, zero: 8, foreign: 0, other: 0, total: 16 });
  });
});

const same = (a: Uint32Array, b: Uint32Array) =>
  Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer)) === 0;

describe("patternTile", () => {
  it("is the rendered frame, the same array while cached, another key another tile", () => {
    const a = patternTile(9, 1, 4, 48, 48);
    expect(same(a, renderFrame(9, 1, 4, 48, 48))).toBe(true);
    expect(patternTile(9, 1, 4, 48, 48) === a).toBe(true);
    expect(same(patternTile(9, 1, 5, 48, 48), renderFrame(9, 1, 5, 48, 48))).toBe(true);
    expect(same(patternTile(9, 1, 5, 48, 48), a)).toBe(false);
    // Larger than the cache keeps: rendered afresh, still the same pixels.
    const big = patternTile(9, 1, 4, 512, 256);
    expect(patternTile(9, 1, 4, 512, 256) === big).toBe(false);
    expect(same(big, renderFrame(9, 1, 4, 512, 256))).toBe(true);
  });
});
