/**
 * Honest clients' pixels. Every pixel is a pure function of (seed, client index, frame
 * number, x, y), so the lab can tell, for any region of the compositor's output, exactly
 * which pixels are this client's latest frame and which are something else.
 *
 * Layout of one pixel (a little-endian uint32, as wl_shm's ARGB8888/XRGB8888 are):
 *
 *   bits 24..31  0xff          never zero, so a zero page can never pass for a pixel
 *   bits 16..23  client tag    (client index + 1) & 0xff: who drew it, wherever it lands
 *   bits  0..15  hash          of (seed, client, frame, x, y): which frame, which place
 *
 * The tag makes "foreign" cheap to detect at any position (a page of another client's
 * buffer showing up in this client's region, the cross-client leak the kernel must never
 * invent); the hash makes "stale" exact (an earlier frame of the same client at the same
 * place). 16 bits of hash mean a stale pixel equals the current one by chance once in
 * 65536 pixels: such a pixel counts as correct, which can only hide staleness, never
 * invent a failure.
 */

export const PIXEL_BYTES = 4;

/** The per-frame part of the hash: mixes seed, client and frame once per frame. */
export function frameKey(seed: number, client: number, frame: number): number {
  let h = Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1);
  h ^= Math.imul(client + 1, 0x85ebca77);
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae3d);
  h ^= Math.imul(frame + 1, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 13), 0x165667b1);
  return (h ^ (h >>> 16)) | 0;
}

export function clientTag(client: number): number {
  return (client + 1) & 0xff;
}

/** The hash part of a pixel, from the frame key. */
export function pixelHash(key: number, x: number, y: number): number {
  let h = (key ^ Math.imul(x + 1, 0x27d4eb2d) ^ Math.imul(y + 1, 0x165667b1)) | 0;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
  return (h ^ (h >>> 15)) & 0xffff;
}

/** The pixel value (uint32) of a client's frame at (x, y). */
export function pixelAt(seed: number, client: number, frame: number, x: number, y: number): number {
  return (
    (0xff000000 | (clientTag(client) << 16) | pixelHash(frameKey(seed, client, frame), x, y)) >>> 0
  );
}

/**
 * Renders a width×height frame into `out` (uint32 pixels, `stridePx` pixels per row).
 * Returns `out`. Cost: a few integer multiplies per pixel.
 */
export function renderFrame(
  seed: number,
  client: number,
  frame: number,
  width: number,
  height: number,
  out: Uint32Array = new Uint32Array(width * height),
  stridePx = width,
): Uint32Array {
  const key = frameKey(seed, client, frame);
  const high = (0xff000000 | (clientTag(client) << 16)) >>> 0;
  for (let y = 0; y < height; y++) {
    const row = y * stridePx;
    const ky = key ^ Math.imul(y + 1, 0x165667b1);
    for (let x = 0; x < width; x++) {
      let h = (ky ^ Math.imul(x + 1, 0x27d4eb2d)) | 0;
      h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
      h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
      out[row + x] = high | ((h ^ (h >>> 15)) & 0xffff);
    }
  }
  return out;
}

/** The bytes of a rendered frame (little-endian, as they sit in the pool). */
export function frameBytes(
  seed: number,
  client: number,
  frame: number,
  width: number,
  height: number,
): Uint8Array {
  const px = renderFrame(seed, client, frame, width, height);
  return littleEndianBytes(px);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function littleEndianBytes(px: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(px.buffer, px.byteOffset, px.byteLength);
  const out = new Uint8Array(px.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < px.length; i++) dv.setUint32(i * 4, px[i], true);
  return out;
}

/** Reads pixel i of little-endian bytes. */
function readPixel(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset] |
      (bytes[offset + 1] << 8) |
      (bytes[offset + 2] << 16) |
      (bytes[offset + 3] << 24)) >>>
    0
  );
}

// ---- classification ------------------------------------------------------------------

export type PixelClass = "correct" | "stale" | "zero" | "foreign" | "other";

/**
 * How bad each class is, "none" (nothing seen yet) least: a stale frame is old but the
 * client's own; "other" is garbage; zeros lose the window; foreign pixels leak another
 * client's contents. The one ranking for the lab and the real drivers.
 */
const PIXEL_RANK: Record<PixelClass | "none", number> = {
  none: 0,
  correct: 1,
  stale: 2,
  other: 3,
  zero: 4,
  foreign: 5,
};

/** The worse of two pixel classes (a later correct frame never hides a bad one). */
export function worsePixel<T extends PixelClass | "none">(a: T, b: T): T {
  return PIXEL_RANK[b] > PIXEL_RANK[a] ? b : a;
}

export interface RegionCounts {
  correct: number;
  stale: number;
  zero: number;
  foreign: number;
  other: number;
  total: number;
}

/** A frame of one client: what the region may hold. */
export interface FrameRef {
  client: number;
  frame: number;
}

export interface ClassifyInput {
  seed: number;
  /** The output (or a buffer): little-endian pixels. */
  pixels: Uint8Array;
  /** Bytes per row of `pixels`. */
  stride: number;
  /** The region inside `pixels` that should hold `expected`, in pixels. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** The client's latest committed frame: what every pixel should be. */
  expected: FrameRef;
  /** Earlier frames of the same client (position-exact matches count as stale). */
  stale?: readonly number[];
  /**
   * Other clients that may have leaked in. A pixel carrying one of their tags (and the
   * 0xff top byte) counts as foreign, wherever in their frame it came from. When `frames`
   * is given, only position-exact matches of those frames count.
   */
  foreign?: readonly { client: number; frames?: readonly number[] }[];
  /** Where (x, y) of the client's buffer sits relative to the region; default 0, 0. */
  bufferX?: number;
  bufferY?: number;
}

export function emptyCounts(): RegionCounts {
  return { correct: 0, stale: 0, zero: 0, foreign: 0, other: 0, total: 0 };
}

/**
 * Classifies every pixel of a region: correct (the expected frame), stale (an earlier frame
 * of the same client at the same place), zero (all four bytes zero), foreign (another
 * client's pixel), other (anything else: garbage, a misplaced own pixel, a torn write).
 */
export function classifyRegion(input: ClassifyInput): RegionCounts {
  const { seed, pixels, stride, x: rx, y: ry, width, height, expected } = input;
  const bx = input.bufferX ?? 0;
  const by = input.bufferY ?? 0;
  const counts = emptyCounts();
  const key = frameKey(seed, expected.client, expected.frame);
  const high = (0xff000000 | (clientTag(expected.client) << 16)) >>> 0;
  const staleKeys = (input.stale ?? [])
    .filter((f) => f !== expected.frame)
    .map((f) => frameKey(seed, expected.client, f));
  const foreignAny = new Set<number>();
  const foreignExact: { high: number; keys: number[] }[] = [];
  for (const f of input.foreign ?? []) {
    if (f.client === expected.client) continue;
    if (f.frames) {
      foreignExact.push({
        high: (0xff000000 | (clientTag(f.client) << 16)) >>> 0,
        keys: f.frames.map((n) => frameKey(seed, f.client, n)),
      });
    } else foreignAny.add(clientTag(f.client));
  }
  for (let y = 0; y < height; y++) {
    let off = (ry + y) * stride + rx * 4;
    const py = y + by;
    for (let x = 0; x < width; x++, off += 4) {
      const v = readPixel(pixels, off);
      counts.total++;
      const px = x + bx;
      if (v === 0) {
        counts.zero++;
        continue;
      }
      if (v >>> 16 === high >>> 16) {
        const h = v & 0xffff;
        if (h === pixelHash(key, px, py)) {
          counts.correct++;
          continue;
        }
        let isStale = false;
        for (const k of staleKeys)
          if (h === pixelHash(k, px, py)) {
            isStale = true;
            break;
          }
        if (isStale) counts.stale++;
        else counts.other++;
        continue;
      }
      if (v >>> 24 === 0xff) {
        const tag = (v >>> 16) & 0xff;
        if (foreignAny.has(tag)) {
          counts.foreign++;
          continue;
        }
        let isForeign = false;
        for (const fe of foreignExact) {
          if (v >>> 16 !== fe.high >>> 16) continue;
          for (const k of fe.keys)
            if ((v & 0xffff) === pixelHash(k, px, py)) {
              isForeign = true;
              break;
            }
          if (isForeign) break;
        }
        if (isForeign) {
          counts.foreign++;
          continue;
        }
      }
      counts.other++;
    }
  }
  return counts;
}

/** The class of one pixel value at buffer position (x, y), for timelines and tests. */
export function classifyPixel(
  seed: number,
  value: number,
  expected: FrameRef,
  x: number,
  y: number,
  stale: readonly number[] = [],
  foreignClients: readonly number[] = [],
): PixelClass {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value >>> 0, true);
  const c = classifyRegion({
    seed,
    pixels: bytes,
    stride: 4,
    x: 0,
    y: 0,
    width: 1,
    height: 1,
    expected,
    stale,
    foreign: foreignClients.map((client) => ({ client })),
    bufferX: x,
    bufferY: y,
  });
  if (c.correct) return "correct";
  if (c.stale) return "stale";
  if (c.zero) return "zero";
  if (c.foreign) return "foreign";
  return "other";
}

/** True when every pixel of the region is the expected frame. */
export function allCorrect(c: RegionCounts): boolean {
  return c.total > 0 && c.correct === c.total;
}
