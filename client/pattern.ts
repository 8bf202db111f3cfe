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

/** The keys and tags a region's pixels are held against (classifyRegion). */
interface ClassifyContext {
  key: number;
  /** The expected client's top 16 bits (0xff and its tag). */
  high16: number;
  staleKeys: number[];
  foreignAny: Set<number>;
  foreignExact: { high: number; keys: number[] }[];
}

function classifyContext(input: ClassifyInput): ClassifyContext {
  const { seed, expected } = input;
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
  return {
    key: frameKey(seed, expected.client, expected.frame),
    high16: (0xff000000 | (clientTag(expected.client) << 16)) >>> 16,
    staleKeys,
    foreignAny,
    foreignExact,
  };
}

/** Counts one pixel value `v` found at buffer position (px, py) in its class. */
function classifyOne(
  ctx: ClassifyContext,
  counts: RegionCounts,
  v: number,
  px: number,
  py: number,
): void {
  if (v === 0) {
    counts.zero++;
    return;
  }
  if (v >>> 16 === ctx.high16) {
    const h = v & 0xffff;
    if (h === pixelHash(ctx.key, px, py)) {
      counts.correct++;
      return;
    }
    for (const k of ctx.staleKeys)
      if (h === pixelHash(k, px, py)) {
        counts.stale++;
        return;
      }
    counts.other++;
    return;
  }
  if (v >>> 24 === 0xff) {
    if (ctx.foreignAny.has((v >>> 16) & 0xff)) {
      counts.foreign++;
      return;
    }
    for (const fe of ctx.foreignExact) {
      if (v >>> 16 !== fe.high >>> 16) continue;
      for (const k of fe.keys)
        if ((v & 0xffff) === pixelHash(k, px, py)) {
          counts.foreign++;
          return;
        }
    }
  }
  counts.other++;
}

// ---- rendered tiles, shared by drawing and checking ----------------------------------

/** Tiles kept: a run's honest clients draw and are checked against a handful of frames. */
const TILE_CACHE_ENTRIES = 32;
/** Larger tiles are rendered afresh each time (the cache stays a few MiB at most). */
const TILE_CACHE_MAX_PIXELS = 1 << 16;
const tileCache = new Map<string, Uint32Array>();

/**
 * The width×height tile of a client's frame, from a small cache: a tile is a pure function
 * of its key, so a cached one is the very pixels a fresh render gives. The client drawing a
 * frame and the lab checking it then hash each pixel once between them, not twice. The
 * array is shared: never write to it.
 */
export function patternTile(
  seed: number,
  client: number,
  frame: number,
  width: number,
  height: number,
): Uint32Array {
  if (width * height > TILE_CACHE_MAX_PIXELS)
    return renderFrame(seed, client, frame, width, height);
  const key = `${seed}:${client}:${frame}:${width}:${height}`;
  let tile = tileCache.get(key);
  if (tile) {
    // Most recently used last (a Map keeps insertion order): the oldest goes first.
    tileCache.delete(key);
  } else {
    tile = renderFrame(seed, client, frame, width, height);
    if (tileCache.size >= TILE_CACHE_ENTRIES)
      tileCache.delete(tileCache.keys().next().value as string);
  }
  tileCache.set(key, tile);
  return tile;
}

/** patternTile's pixels as the little-endian bytes they are in a pool (shared: read only). */
export function tileBytes(
  seed: number,
  client: number,
  frame: number,
  width: number,
  height: number,
): Uint8Array {
  return littleEndianBytes(patternTile(seed, client, frame, width, height));
}

/**
 * A little-endian uint32 view of `pixels` when the region's rows are whole aligned words
 * inside it, else null (the byte-wise path then reads as it always did).
 */
function wordsOf(
  pixels: Uint8Array,
  stride: number,
  r: { x: number; y: number; width: number; height: number },
): Uint32Array | null {
  if (!LITTLE_ENDIAN || pixels.byteOffset % 4 !== 0 || stride % 4 !== 0 || stride <= 0) return null;
  if (r.x < 0 || r.y < 0 || (r.x + r.width) * 4 > stride) return null;
  if ((r.y + r.height - 1) * stride + (r.x + r.width) * 4 > pixels.byteLength) return null;
  return new Uint32Array(pixels.buffer, pixels.byteOffset, pixels.byteLength >>> 2);
}

/**
 * Classifies every pixel of a region: correct (the expected frame), stale (an earlier frame
 * of the same client at the same place), zero (all four bytes zero), foreign (another
 * client's pixel), other (anything else: garbage, a misplaced own pixel, a torn write).
 *
 * Word by word against the expected frame's tile: a pixel equal to it is correct (a pattern
 * pixel is never zero and carries the client's tag, so equality is exactly the per-pixel
 * test); only the others are hashed against stale and foreign frames.
 */
export function classifyRegion(input: ClassifyInput): RegionCounts {
  const { seed, pixels, stride, x: rx, y: ry, width, height, expected } = input;
  const bx = input.bufferX ?? 0;
  const by = input.bufferY ?? 0;
  const counts = emptyCounts();
  if (width <= 0 || height <= 0) return counts;
  const words = bx >= 0 && by >= 0 ? wordsOf(pixels, stride, input) : null;
  if (words) {
    // Stale and foreign keys only once a pixel is not the expected one (most regions: never).
    let ctx: ClassifyContext | null = null;
    const tw = bx + width;
    const tile = patternTile(seed, expected.client, expected.frame, tw, by + height);
    const rowWords = stride >>> 2;
    for (let y = 0; y < height; y++) {
      const at = (ry + y) * rowWords + rx;
      const t = (by + y) * tw + bx;
      let correct = 0;
      for (let x = 0; x < width; x++) {
        const v = words[at + x];
        if (v === tile[t + x]) correct++;
        else {
          ctx ??= classifyContext(input);
          classifyOne(ctx, counts, v, x + bx, y + by);
        }
      }
      counts.correct += correct;
    }
    counts.total += width * height;
    return counts;
  }
  const ctx = classifyContext(input);
  for (let y = 0; y < height; y++) {
    let off = (ry + y) * stride + rx * 4;
    for (let x = 0; x < width; x++, off += 4)
      classifyOne(ctx, counts, readPixel(pixels, off), x + bx, y + by);
  }
  counts.total += width * height;
  return counts;
}

/**
 * The foreign count of classifyRegion for a region of `owner` held against `others`
 * (any frame of theirs): pixels that are not zero, not the owner's tag, have the 0xff top
 * byte and another client's tag. No hashing: which frame a pixel is does not matter here.
 */
export function countForeign(input: {
  pixels: Uint8Array;
  stride: number;
  x: number;
  y: number;
  width: number;
  height: number;
  owner: number;
  others: readonly number[];
}): number {
  const { pixels, stride, x: rx, y: ry, width, height } = input;
  const own = (0xff00 | clientTag(input.owner)) >>> 0;
  const tags = new Uint8Array(256);
  for (const c of input.others) if (c !== input.owner) tags[clientTag(c)] = 1;
  let n = 0;
  if (width <= 0 || height <= 0) return 0;
  const words = wordsOf(pixels, stride, input);
  for (let y = 0; y < height; y++) {
    if (words) {
      const at = (ry + y) * (stride >>> 2) + rx;
      for (let x = 0; x < width; x++) {
        const top = words[at + x] >>> 16;
        if (top !== own && top >>> 8 === 0xff && tags[top & 0xff]) n++;
      }
    } else {
      let off = (ry + y) * stride + rx * 4;
      for (let x = 0; x < width; x++, off += 4) {
        const top = readPixel(pixels, off) >>> 16;
        if (top !== own && top >>> 8 === 0xff && tags[top & 0xff]) n++;
      }
    }
  }
  return n;
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
