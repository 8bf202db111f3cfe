import { describe, expect, it } from "vitest";
import { FrameTable, ZERO_FRAME } from "../shm/frames.ts";

describe("physical frames", () => {
  it("hands out zero-filled frames and reuses freed ones zeroed", () => {
    const t = new FrameTable(64 * 4096);
    const f = t.alloc(1);
    t.view().fill(0xff, f * 4096, (f + 1) * 4096);
    t.put(f);
    const g = t.alloc(2);
    expect(g).toBe(f);
    expect(
      t
        .view()
        .subarray(g * 4096, (g + 1) * 4096)
        .every((b) => b === 0),
    ).toBe(true);
    expect(t.owner[g]).toBe(2);
  });

  it("refuses allocation past the memory limit with ENOMEM, not a crash", () => {
    const t = new FrameTable(8 * 4096);
    const got: number[] = [];
    expect(() => {
      for (let i = 0; i < 100; i++) got.push(t.alloc(1));
    }).toThrow(expect.objectContaining({ code: "ENOMEM" }));
    expect(got.length).toBe(7); // 8 frames, one is the zero page
  });

  it("never frees the zero page", () => {
    const t = new FrameTable(8 * 4096);
    t.put(ZERO_FRAME);
    t.put(ZERO_FRAME);
    expect(t.alloc(1)).not.toBe(ZERO_FRAME);
  });

  it("keeps a freed frame out of reuse while a reader that began before the free is running", () => {
    const t = new FrameTable(4 * 4096);
    const f = t.alloc(1);
    // A reader thread publishes the epoch at which its access began.
    t.epochs[1] = Atomics.load(t.epochs, 0);
    t.put(f);
    const g = t.alloc(1);
    expect(g).not.toBe(f);
    t.epochs[1] = 0; // the reader finished
    t.put(g);
    const h = t.alloc(1);
    expect([f, g]).toContain(h);
  });

  it("counts references: a frame lives while any holder remains", () => {
    const t = new FrameTable(8 * 4096);
    const f = t.alloc(1);
    t.get(f);
    t.put(f);
    expect(t.refs(f)).toBe(1);
    expect(t.getStats().inUse).toBe(1);
    t.put(f);
    expect(t.getStats().inUse).toBe(0);
    expect(() => t.put(f)).toThrow(/underflow/);
  });
});
