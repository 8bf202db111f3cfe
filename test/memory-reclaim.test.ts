/**
 * Memory given back after clients leave (issue 18): when `shmlab serve` reclaims
 * (cli/memory-reclaim.ts: after 2 s without a client coming or going, at the latest 2 min
 * after the first departure) and what the addon (native/memory-reclaim.cc) gives back.
 * Time is an injected clock here; what the addon gives back is memory, measured as such.
 */
import { getHeapSpaceStatistics } from "node:v8";
import { describe, expect, it } from "vitest";
import { MemoryReclaimer } from "../cli/memory-reclaim.ts";
import { memoryReclaimAddon } from "../native/memory-reclaim.ts";

function reclaimer() {
  let t = 1000;
  const trims: number[] = [];
  const r = new MemoryReclaimer({
    trim: () => {
      trims.push(t);
      return 4096;
    },
    calmMs: 2000,
    maxIntervalMs: 10_000,
    tickMs: 1e9, // ticks are driven by hand
    now: () => t,
  });
  const at = (ms: number) => {
    t = ms;
  };
  return { r, trims, at };
}

describe("when the server reclaims", () => {
  it("nothing while no client has left", () => {
    const { r, trims, at } = reclaimer();
    r.arrived();
    at(60_000);
    expect(r.tick()).toBe(false);
    expect(trims).toEqual([]);
    r.stop();
  });

  it("once calm after a departure, and only once per departure", () => {
    const { r, trims, at } = reclaimer();
    at(1000);
    r.left();
    at(2500);
    expect(r.tick()).toBe(false); // 1.5 s calm
    at(3000);
    expect(r.tick()).toBe(true);
    expect(trims).toEqual([3000]);
    at(9000);
    expect(r.tick()).toBe(false);
    expect(r.stats).toMatchObject({ runs: 1, trimmedBytes: 4096 });
    r.stop();
  });

  it("records what is still alive after its full GC: the server's retained heap", async () => {
    const { r, at } = reclaimer();
    expect(r.stats.liveHeapBytes).toBe(-1);
    at(1000);
    r.left();
    at(3000);
    // 16 MiB of objects held across the reclaim are counted as alive.
    const held = Array.from({ length: 1 << 18 }, (_, i) => ({ i, s: `held-${i}`, a: [i, i] }));
    expect(r.tick()).toBe(true);
    await new Promise((res) => setImmediate(res));
    const withHeld = r.stats.liveHeapBytes;
    expect(held.length).toBe(1 << 18);
    held.length = 0;
    at(4000);
    r.left();
    at(7000);
    expect(r.tick()).toBe(true);
    await new Promise((res) => setImmediate(res));
    expect(withHeld - r.stats.liveHeapBytes).toBeGreaterThan(8 * 1024 * 1024);
    r.stop();
  });

  it("at the latest maxIntervalMs after the first departure while clients keep coming", () => {
    const { r, trims, at } = reclaimer();
    at(1000);
    r.left();
    for (let ms = 1500; ms < 11_000; ms += 500) {
      at(ms);
      r.arrived();
      expect(r.tick()).toBe(false);
    }
    at(11_000);
    r.arrived();
    expect(r.tick()).toBe(true);
    expect(trims).toEqual([11_000]);
    r.stop();
  });
});

const addon = await memoryReclaimAddon();

describe("the reclaim addon", () => {
  it.skipIf(!addon.available)(
    `shrinks V8's young generation after a burst${addon.available ? "" : ` (skipped: ${addon.reason})`}`,
    () => {
      if (!addon.available) return;
      const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space")!;
      // Short-lived garbage at a high rate grows the young generation to its maximum.
      let keep: { a: number; b: string }[] = [];
      for (let i = 0; i < 3e6; i++) {
        keep.push({ a: i, b: `s${i}` });
        if (keep.length > 2e5) keep = [];
      }
      keep = [];
      const before = newSpace().space_size;
      addon.addon.lowMemory();
      const after = newSpace().space_size;
      expect(before).toBeGreaterThanOrEqual(8 * 1024 * 1024);
      expect(after).toBeLessThan(before / 4);
      expect(typeof addon.addon.mallocTrim()).toBe("boolean");
    },
  );
  it.skipIf(!addon.available)(
    `accounts for glibc's heap: what it holds, what is free, how many arenas${addon.available ? "" : ` (skipped: ${addon.reason})`}`,
    () => {
      if (!addon.available) return;
      const before = addon.addon.mallocStats();
      expect(before.arenas).toBeGreaterThanOrEqual(1);
      expect(before.inUse).toBeGreaterThan(0);
      expect(before.inUse + before.free).toBeLessThanOrEqual(before.arena + before.mmapped);
      // 64 buffers of 256 KiB from malloc (Buffer.allocUnsafeSlow: no pool), held: in use grows.
      const held = Array.from({ length: 64 }, () => Buffer.allocUnsafeSlow(256 * 1024).fill(1));
      const during = addon.addon.mallocStats();
      expect(during.inUse + during.mmapped).toBeGreaterThan(
        before.inUse + before.mmapped + 8 * 1024 * 1024,
      );
      expect(held.length).toBe(64);
    },
  );
});
