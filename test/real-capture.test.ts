/**
 * Finding and judging an honest window in a screenshot (real/capture.ts), on synthetic
 * screenshots: the window is found by its client tag wherever it sits, and classified with
 * the lab's own rules.
 */
import { describe, expect, it } from "vitest";
import { renderFrame } from "../client/pattern.ts";
import { findWindow, locateAndClassify, type Screenshot } from "../real/capture.ts";

const W = 200;
const H = 120;

function screen(fill = 0xff202020): Screenshot {
  const px = new Uint32Array(W * H).fill(fill);
  return {
    width: W,
    height: H,
    stride: W * 4,
    format: 1,
    pixels: new Uint8Array(px.buffer),
    via: "weston_screenshooter",
  };
}

function paint(s: Screenshot, x0: number, y0: number, frame: Uint32Array, w: number, h: number) {
  const px = new Uint32Array(s.pixels.buffer);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (x0 + x < W && y0 + y < H) px[(y0 + y) * W + x0 + x] = frame[y * w + x];
}

describe("locateAndClassify", () => {
  it("finds a window by its tag and calls the latest frame correct", () => {
    const s = screen();
    paint(s, 37, 21, renderFrame(5, 1, 3, 16, 16), 16, 16);
    paint(s, 120, 60, renderFrame(5, 0, 3, 16, 16), 16, 16);
    const got = locateAndClassify(s, 5, 1, 3, 16, 16, [0]);
    expect(got.at).toEqual({ x: 37, y: 21 });
    expect(got.pixels).toBe("correct");
  });

  it("calls an earlier frame stale and a zeroed corner zero", () => {
    const s = screen();
    paint(s, 10, 10, renderFrame(5, 0, 1, 16, 16), 16, 16);
    expect(locateAndClassify(s, 5, 0, 2, 16, 16, []).pixels).toBe("stale");
    paint(s, 18, 18, new Uint32Array(64), 8, 8);
    expect(locateAndClassify(s, 5, 0, 1, 16, 16, []).pixels).toBe("zero");
  });

  it("calls another client's pixels inside the window foreign", () => {
    const s = screen();
    paint(s, 10, 10, renderFrame(5, 0, 1, 16, 16), 16, 16);
    paint(s, 10, 20, renderFrame(5, 2, 1, 16, 6), 16, 6);
    expect(locateAndClassify(s, 5, 0, 1, 16, 16, [2]).pixels).toBe("foreign");
  });

  it("says none when no run of the client's tag is on screen", () => {
    const s = screen(0xff00ffff); // a background whose tag byte is 0
    // a few scattered pixels with the tag are not a window
    const px = new Uint32Array(s.pixels.buffer);
    px[5] = 0xff010203;
    px[W * 3 + 9] = 0xff010203;
    expect(locateAndClassify(s, 5, 0, 1, 16, 16, []).pixels).toBe("none");
  });
});

describe("findWindow", () => {
  it("takes the origin most of the window agrees with, not the first run on screen", () => {
    const s = screen();
    const frame = renderFrame(5, 0, 0, 16, 16);
    paint(s, 100, 60, frame, 16, 16);
    // a stride lie's window above it shows a copy of the window's first row (fuzz finding 4)
    paint(s, 20, 10, frame.subarray(0, 12), 12, 1);
    expect(findWindow(s, 5, 0, 0, 16, 16)).toEqual({ x: 100, y: 60, exact: true });
  });
});

describe("locateAndClassify with windows stacked", () => {
  it("finds the exact origin when the window's left edge is covered by a known window", () => {
    const s = screen();
    paint(s, 40, 30, renderFrame(5, 0, 2, 16, 16), 16, 16);
    // another honest client's window over its six left columns, top to bottom
    paint(s, 36, 26, renderFrame(5, 1, 0, 10, 20), 10, 20);
    const cover = findWindow(s, 5, 1, 0, 10, 20);
    expect(cover).toEqual({ x: 36, y: 26, exact: true });
    const got = locateAndClassify(s, 5, 0, 2, 16, 16, [1], [{ ...cover!, width: 10, height: 20 }]);
    expect(got.at).toEqual({ x: 40, y: 30 });
    // its wrong pixels lie where a window of known placement overlaps it
    expect(got.pixels).toBe("unchecked");
    expect(got.why).toMatch(/overlapped by a known window at 36,26/);
  });

  it("without a known placement the same pixels are reported foreign, not hidden", () => {
    const s = screen();
    paint(s, 40, 30, renderFrame(5, 0, 2, 16, 16), 16, 16);
    paint(s, 36, 26, renderFrame(5, 1, 0, 10, 20), 10, 20);
    expect(locateAndClassify(s, 5, 0, 2, 16, 16, [1]).pixels).toBe("foreign");
  });

  it("a zeroed window of its own (not covered) is zero, not unchecked", () => {
    const s = screen();
    const frame = renderFrame(5, 0, 2, 16, 16);
    frame.fill(0, 0, 16 * 4); // its first four rows zero, inside its own buffer
    paint(s, 40, 30, frame, 16, 16);
    const got = locateAndClassify(s, 5, 0, 2, 16, 16, []);
    expect(got.at).toEqual({ x: 40, y: 30 });
    expect(got.pixels).toBe("zero");
  });

  it("an honest window zeroed beside an attacker's zeroed window is zero, not unchecked", () => {
    // the attack case: the victim's window shows zeros and the attacker's window, zeroed
    // too, touches it, so zeros continue across the victim's edge
    const s = screen();
    const frame = renderFrame(5, 0, 2, 16, 16);
    frame.fill(0, 0, 16 * 8); // the top half zero
    paint(s, 40, 30, frame, 16, 16);
    paint(s, 20, 20, new Uint32Array(20 * 18), 20, 18); // left neighbour, zero, touching
    paint(s, 40, 10, new Uint32Array(16 * 20), 16, 20); // top neighbour, zero, touching
    const got = locateAndClassify(s, 5, 0, 2, 16, 16, [1]);
    expect(got.at).toEqual({ x: 40, y: 30 });
    expect(got.pixels).toBe("zero");
    expect(got.why).toBeUndefined();
  });

  it("a zeroed window over this one, of unknown placement, is reported as zero", () => {
    const s = screen();
    paint(s, 40, 30, renderFrame(5, 0, 2, 16, 16), 16, 16);
    paint(s, 50, 20, new Uint32Array(20 * 20), 20, 20);
    expect(locateAndClassify(s, 5, 0, 2, 16, 16, []).pixels).toBe("zero");
  });
});
