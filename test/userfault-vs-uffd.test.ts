/**
 * MADV_USERFAULT (the 2014 proposal) against userfaultfd when the KERNEL touches the memory
 * (write(2) from the range): the proposal can only signal the CPU, so a kernel access stops
 * short (EFAULT when nothing was copied, LINUX.md rule 6); userfaultfd makes the kernel wait
 * for the resolver, which is why userfaultfd exists. The scenario files in scenarios/userfault/
 * show the same; uffd-kernel-access-waits is host-checked.
 */
import { describe, expect, it } from "vitest";
import { Kernel, type Scheduler } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { MADV, MAP, PAGE_SIZE, PROT, UFFD } from "../shm/uapi.ts";

const RW = PROT.PROT_READ | PROT.PROT_WRITE;
const ANON = MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS;

describe("a kernel access to a missing page", () => {
  it("MADV_USERFAULT: write(2) gives a short count / EFAULT and no signal; a CPU load gets SIGBUS", () => {
    const k = new Kernel({ features: ["madv-userfault"] });
    const a = k.spawn("a");
    const m = a.mmap(0, 2 * PAGE_SIZE, RW, ANON);
    a.fill(m, PAGE_SIZE, 0x41);
    a.madvise(m, 2 * PAGE_SIZE, MADV.MADV_USERFAULT);
    const [, w] = a.pipe();
    expect(a.write(w, m, 2 * PAGE_SIZE)).toBe(PAGE_SIZE);
    expect(() => a.write(w, m + PAGE_SIZE, PAGE_SIZE)).toThrow(/EFAULT/);
    expect(a.counters.sigbus).toBe(0);
    const seen: number[] = [];
    a.sigaction("SIGBUS", {
      handler: (info, self) => {
        seen.push(info.addr - m);
        // The 2014 design's resolver: put a page there (here: anonymous memory over it).
        self.mmap(info.addr - (info.addr % PAGE_SIZE), PAGE_SIZE, RW, ANON | MAP.MAP_FIXED);
      },
    });
    expect(a.load(m + PAGE_SIZE, 1)[0]).toBe(0);
    expect(seen).toEqual([PAGE_SIZE]);
  });

  it("userfaultfd: write(2) waits for the resolver and then completes in full", () => {
    let resolver: (() => void) | undefined;
    const sched: Scheduler = {
      point() {},
      block(_p: Process, until: () => boolean) {
        resolver?.();
        if (!until()) throw new Error("still blocked");
      },
    };
    const k = new Kernel({ scheduler: sched });
    const a = k.spawn("a");
    const m = a.mmap(0, 2 * PAGE_SIZE, RW, ANON);
    a.fill(m, PAGE_SIZE, 0x41);
    const u = a.userfaultfd(0);
    a.uffdioApi(u, 0);
    a.uffdioRegister(u, m, 2 * PAGE_SIZE, UFFD.UFFDIO_REGISTER_MODE_MISSING);
    const [r, w] = a.pipe();
    const events: number[] = [];
    resolver = () => {
      const e = a.uffdRead(u);
      events.push(e.address - m);
      a.uffdioCopy(u, e.address, new Uint8Array(PAGE_SIZE).fill(0x42));
    };
    expect(a.write(w, m, 2 * PAGE_SIZE)).toBe(2 * PAGE_SIZE);
    expect(events).toEqual([PAGE_SIZE]);
    expect(a.counters.sigbus).toBe(0);
    const back = a.mmap(0, 2 * PAGE_SIZE, RW, ANON);
    expect(a.read(r, back, 2 * PAGE_SIZE)).toBe(2 * PAGE_SIZE);
    expect(a.load(back + PAGE_SIZE - 1, 2)).toEqual(new Uint8Array([0x41, 0x42]));
  });
});
