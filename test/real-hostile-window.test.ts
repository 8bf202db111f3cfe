/**
 * The real side of the model's foreign-pixels invariant (real/hostile-window.ts) on
 * screenshots built here: where a hostile client's window is when it drew nothing (finding
 * 4's liar: zeros), what of another client it shows, and the bytes past its pool's end.
 * And real/pool-neighbour.ts's reading of a compositor's maps, on a maps text as the real
 * weston 10 had it.
 */
import { describe, expect, it } from "vitest";
import { countForeign, pixelAt } from "../client/pattern.ts";
import type { Screenshot } from "../real/capture.ts";
import {
  describeHostileWindow,
  type HostileBuffer,
  judgeHostileWindow,
  type KnownWindow,
} from "../real/hostile-window.ts";
import { neighbourIn, parseMaps } from "../real/pool-neighbour.ts";

const SEED = 6;
const W = 200;
const H = 140;
const BACKGROUND = 0x202020;

/** An XRGB8888 screenshot (top byte 0, as weston's is) filled with the background. */
function screen(): { shot: Screenshot; put: (x: number, y: number, v: number) => void } {
  const pixels = new Uint8Array(W * H * 4);
  const dv = new DataView(pixels.buffer);
  const put = (x: number, y: number, v: number) =>
    dv.setUint32((y * W + x) * 4, v & 0xffffff, true);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) put(x, y, BACKGROUND);
  return {
    shot: { width: W, height: H, stride: W * 4, format: 1, pixels, via: "weston_screenshooter" },
    put,
  };
}

/** Finding 4's liar: 64x32 at stride 128 in a one-page pool, never drawn. */
const LIAR: HostileBuffer = {
  width: 64,
  height: 32,
  stride: 128,
  offset: 0,
  poolSize: 4096,
  frame: -1,
};

/**
 * What a compositor composites for the liar at (ox, oy): row y is 64 pixels from byte
 * y*128, zeros inside the pool, and past it the bytes of `above` (the mapping above).
 */
function drawLiar(
  put: (x: number, y: number, v: number) => void,
  ox: number,
  oy: number,
  above: (i: number) => number,
) {
  for (let by = 0; by < 32; by++)
    for (let bx = 0; bx < 64; bx++) {
      const byte = by * 128 + bx * 4;
      put(ox + bx, oy + by, byte < 4096 ? 0 : above((byte - 4096) / 4));
    }
}

function honestWindow(
  put: (x: number, y: number, v: number) => void,
  index: number,
  ox: number,
  oy: number,
) {
  for (let y = 0; y < 48; y++)
    for (let x = 0; x < 48; x++) put(ox + x, oy + y, pixelAt(SEED, index, 0, x, y));
}

const neighbours = [{ index: 0, latest: 0, width: 48, height: 48 }];

describe("a hostile window that drew nothing", () => {
  it("is found by its zeros and shows another client's pool bytes past its own pool (finding 4)", () => {
    const { shot, put } = screen();
    honestWindow(put, 0, 5, 5);
    // the mapping above is client 0's pool: its frame 0, row 0 first
    drawLiar(put, 120, 60, (i) => pixelAt(SEED, 0, 0, i % 48, Math.floor(i / 48)));
    const w = judgeHostileWindow(shot, SEED, 1, LIAR, neighbours, [], true);
    expect(w.at).toEqual({ x: 120, y: 60 });
    expect(w.checked).toBe(2048);
    expect(w.foreign).toBe(32);
    expect(w.foreignBy).toEqual({ 0: 32 });
    expect(w.foreignExact).toBe(32);
    expect(w.firstCopy).toEqual({ bx: 32, by: 31, client: 0, frame: 0, x: 0, y: 0 });
    expect(w.pastPool).toMatchObject({ pixels: 32, checked: 32, foreign: 32, zero: 0, other: 0 });
    expect(describeHostileWindow(w)).toContain(
      "32/2048 pixels carry another client's tag (32 of client 0; 32 a copy of its memory, the first at 32,31 = client 0's frame 0 at 0,0)",
    );
  });

  it("counts what the model's countForeign counts over the same region", () => {
    const { shot, put } = screen();
    drawLiar(put, 30, 40, (i) => pixelAt(SEED, 0, 0, i, 0));
    const w = judgeHostileWindow(shot, SEED, 1, LIAR, neighbours, [], true);
    // countForeign reads the top byte as the client wrote it: restore it as the judge does
    const px = new Uint8Array(shot.pixels);
    for (let i = 3; i < px.length; i += 4) if (px[i - 3] | px[i - 2] | px[i - 1]) px[i] = 0xff;
    const model = countForeign({
      pixels: px,
      stride: shot.stride,
      x: 30,
      y: 40,
      width: 64,
      height: 32,
      owner: 1,
      others: [0],
    });
    expect(model).toBe(32);
    expect(w.foreign).toBe(model);
  });

  it("shows no foreign pixel when the mapping above is not a client's pattern (weston-desktop-shell's 1x1 background)", () => {
    const { shot, put } = screen();
    // a 4-byte file mapped as a page: its pixel, then zeros to the page's end
    drawLiar(put, 100, 20, (i) => (i === 0 ? BACKGROUND : 0));
    const w = judgeHostileWindow(shot, SEED, 1, LIAR, neighbours, [], true);
    expect(w.at).toEqual({ x: 100, y: 20 });
    expect(w.foreign).toBe(0);
    expect(w.pastPool).toMatchObject({ pixels: 32, checked: 32, foreign: 0, zero: 31, other: 1 });
    expect(w.pastPool.values).toEqual(["0x202020", "0x000000"]);
  });

  it("counts a lone pixel with another client's tag as the model does, but not as a copy of its memory", () => {
    const { shot, put } = screen();
    // sway 1.7: the page above was a library's ELF header, "\x7fELF\x02\x01\x01\x00";
    // and one real pattern pixel of client 0 with zeros beside it
    const lone = pixelAt(SEED, 0, 0, 5, 5);
    drawLiar(put, 100, 20, (i) =>
      i === 0 ? 0x464c457f : i === 1 ? 0x00010102 : i === 5 ? lone : 0,
    );
    const w = judgeHostileWindow(shot, SEED, 1, LIAR, neighbours, [], true);
    expect(w.foreign).toBe(2);
    expect(w.foreignBy).toEqual({ 0: 2 });
    expect(w.foreignExact).toBe(0);
    expect(w.firstCopy).toBeUndefined();
  });

  it("is not located from zeros that may be another non-honest client's", () => {
    const { shot, put } = screen();
    drawLiar(put, 100, 20, () => 0);
    const w = judgeHostileWindow(shot, SEED, 1, LIAR, neighbours, [], false);
    expect(w.at).toBeNull();
    expect(w.why).toMatch(/no run of 8 pixels of its own \(tag 2\)/);
  });

  it("is not located where its own-looking pixels spread wider than its buffer", () => {
    const { shot, put } = screen();
    drawLiar(put, 10, 20, () => 0);
    drawLiar(put, 120, 20, () => 0);
    const w = judgeHostileWindow(shot, SEED, 1, LIAR, neighbours, [], true);
    expect(w.at).toBeNull();
    expect(w.why).toMatch(/span 174x32 at 10,20, more than its 64x32 buffer/);
  });
});

describe("a known honest window over or under the hostile one", () => {
  const setup = (honestOnTop: boolean) => {
    const { shot, put } = screen();
    const leak = (i: number) => pixelAt(SEED, 0, 0, i, 0);
    // the honest window overlaps the liar's bottom-right corner, where the leak is
    if (!honestOnTop) honestWindow(put, 0, 150, 80);
    drawLiar(put, 100, 60, leak);
    if (honestOnTop) honestWindow(put, 0, 150, 80);
    const cover: KnownWindow = { x: 150, y: 80, width: 48, height: 48, index: 0, frame: 0 };
    return judgeHostileWindow(shot, SEED, 1, LIAR, neighbours, [cover], true);
  };

  it("on top: its own pixels there are not held against the hostile window", () => {
    const w = setup(true);
    expect(w.at).toEqual({ x: 100, y: 60 });
    // columns 150..163 of rows 80..91 are the honest window's
    expect(w.checked).toBe(2048 - 14 * 12);
    expect(w.pastPool.checked).toBe(32 - 14);
    expect(w.pastPool.foreign).toBe(32 - 14);
  });

  it("under it: the hostile window's pixels there are its own, leak included", () => {
    const w = setup(false);
    expect(w.checked).toBe(2048);
    expect(w.foreign).toBe(32);
  });
});

describe("a hostile window that drew its pattern", () => {
  it("is placed exactly by it, zeros not needed", () => {
    const { shot, put } = screen();
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 48; x++) put(60 + x, 30 + y, pixelAt(SEED, 1, 3, x, y));
    const buf = { ...LIAR, width: 48, stride: 192, poolSize: 48 * 32 * 4, frame: 3 };
    const w = judgeHostileWindow(shot, SEED, 1, buf, neighbours, [], false);
    expect(w.at).toEqual({ x: 60, y: 30 });
    expect(w.foreign).toBe(0);
    expect(w.pastPool.pixels).toBe(0);
  });
});

describe("what lies above a pool in the compositor's maps", () => {
  // weston 10.0.1, finding 4's program, as /proc/<weston>/maps had it (inodes kept)
  const MAPS = `7fdfb5b87000-7fdfb5b94000 rw-p 00000000 00:00 0 
7fdfb5b95000-7fdfb5b9a000 rw-s 00000000 00:01 144374                     /memfd:shmlab-pool (deleted)
7fdfb5b9a000-7fdfb5b9b000 rw-s 00000000 00:01 144373                     /memfd:fuzz (deleted)
7fdfb5b9b000-7fdfb5b9c000 rw-s 00000000 00:01 144371                     /memfd:weston-shared (deleted)
7fdfb5b9c000-7fdfb5b9d000 r--p 00000000 fe:00 5595336                    /usr/lib/x86_64-linux-gnu/libweston-10/headless-backend.so
`;
  const maps = parseMaps(MAPS);

  it("is the mapping that starts where the pool ends, named by its owner when a participant holds it", () => {
    expect(neighbourIn(maps, new Set([144373]), new Map(), "liar", 4096, () => 4)).toBe(
      "liar's pool at 0x7fdfb5b9a000-0x7fdfb5b9b000; directly above: /memfd:weston-shared (deleted) (rw-s, 1 page(s), file 4 bytes)",
    );
    const whose = new Map([[144373, "fuzz-actions#2's"]]);
    expect(neighbourIn(maps, new Set([144374]), whose, "honest", 18432)).toBe(
      "honest's pool at 0x7fdfb5b95000-0x7fdfb5b9a000; directly above: fuzz-actions#2's memfd /memfd:fuzz (deleted) (rw-s, 1 page(s))",
    );
  });

  it("says how far above the next mapping is, and when there is none", () => {
    expect(neighbourIn(maps, new Set([0]), new Map(), "anon", 13 * 4096)).toMatch(
      /at 0x7fdfb5b87000-0x7fdfb5b94000; 1 page\(s\) above: \/memfd:shmlab-pool/,
    );
    expect(neighbourIn(maps, new Set([5595336]), new Map(), "lib", 4096)).toMatch(
      /is the topmost mapping$/,
    );
    expect(neighbourIn(maps, new Set([1]), new Map(), "gone", 4096)).toBe(
      "gone's pool is not mapped in the compositor",
    );
  });
});
