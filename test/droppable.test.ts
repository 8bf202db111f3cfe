/**
 * MAP_DROPPABLE under memory pressure (LINUX.md rule 17, shm/reclaim.ts): dropped pages read
 * back as zero with no signal, pinned ones stay, the allocator reclaims them before ENOMEM;
 * and the droppable-cache policy's frozen last good frame turns black under pressure.
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import { makeSpec, runOne } from "../lab/run.ts";
import { ProcessKilled } from "../shm/errors.ts";
import { pin, unpin } from "../shm/gup.ts";
import { Kernel } from "../shm/kernel.ts";
import { reclaim } from "../shm/reclaim.ts";
import { MADV_PAGEOUT } from "../shm/syscalls/memory.ts";
import { MAP, PAGE_SIZE, PROT } from "../shm/uapi.ts";

const RW = PROT.PROT_READ | PROT.PROT_WRITE;
const DROPPABLE = MAP.MAP_DROPPABLE | MAP.MAP_ANONYMOUS;

describe("droppable pages under pressure", () => {
  it("reclaim and MADV_PAGEOUT zero droppable pages silently; ordinary anonymous memory stays", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const d = a.mmap(0, 2 * PAGE_SIZE, RW, DROPPABLE);
    const m = a.mmap(0, PAGE_SIZE, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.fill(d, 2 * PAGE_SIZE, 0xab);
    a.fill(m, PAGE_SIZE, 0xcd);
    a.madvise(d, PAGE_SIZE, MADV_PAGEOUT);
    expect(a.load(d, 2)).toEqual(new Uint8Array([0, 0]));
    expect(a.load(d + PAGE_SIZE, 1)[0]).toBe(0xab);
    expect(reclaim(k)).toBe(1);
    expect(a.load(d + PAGE_SIZE, 1)[0]).toBe(0);
    expect(a.load(m, 1)[0]).toBe(0xcd);
    expect(a.counters.sigbus + a.counters.sigsegv).toBe(0);
  });

  it("a pinned droppable page is not reclaimed until unpinned", () => {
    const k = new Kernel();
    const a = k.spawn("a");
    const d = a.mmap(0, PAGE_SIZE, RW, DROPPABLE);
    a.fill(d, PAGE_SIZE, 7);
    const p = pin(a, d, PAGE_SIZE);
    expect(reclaim(k)).toBe(0);
    expect(a.load(d, 1)[0]).toBe(7);
    unpin(k, p);
    expect(reclaim(k)).toBe(1);
    expect(a.load(d, 1)[0]).toBe(0);
  });

  it("the allocator reclaims droppable memory before failing with ENOMEM", () => {
    const k = new Kernel({ memoryLimit: 8 * PAGE_SIZE });
    const a = k.spawn("a");
    const d = a.mmap(0, 6 * PAGE_SIZE, RW, DROPPABLE);
    a.fill(d, 6 * PAGE_SIZE, 1);
    const m = a.mmap(0, 6 * PAGE_SIZE, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.fill(m, 6 * PAGE_SIZE, 2); // needs frames the droppable range holds
    expect(a.load(m + 5 * PAGE_SIZE, 1)[0]).toBe(2);
    expect(a.load(d, 1)[0]).toBe(0);
    // Without droppable memory to give back, the limit is the limit.
    const n = a.mmap(0, 8 * PAGE_SIZE, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    let err: unknown;
    try {
      a.fill(n, 8 * PAGE_SIZE, 3);
    } catch (e) {
      err = e;
    }
    // A user fault that cannot get a page is the OOM kill (VM_FAULT_OOM), not an errno.
    expect(err).toBeInstanceOf(ProcessKilled);
    expect(err).toMatchObject({ pid: a.pid, signal: "SIGKILL", reason: "oom" });
    expect(a.alive).toBe(false);
  });
});

describe("droppable-cache policy under memory pressure", () => {
  it("freezes a broken client on its last good frame, then shows black once reclaim drops it", () => {
    expect(getPolicy("droppable-cache").name).toBe("droppable-cache");
    const nonZero = (policy: string) => {
      const seen: number[] = [];
      const rec = runOne(makeSpec({ policy, behaviour: "memory-pressure" }), {
        afterFrame: (v) => {
          const c = v.compositor;
          const place = c.placements().find((x) => x.client === v.clients[2].label);
          let n = 0;
          if (place) {
            for (let y = place.y; y < place.y + place.height; y++)
              for (let x = place.x; x < place.x + place.width; x++)
                if (c.framebuffer[y * c.width + x] !== 0) n++;
          }
          seen.push(n);
        },
      });
      return { seen, rec };
    };
    const dc = nonZero("droppable-cache");
    expect(dc.rec.compositor.alive).toBe(true);
    // Frames 1-2 good, frame 3 read the truncated pool: still the last good frame.
    expect(dc.seen[2]).toBeGreaterThan(0);
    // After the reclaim the cache reads zero: black, and the policy noticed.
    expect(dc.seen.at(-1)).toBe(0);
    expect(dc.rec.compositor.notices.map((n) => n.what).join()).toMatch(/memory pressure/);
    // The pressure is the run's event, on its timeline, not a syscall of the client.
    const pressure = dc.rec.timeline.filter((t) => t.what === "memory pressure");
    expect(pressure).toHaveLength(1);
    expect(pressure[0].who).toBe("system");
    expect(pressure[0].detail).toMatch(/^[1-9]\d* droppable page\(s\) reclaimed$/);
    // wlroots shows zeros as soon as the pool faults: pressure changes nothing there.
    const wl = nonZero("wlroots");
    expect(wl.seen[2]).toBe(0);
    // Bystanders never depend on the cache.
    for (const c of dc.rec.clients.filter((x) => x.honest))
      expect(c.honestResult?.pixels).toBe("correct");
  });
});
