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

  it("starts small and keeps every frame's refcount, owner, flags and bytes as it grows", () => {
    const t = new FrameTable(64 * 1024 * 1024);
    expect(t.byteLength).toBeLessThan(4 * 1024 * 1024);
    const early = Array.from({ length: 20 }, (_, i) => t.alloc(100 + i));
    early.forEach((f, i) => {
      t.get(f);
      t.flags[f] = i & 3;
      t.view()[f * 4096 + 7] = i + 1;
    });
    const later = Array.from({ length: 3000 }, () => t.alloc(7));
    expect(t.byteLength).toBeGreaterThanOrEqual(3021 * 4096);
    early.forEach((f, i) => {
      expect(t.refs(f)).toBe(2);
      expect(t.owner[f]).toBe(100 + i);
      expect(t.flags[f]).toBe(i & 3);
      expect(t.view()[f * 4096 + 7]).toBe(i + 1);
    });
    expect(later.every((f) => t.refs(f) === 1 && t.owner[f] === 7)).toBe(true);
    // A frame number never handed out has no references, as in a table sized up front.
    expect(t.refs(10_000)).toBe(0);
    expect(() => t.put(10_000)).toThrow(/underflow/);
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

  it("hands out the lowest free frame first, so frames in use stay packed at the bottom", () => {
    const t = new FrameTable(64 * 4096);
    const fs = Array.from({ length: 10 }, () => t.alloc(1));
    t.put(fs[7]);
    t.put(fs[2]);
    t.put(fs[5]);
    expect([t.alloc(1), t.alloc(1), t.alloc(1)]).toEqual([fs[2], fs[5], fs[7]]);
  });
});

describe("physical memory given back (trim)", () => {
  const MiB = 1024 * 1024;
  const frameBytes = (t: FrameTable, f: number) => t.view().subarray(f * 4096, (f + 1) * 4096);

  it("drops the memory above the highest frame in use; numbers and bytes below stay", () => {
    const t = new FrameTable(64 * MiB);
    const all = Array.from({ length: 5000 }, () => t.alloc(1)); // ~20 MiB
    expect(t.byteLength).toBeGreaterThanOrEqual(20 * MiB);
    const kept = all.slice(0, 10);
    kept.forEach((f, i) => {
      frameBytes(t, f).fill(i + 1);
    });
    for (const f of all.slice(10)) t.put(f);
    const given = t.trim();
    expect(given).toBeGreaterThanOrEqual(16 * MiB);
    expect(t.byteLength).toBe(4 * MiB);
    expect(t.getStats().trimmedBytes).toBe(given);
    kept.forEach((f, i) => {
      expect(t.refs(f)).toBe(1);
      expect(frameBytes(t, f).every((b) => b === i + 1)).toBe(true);
    });
    // New frames after the cut are zero, and the table grows again as needed.
    const more = Array.from({ length: 3000 }, () => t.alloc(2));
    expect(more.every((f) => frameBytes(t, f).every((b) => b === 0))).toBe(true);
    expect(new Set([...kept, ...more]).size).toBe(kept.length + more.length);
  });

  it("keeps everything up to a frame still in use, however high", () => {
    const t = new FrameTable(64 * MiB);
    const all = Array.from({ length: 5000 }, () => t.alloc(1));
    for (const f of all.slice(0, 4999)) t.put(f);
    expect(t.trim()).toBe(0);
    t.put(all[4999]);
    expect(t.trim()).toBeGreaterThan(0);
  });

  it("respects the epoch quarantine: a frame a reader may still see is not cut away", () => {
    const t = new FrameTable(64 * MiB);
    const all = Array.from({ length: 5000 }, () => t.alloc(1));
    t.epochs[1] = Atomics.load(t.epochs, 0); // a reader began
    for (const f of all) t.put(f);
    expect(t.trim()).toBe(0);
    expect(t.byteLength).toBeGreaterThanOrEqual(5000 * 4096);
    t.epochs[1] = 0; // it finished
    expect(t.trim()).toBeGreaterThan(0);
  });

  it("never swaps the buffer while a worker holds it (pinned)", () => {
    const t = new FrameTable(64 * MiB);
    const all = Array.from({ length: 5000 }, () => t.alloc(1));
    for (const f of all) t.put(f);
    const held = t.memory;
    t.pin();
    expect(t.trim()).toBe(0);
    expect(t.memory).toBe(held);
    t.unpin();
    expect(t.trim()).toBeGreaterThan(0);
    expect(t.memory).not.toBe(held);
    expect(() => t.unpin()).toThrow(/unpinned/);
  });
});
