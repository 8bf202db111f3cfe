/**
 * Private PFN maps (LINUX.md rule 18): device memory mapped with remap_pfn_range; a write to
 * a MAP_PRIVATE map copies into an anonymous page, counted as an "obsolete feature used".
 */
import { describe, expect, it } from "vitest";
import { deviceBuffer, mapDeviceBuffer, readDeviceBuffer } from "../shm/device.ts";
import { Kernel } from "../shm/kernel.ts";
import { MAP, PAGE_SIZE, PROT } from "../shm/uapi.ts";
import { PTE_ANON } from "../shm/vma.ts";

const RW = PROT.PROT_READ | PROT.PROT_WRITE;
const NOTE = "write fault copied a private VM_PFNMAP page";

describe("VM_PFNMAP shared and private", () => {
  it("shared writes reach the device; a private write copies once per page and is counted", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const dev = deviceBuffer(k, "vram", 2 * PAGE_SIZE, 0x5a);
    const s = mapDeviceBuffer(a, dev, 2 * PAGE_SIZE, RW, MAP.MAP_SHARED);
    const q = mapDeviceBuffer(a, dev, 2 * PAGE_SIZE, RW, MAP.MAP_PRIVATE);
    const before = k.frames.getStats().inUse;
    a.fill(q, 4, 0x77);
    a.fill(q + 8, 4, 0x78); // same page: already an anonymous copy, no second copy
    expect(k.frames.getStats().inUse).toBe(before + 1);
    expect(k.obsoleteFeatureUses.get(NOTE)).toBe(1);
    expect(a.mm.find(q)!.pte(0) & PTE_ANON).toBe(PTE_ANON);
    expect(readDeviceBuffer(k, dev, 0, 4)).toEqual(new Uint8Array(4).fill(0x5a));
    a.fill(s + PAGE_SIZE, 4, 0x66);
    // The unwritten private page still shows device memory; the copied one does not.
    expect(a.load(q + PAGE_SIZE, 1)[0]).toBe(0x66);
    a.fill(s, 1, 0x66);
    expect(a.load(q, 1)[0]).toBe(0x77);
    a.fill(q + PAGE_SIZE, 1, 0x01);
    expect(k.obsoleteFeatureUses.get(NOTE)).toBe(2);
    expect(a.counters.cowCopies).toBe(2);
  });

  it("device frames are not freed by unmapping or exit; the copies are", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const dev = deviceBuffer(k, "vram", PAGE_SIZE, 1);
    const q = mapDeviceBuffer(a, dev, PAGE_SIZE, RW, MAP.MAP_PRIVATE);
    const base = k.frames.getStats().inUse;
    a.fill(q, 1, 2);
    a.exit();
    expect(k.frames.getStats().inUse).toBe(base);
    expect(k.frames.refs(dev.frames[0])).toBe(1);
    expect(readDeviceBuffer(k, dev, 0, 1)[0]).toBe(1);
  });

  it("a mapping larger than the device buffer is refused", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const dev = deviceBuffer(k, "vram", PAGE_SIZE);
    expect(() => mapDeviceBuffer(a, dev, 2 * PAGE_SIZE, RW, MAP.MAP_SHARED)).toThrow(/EINVAL/);
  });
});
