/**
 * The page cache is a Map with a dense index of its low offsets beside it (shm/page-cache.ts),
 * which the fault path reads instead of the Map. The index must say what the Map says after
 * any sequence of changes, and the Map keep its own order (truncation frees in it).
 */
import { describe, expect, it } from "vitest";
import { PageCache } from "../shm/page-cache.ts";
import { MAP, PROT } from "../shm/uapi.ts";
import { PG, setup } from "./helpers.ts";

/** xorshift32: the same sequence of operations on every run. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe("page cache: the dense index agrees with the Map", () => {
  it("after random sets, deletes and clears, below, across and above the indexed range", () => {
    const next = rng(0x5eed);
    const cache = new PageCache();
    const plain = new Map<number, number>();
    // Offsets near 0, around the index's growth steps, and beyond its 2^16 limit.
    const offsets = [0, 1, 63, 64, 65, 127, 128, 4095, 4096, 65535, 65536, 70000, 2 ** 40];
    for (let step = 0; step < 5000; step++) {
      const pg = offsets[Math.floor(next() * offsets.length)] + Math.floor(next() * 3);
      const r = next();
      if (r < 0.55) {
        const frame = 1 + Math.floor(next() * 1000);
        cache.set(pg, frame);
        plain.set(pg, frame);
      } else if (r < 0.995) {
        expect(cache.delete(pg)).toBe(plain.delete(pg));
      } else {
        cache.clear();
        plain.clear();
      }
      if (step % 50 === 0 || r >= 0.995) {
        for (const o of offsets)
          for (let d = 0; d < 3; d++) expect(cache.frameOf(o + d)).toBe(plain.get(o + d));
        expect([...cache]).toEqual([...plain]); // the Map's order is untouched
      }
    }
  });

  it("refuses a value that is not a frame number", () => {
    expect(() => new PageCache().set(0, -1)).toThrow(RangeError);
    expect(() => new PageCache().set(0, 1.5)).toThrow(RangeError);
  });

  it("fault-around reads pages above the indexed range from the Map", () => {
    // A mapping at file page 70,000 (above the index): a read fault still maps the cached
    // neighbours of its 16-page window, and the bytes are the file's.
    const { a } = setup();
    const fd = a.memfdCreate("big");
    const first = 70_000;
    a.ftruncate(fd, (first + 32) * PG);
    for (let i = 0; i < 32; i++) a.pwrite(fd, new Uint8Array([i + 1]), (first + i) * PG);
    const m = a.mmap(0, 32 * PG, PROT.PROT_READ, MAP.MAP_SHARED, fd, first * PG);
    const faults = a.counters.minorFaults;
    const got: number[] = [];
    for (let i = 0; i < 32; i++) got.push(a.load(m + i * PG, 1)[0]);
    expect(got).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
    // The mapping's start is not 64 KiB aligned in general: two or three windows.
    const windows = Math.floor((m + 32 * PG - 1) / (16 * PG)) - Math.floor(m / (16 * PG)) + 1;
    expect(a.counters.minorFaults - faults).toBe(windows);
  });
});
