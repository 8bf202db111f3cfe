/**
 * GUP long-term pins (shm/gup.ts, LINUX.md rule 19): a R/O pin of a page shared after fork
 * unshares it on 5.19+ so the device sees later writes, and loses them on the older kernel
 * (`gup-pre-5.19`); fork copies a pinned page for the child; truncation leaves a pinned page
 * alive for the device and never hands it to another file; GUP errors are EFAULT, not signals.
 */
import { describe, expect, it } from "vitest";
import { ErrnoError } from "../shm/errors.ts";
import { FRAME_ANON_EXCLUSIVE } from "../shm/frames.ts";
import { activePins, deviceRead, deviceWrite, pin, unpin } from "../shm/gup.ts";
import { Kernel } from "../shm/kernel.ts";
import type { KernelFeature } from "../shm/scenario.ts";
import { MAP, PAGE_SIZE, PROT } from "../shm/uapi.ts";
import { pteFrame } from "../shm/vma.ts";

const RW = PROT.PROT_READ | PROT.PROT_WRITE;
const ANON = MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS;

function forkThenPin(features: KernelFeature[]) {
  const k = new Kernel({ features });
  const a = k.spawn("a");
  const m = a.mmap(0, PAGE_SIZE, RW, ANON);
  a.fill(m, PAGE_SIZE, 0x11);
  const b = a.fork("b");
  const p = pin(a, m, PAGE_SIZE);
  a.fill(m, 4, 0x22);
  return { k, a, b, m, p };
}

describe("R/O pin after fork (the cow.c lost-write case)", () => {
  it("5.19+: the pin unshares the page first, so the device sees the parent's later write", () => {
    const { k, a, b, m, p } = forkThenPin([]);
    expect([...deviceRead(k, p, 0, 5)]).toEqual([0x22, 0x22, 0x22, 0x22, 0x11]);
    expect(b.load(m, 1)[0]).toBe(0x11);
    // The unshare made the parent's page exclusive; its write reused it, no second copy.
    const f = p.frames[0];
    expect(k.frames.flags[f] & FRAME_ANON_EXCLUSIVE).toBe(FRAME_ANON_EXCLUSIVE);
    expect(pteFrame(a.mm.find(m)!.pte(0))).toBe(f);
  });

  it("gup-pre-5.19: the write copies the pinned page and is lost to the device", () => {
    const { k, a, m, p } = forkThenPin(["gup-pre-5.19"]);
    expect([...deviceRead(k, p, 0, 5)]).toEqual([0x11, 0x11, 0x11, 0x11, 0x11]);
    expect(a.load(m, 1)[0]).toBe(0x22);
    expect(pteFrame(a.mm.find(m)!.pte(0))).not.toBe(p.frames[0]);
  });

  it("a R/W pin before fork: the child gets a copy at fork, the device keeps the parent's page", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const m = a.mmap(0, PAGE_SIZE, RW, ANON);
    a.fill(m, PAGE_SIZE, 0x11);
    const p = pin(a, m, PAGE_SIZE, { write: true });
    const b = a.fork("b");
    b.fill(m, 4, 0x33);
    a.fill(m, 4, 0x22);
    deviceWrite(k, p, 8, new Uint8Array([0x44]));
    expect(deviceRead(k, p, 0, 4)).toEqual(new Uint8Array(4).fill(0x22));
    expect(a.load(m + 8, 1)[0]).toBe(0x44);
    expect(b.load(m, 4)).toEqual(new Uint8Array(4).fill(0x33));
    expect(b.load(m + 8, 1)[0]).toBe(0x11);
  });
});

describe("fork of a pinned page that is not exclusive", () => {
  // 5.9-5.18 copy_present_page: "if (likely(!page_needs_cow_for_dma(src_vma, page)))" shares
  // the page, else copies it for the child; page_needs_cow_for_dma is only
  // page_maybe_dma_pinned in a COW mapping — exclusive or not. (5.19+ never pins a shared
  // anonymous page: the pin unshares it first, above.)
  it("gup-pre-5.19: a R/O pin of a page shared since an earlier fork still gives the next child its own copy", () => {
    const k = new Kernel({ features: ["gup-pre-5.19"] });
    const a = k.spawn("a");
    const m = a.mmap(0, PAGE_SIZE, RW, ANON);
    a.fill(m, PAGE_SIZE, 0x11);
    const b = a.fork("b");
    const p = pin(a, m, PAGE_SIZE);
    const f = p.frames[0];
    expect(pteFrame(b.mm.find(m)!.pte(0))).toBe(f); // still shared with b, not exclusive
    const c = a.fork("c");
    expect(pteFrame(c.mm.find(m)!.pte(0))).not.toBe(f);
    expect(c.counters.anonPages).toBe(1);
    expect(c.load(m, 2)).toEqual(new Uint8Array([0x11, 0x11]));
    expect(pteFrame(a.mm.find(m)!.pte(0))).toBe(f); // the parent keeps the pinned page
  });
});

describe("pins and truncation", () => {
  it("a truncated pinned page stays alive for the device with its old bytes and is freed at unpin", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const fd = a.memfdCreate("pool");
    a.ftruncate(fd, 2 * PAGE_SIZE);
    const m = a.mmap(0, 2 * PAGE_SIZE, RW, MAP.MAP_SHARED, fd, 0);
    a.fill(m + PAGE_SIZE, PAGE_SIZE, 0xaa);
    const p = pin(a, m + PAGE_SIZE, PAGE_SIZE);
    const f = p.frames[0];
    const inUse = k.frames.getStats().inUse;
    a.ftruncate(fd, PAGE_SIZE);
    // The file let go of the page but the pin holds it: nothing was freed.
    expect(k.frames.getStats().inUse).toBe(inUse);
    expect(k.frames.refs(f)).toBe(1);
    // Another file's new data never lands in the pinned frame.
    const other = a.memfdCreate("other");
    a.pwrite(other, new Uint8Array(PAGE_SIZE).fill(0xcc), 0);
    a.ftruncate(fd, 2 * PAGE_SIZE);
    a.pwrite(fd, new Uint8Array(8).fill(0xbb), PAGE_SIZE);
    expect(deviceRead(k, p)).toEqual(new Uint8Array(PAGE_SIZE).fill(0xaa));
    const held = k.frames.getStats().inUse;
    unpin(k, p);
    expect(k.frames.getStats().inUse).toBe(held - 1); // the pin held the last reference
    expect(activePins(k)).toEqual([]);
    expect(k.pinCounts.size).toBe(0);
  });
});

describe("GUP errors are errno, never signals", () => {
  it("beyond EOF, VM_PFNMAP, no write permission and unmapped are EFAULT, and pin nothing", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const fd = a.memfdCreate("pool");
    a.ftruncate(fd, PAGE_SIZE);
    const m = a.mmap(0, 2 * PAGE_SIZE, RW, MAP.MAP_SHARED, fd, 0);
    const ro = a.mmap(0, PAGE_SIZE, PROT.PROT_READ, ANON);
    const code = (fn: () => unknown) => {
      try {
        fn();
        return "ok";
      } catch (e) {
        return e instanceof ErrnoError ? e.code : String(e);
      }
    };
    expect(code(() => pin(a, m, 2 * PAGE_SIZE))).toBe("EFAULT");
    expect(code(() => pin(a, ro, PAGE_SIZE, { write: true }))).toBe("EFAULT");
    expect(code(() => pin(a, 0x1000_0000, PAGE_SIZE))).toBe("EFAULT");
    expect(code(() => pin(a, m + 1, PAGE_SIZE))).toBe("EINVAL");
    expect(a.counters.sigbus).toBe(0);
    expect(k.pinCounts.size).toBe(0);
  });
});
