/**
 * A non-honest client's window in a real screenshot, and what of another client it shows:
 * the real side of the model's `foreign-pixels` invariant (lab/fuzz/invariants.ts), which
 * counts, in every placement, the pixels tagged with another client's index
 * (client/pattern.ts `countForeign`).
 *
 * An honest window is found by its pattern; a hostile one often has none: a fuzz client
 * that never drew shows its memfd's zeros (finding 4's liar is 64×32 zero pixels but for
 * the bytes past its pool). So its window is found by what it can only be made of: pixels
 * of its own tag, and — where it is the only client that is not honest — zero pixels,
 * which no honest pattern pixel and no configured background ever is (weston's is
 * 0x202020). The window is the bounding box of runs of such pixels, refined to the exact
 * origin where its drawn pattern shows; a box wider or taller than the buffer means the
 * pixels are not all its own, and the window is left unlocated rather than guessed.
 *
 * Where another honest window of known placement overlaps it, the stacking is not known: a
 * pixel there that is exactly that window's own pixel for that place is the honest window
 * on top and is not held against this one; any other pixel there is this window's (an
 * honest window never shows anything but its frame where it is on top, or it is harmed,
 * which its own check reports). Each pixel also gets its buffer position, so
 * the pixels whose bytes lie past the end of the pool (a stride lie's last row) are
 * reported apart, with what they showed: another client's pattern, exactly (which client,
 * frame and position), zeros, or something else.
 */
import { clientTag, pixelAt } from "../client/pattern.ts";
import { findWindow, normalisedPixels, type Screenshot, type WindowRect } from "./capture.ts";

/** What a located window's bytes are: the buffer's geometry in its pool. */
export interface HostileBuffer {
  width: number;
  height: number;
  stride: number;
  offset: number;
  /** The pool's size as the client last asked for it (create_pool, resize). */
  poolSize: number;
  /** The pattern frame last drawn into it, or -1 (never drawn: zeros). */
  frame: number;
}

/** An honest window found at the exact origin of its latest frame (capture.ts findWindow). */
export interface KnownWindow extends WindowRect {
  index: number;
  frame: number;
}

/** Another client whose pixels may show up: its index and the pattern frames it drew. */
export interface Neighbour {
  index: number;
  /** Frames 0..latest of its pattern, each `width`×`height` (what its pools hold). */
  latest: number;
  width: number;
  height: number;
}

/** What the window showed (RealClientObservation.window). */
export interface HostileWindow {
  /** The buffer's top-left on screen, or null: not located (`why` says why). */
  at: { x: number; y: number } | null;
  width: number;
  height: number;
  /** Pixels held against the others: on screen and not a known honest window's own. */
  checked: number;
  /** Pixels carrying another client's tag (the model's foreign-pixels count). */
  foreign: number;
  /** The foreign pixels by the index of the client whose tag they carry. */
  foreignBy: Record<string, number>;
  /**
   * Foreign pixels that are a copy of that client's memory: the pixel and a horizontal
   * neighbour in this window are two pixels of one of its frames that lie next to each
   * other in its buffer. A tag alone is one byte: real memory (a library's ELF header,
   * 0x00010102, measured on sway) carries one by chance; two adjacent pattern pixels do not.
   */
  foreignExact: number;
  /** The first such copy: where in the window, and whose pixel it is (client, frame, x, y). */
  firstCopy?: { bx: number; by: number; client: number; frame: number; x: number; y: number };
  /** The buffer's pixels whose bytes lie past the end of its pool. */
  pastPool: {
    pixels: number;
    /** Of them, checked (on screen, not a known honest window's own). */
    checked: number;
    foreign: number;
    zero: number;
    other: number;
    /** Up to 4 distinct values seen there (rgb hex), first seen first. */
    values: string[];
  };
  why?: string;
  /** What lies just above its pool in the compositor's memory (real/pool-neighbour.ts). */
  poolNeighbour?: string;
}

/** A run of this many own pixels marks the window (a stray pixel never does). */
const RUN = 8;

/**
 * Locates client `index`'s window by its own pixels and counts what of `neighbours` it
 * shows. `zeroIsOwn`: zero pixels can only be this client's (it is the only one that is not
 * honest); otherwise only its tag locates it.
 */
export function judgeHostileWindow(
  shot: Screenshot,
  seed: number,
  index: number,
  buf: HostileBuffer,
  neighbours: readonly Neighbour[],
  covers: readonly KnownWindow[],
  zeroIsOwn: boolean,
  /** Where the compositor puts every window (cage: the output's origin), if it does. */
  placedAt?: { x: number; y: number },
): HostileWindow {
  const { width: w, height: h } = buf;
  const px = normalisedPixels(shot);
  const dv = new DataView(px.buffer, px.byteOffset, px.byteLength);
  const at = (x: number, y: number) => dv.getUint32(y * shot.stride + x * 4, true);
  const empty: HostileWindow = {
    at: null,
    width: w,
    height: h,
    checked: 0,
    foreign: 0,
    foreignBy: {},
    foreignExact: 0,
    pastPool: { pixels: pastPoolCount(buf), checked: 0, foreign: 0, zero: 0, other: 0, values: [] },
  };
  const origin = placedAt ?? locate(shot, at, seed, index, buf, zeroIsOwn);
  if ("why" in origin) return { ...empty, why: origin.why };
  const tags = new Map(neighbours.map((n) => [clientTag(n.index), n]));
  const exact = exactPixels(seed, neighbours);
  const out: HostileWindow = { ...empty, at: origin, pastPool: { ...empty.pastPool, values: [] } };
  const value = (bx: number, by: number) => {
    const x = origin.x + bx;
    const y = origin.y + by;
    return bx < 0 || bx >= w || x < 0 || y < 0 || x >= shot.width || y >= shot.height
      ? undefined
      : at(x, y);
  };
  /** Is the window's pixel beside (bx, by) the pattern pixel beside `e` in its buffer? */
  const copied = (e: PatternPixel, ns: readonly Neighbour[], bx: number, by: number) => {
    const n = ns.find((q) => q.index === e.client)!;
    const i = e.y * n.width + e.x;
    const next = i + 1 < n.width * n.height ? i + 1 : -1;
    const prev = i - 1;
    const px = (j: number) =>
      pixelAt(seed, e.client, e.frame, j % n.width, Math.floor(j / n.width));
    return (
      (next >= 0 && value(bx + 1, by) === px(next)) || (prev >= 0 && value(bx - 1, by) === px(prev))
    );
  };
  for (let by = 0; by < h; by++)
    for (let bx = 0; bx < w; bx++) {
      const x = origin.x + bx;
      const y = origin.y + by;
      if (x < 0 || y < 0 || x >= shot.width || y >= shot.height) continue;
      const v = at(x, y);
      if (covers.some((r) => shows(seed, r, v, x, y))) continue;
      const past = buf.offset + by * buf.stride + bx * 4 + 4 > buf.poolSize;
      out.checked++;
      const owner = v >>> 24 === 0xff ? tags.get((v >>> 16) & 0xff) : undefined;
      if (owner && owner.index !== index) {
        out.foreign++;
        out.foreignBy[owner.index] = (out.foreignBy[owner.index] ?? 0) + 1;
        const src = exact
          .get(v)
          ?.find((e) => e.client === owner.index && copied(e, neighbours, bx, by));
        if (src) {
          out.foreignExact++;
          out.firstCopy ??= { bx, by, ...src };
        }
      }
      if (!past) continue;
      const p = out.pastPool;
      p.checked++;
      if (owner && owner.index !== index) p.foreign++;
      else if ((v & 0xffffff) === 0) p.zero++;
      else p.other++;
      const hex = `0x${(v & 0xffffff).toString(16).padStart(6, "0")}`;
      if (p.values.length < 4 && !p.values.includes(hex)) p.values.push(hex);
    }
  return out;
}

/** Pixels of the buffer whose 4 bytes do not all lie inside the pool. */
function pastPoolCount(b: HostileBuffer): number {
  let n = 0;
  for (let by = 0; by < b.height; by++)
    for (let bx = 0; bx < b.width; bx++)
      if (b.offset + by * b.stride + bx * 4 + 4 > b.poolSize) n++;
  return n;
}

/** Is `v` at screen (x, y) window `r`'s own pixel there (the top byte as normalised)? */
function shows(seed: number, r: KnownWindow, v: number, x: number, y: number): boolean {
  if (x < r.x || x >= r.x + r.width || y < r.y || y >= r.y + r.height) return false;
  return v === pixelAt(seed, r.index, r.frame, x - r.x, y - r.y);
}

interface PatternPixel {
  client: number;
  frame: number;
  x: number;
  y: number;
}

/**
 * Every pattern value the neighbours drew, with every place it is drawn (16 bits of hash:
 * a value recurs within a frame and across frames).
 */
function exactPixels(seed: number, neighbours: readonly Neighbour[]): Map<number, PatternPixel[]> {
  const m = new Map<number, PatternPixel[]>();
  for (const n of neighbours)
    for (let frame = 0; frame <= n.latest; frame++)
      for (let y = 0; y < n.height; y++)
        for (let x = 0; x < n.width; x++) {
          const v = pixelAt(seed, n.index, frame, x, y);
          const at = m.get(v);
          if (!at) m.set(v, [{ client: n.index, frame, x, y }]);
          else at.push({ client: n.index, frame, x, y });
        }
  return m;
}

/**
 * The window's origin: the exact origin of its drawn pattern where findWindow sees it,
 * else the bounding box of runs of own pixels (its tag; zeros where `zeroIsOwn`). No
 * honest window ever shows such a pixel, so none is taken for this one's.
 */
function locate(
  shot: Screenshot,
  at: (x: number, y: number) => number,
  seed: number,
  index: number,
  buf: HostileBuffer,
  zeroIsOwn: boolean,
): { x: number; y: number } | { why: string } {
  if (buf.frame >= 0) {
    const f = findWindow(shot, seed, index, buf.frame, buf.width, buf.height);
    if (f?.exact) return { x: f.x, y: f.y };
  }
  const tag = clientTag(index);
  const own = (v: number) =>
    (zeroIsOwn && (v & 0xffffff) === 0) || (v >>> 24 === 0xff && ((v >>> 16) & 0xff) === tag);
  const run = Math.min(RUN, buf.width);
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < shot.height; y++) {
    let n = 0;
    for (let x = 0; x < shot.width; x++) {
      n = own(at(x, y)) ? n + 1 : 0;
      if (n < run) continue;
      if (n === run) x0 = Math.min(x0, x - run + 1);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  if (x1 < 0)
    return {
      why: `no run of ${run} pixels of its own (${zeroIsOwn ? "zero or " : ""}tag ${tag}) on screen`,
    };
  if (x1 - x0 + 1 > buf.width || y1 - y0 + 1 > buf.height)
    return {
      why: `its own-looking pixels span ${x1 - x0 + 1}x${y1 - y0 + 1} at ${x0},${y0}, more than its ${buf.width}x${buf.height} buffer`,
    };
  return { x: x0, y: y0 };
}

/** One line for the notes. */
export function describeHostileWindow(wdw: HostileWindow): string {
  if (!wdw.at) return `window not located (${wdw.why})`;
  const by = Object.entries(wdw.foreignBy)
    .map(([i, n]) => `${n} of client ${i}`)
    .join(", ");
  const p = wdw.pastPool;
  const past = p.pixels
    ? `; ${p.pixels} pixels past its pool's end (${p.checked} checked): ${p.foreign} foreign, ${p.zero} zero, ${p.other} other${p.values.length ? ` [${p.values.join(" ")}]` : ""}`
    : "";
  const c = wdw.firstCopy;
  const copy = c
    ? `, the first at ${c.bx},${c.by} = client ${c.client}'s frame ${c.frame} at ${c.x},${c.y}`
    : "";
  const above = wdw.poolNeighbour ? `; ${wdw.poolNeighbour}` : "";
  return `window ${wdw.width}x${wdw.height} at ${wdw.at.x},${wdw.at.y}: ${wdw.foreign}/${wdw.checked} pixels carry another client's tag${by ? ` (${by}; ${wdw.foreignExact} a copy of its memory${copy})` : ""}${past}${above}`;
}
