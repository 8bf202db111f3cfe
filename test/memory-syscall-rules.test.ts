/**
 * The memory syscalls' rules that need model-only state to show (device mappings, a small
 * vm.max_map_count): what a call refuses, and what it leaves behind when it does.
 */
import { describe, expect, it } from "vitest";
import { MMAP_BASE, TASK_SIZE } from "../shm/address-space.ts";
import { deviceBuffer, mapDeviceBuffer } from "../shm/device.ts";
import { ProcessKilled } from "../shm/errors.ts";
import { pin } from "../shm/gup.ts";
import { MAP, MREMAP, PROT } from "../shm/uapi.ts";
import { errnoOf, PG, RW, setup, sharedPool, unmapLoader } from "./helpers.ts";

const ANON = MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS;

describe("vm.max_map_count (a small sysctl: the rules of the 65,530 test in address-space)", () => {
  it("mmap, munmap and mprotect at the limit, as on the host", () => {
    // Alternating protections keep neighbours from merging: one VMA per mmap.
    const { a } = setup({ maxMapCount: 16 });
    const v: number[] = [];
    for (;;) {
      const prot = v.length % 2 ? PROT.PROT_READ : PROT.PROT_NONE;
      const r = errnoOf(() => v.push(a.mmap(0, 3 * PG, prot, ANON)));
      if (r !== "ok") {
        expect(r).toBe("ENOMEM");
        break;
      }
    }
    // do_mmap: "if (mm->map_count > sysctl_max_map_count) return -ENOMEM": one more is made.
    expect(a.mm.size).toBe(17);
    const last = v[v.length - 1];
    const b = v[v.length - 3];
    const c = v[v.length - 5];
    // An unmap or mprotect that splits one VMA into three would go over: refused.
    expect(errnoOf(() => a.munmap(last + PG, PG))).toBe("ENOMEM");
    expect(errnoOf(() => a.mprotect(last + PG, PG, RW))).toBe("ENOMEM");
    // Trimming an end makes no VMA more (vms_gather_munmap_vmas lets the count go above).
    a.munmap(last + 2 * PG, PG);
    a.munmap(b, PG);
    expect(a.mm.size).toBe(17);
    a.munmap(v[0], 3 * PG);
    expect(a.mm.size).toBe(16);
    expect(errnoOf(() => a.munmap(c + PG, PG))).toBe("ENOMEM");
    expect(errnoOf(() => a.mprotect(c + PG, PG, RW))).toBe("ENOMEM");
    a.munmap(v[2], 3 * PG);
    expect(a.mm.size).toBe(15);
    // Two splits needed: the first is made (split_vma checks before each), the second refused.
    expect(errnoOf(() => a.mprotect(c + PG, PG, RW))).toBe("ENOMEM");
    expect(a.mm.size).toBe(16);
    a.munmap(c + PG, PG);
    expect(a.mm.size).toBe(16);
    a.mmap(0, PG, PROT.PROT_READ, ANON);
    expect(a.mm.size).toBe(17);
    expect(errnoOf(() => a.mmap(0, PG, PROT.PROT_NONE, ANON))).toBe("ENOMEM");
  });

  it("mremap refuses a move that could leave the map count over the limit (prep_move_vma: map_count >= max - 3)", () => {
    const { a } = setup({ maxMapCount: 8 });
    unmapLoader(a); // the counts below are of these mappings alone
    const v: number[] = [];
    for (let i = 0; i < 5; i++) v.push(a.mmap(0, 2 * PG, i % 2 ? PROT.PROT_READ : RW, ANON));
    expect(a.mm.size).toBe(5);
    expect(errnoOf(() => a.mremap(v[0], 2 * PG, 8 * PG, MREMAP.MREMAP_MAYMOVE))).toBe("ENOMEM");
    a.munmap(v[4], 2 * PG);
    const n = a.mremap(v[0], 2 * PG, 8 * PG, MREMAP.MREMAP_MAYMOVE);
    expect(a.mm.size).toBe(4);
    expect(a.load(n + 7 * PG, 1)[0]).toBe(0);
  });
});

describe("mremap of device memory (remap_is_valid: VM_PFNMAP never changes size)", () => {
  it("growing is EFAULT, in place or moving; a same-size move and a shrink are allowed", () => {
    const { k, a } = setup();
    const dev = deviceBuffer(k, "vram", 4 * PG, 3);
    const m = mapDeviceBuffer(a, dev, 2 * PG, RW, MAP.MAP_SHARED);
    expect(errnoOf(() => a.mremap(m, 2 * PG, 3 * PG, 0))).toBe("EFAULT");
    expect(errnoOf(() => a.mremap(m, 2 * PG, 3 * PG, MREMAP.MREMAP_MAYMOVE))).toBe("EFAULT");
    const target = a.mmap(0, 4 * PG, PROT.PROT_NONE, ANON);
    const fixed = MREMAP.MREMAP_MAYMOVE | MREMAP.MREMAP_FIXED;
    expect(errnoOf(() => a.mremap(m, 2 * PG, 3 * PG, fixed, target))).toBe("EFAULT");
    const moved = a.mremap(m, 2 * PG, 2 * PG, fixed, target);
    expect(moved).toBe(target);
    expect(a.load(moved + PG, 1)[0]).toBe(3);
    expect(a.mremap(moved, 2 * PG, PG, 0)).toBe(moved);
    expect(() => a.load(moved + PG, 1)).toThrow(ProcessKilled);
    expect(a.killedBy?.info).toMatchObject({ signo: "SIGSEGV", code: "SEGV_MAPERR" });
  });
});

describe("what the memory syscalls report to the lab (trace events, per-syscall counts)", () => {
  it("mmap, munmap, mremap and fork each leave one event with its range, in order", () => {
    const { k, a } = setup({ trace: true });
    const [, m] = sharedPool(a, 2 * PG);
    const q = a.mmap(0, PG, RW, ANON);
    a.munmap(q, PG);
    const n = a.mremap(m, 2 * PG, 4 * PG, MREMAP.MREMAP_MAYMOVE);
    const b = a.fork("b");
    const dev = deviceBuffer(k, "vram", PG);
    const d = mapDeviceBuffer(a, dev, PG, RW, MAP.MAP_SHARED);
    const seen = k.events!.filter((e) => ["mmap", "munmap", "mremap", "fork"].includes(e.kind));
    expect(seen.map((e) => [e.kind, e.detail])).toEqual([
      ["mmap", { addr: m, length: 2 * PG, shared: true, file: a.mm.find(n)!.file!.ino }],
      ["mmap", { addr: q, length: PG, shared: false, file: 0 }],
      ["munmap", { addr: q, length: PG }],
      ["mremap", { addr: n, length: 4 * PG }],
      ["fork", { child: b.pid }],
      ["mmap", { addr: d, length: PG, shared: true, pfnmap: true }],
    ]);
  });

  it("each call is counted under its syscall's name, refused or not", () => {
    const { a } = setup();
    const m = a.mmap(0, 2 * PG, RW, ANON);
    a.mprotect(m, PG, PROT.PROT_READ);
    a.madvise(m, PG, 0);
    a.mremap(m, PG, PG, 0);
    a.munmap(m, 2 * PG);
    expect(errnoOf(() => a.munmap(m + 1, PG))).toBe("EINVAL");
    const { mmap, munmap, mremap, mprotect, madvise } = a.counters.syscalls;
    expect({ mmap, munmap, mremap, mprotect, madvise }).toEqual({
      mmap: 1,
      munmap: 2,
      mremap: 1,
      mprotect: 1,
      madvise: 1,
    });
  });

  it("a shared device mapping may be made writable again (VM_MAYWRITE), and fork counts the child's DMA copy", () => {
    const { k, a } = setup();
    const dev = deviceBuffer(k, "vram", PG);
    const d = mapDeviceBuffer(a, dev, PG, RW, MAP.MAP_SHARED);
    a.mprotect(d, PG, PROT.PROT_READ);
    expect(errnoOf(() => a.mprotect(d, PG, RW))).toBe("ok");
    // copy_present_page: a pinned exclusive anonymous page is copied for the child at fork,
    // one anonymous page of the child's (MM_ANONPAGES).
    const m = a.mmap(0, PG, RW, ANON);
    a.fill(m, 1, 1);
    pin(a, m, PG, { write: true });
    const b = a.fork("b");
    expect(b.counters.anonPages).toBe(1);
    expect(b.load(m, 1)[0]).toBe(1);
  });
});

describe("the top of the address space: TASK_SIZE is the first address no mapping may reach", () => {
  // x86_64 with 4-level page tables: TASK_SIZE = (1 << 47) - PAGE_SIZE. These are model-only:
  // on the host the stack lies a random distance below TASK_SIZE (and right at it without
  // ASLR), so a scenario mapping or unmapping the top page could hit the runner's own stack.
  const top = TASK_SIZE - PG;

  it("mmap MAP_FIXED may end exactly at TASK_SIZE, not a page further", () => {
    // __get_unmapped_area: "if (addr > TASK_SIZE - len) return -ENOMEM" (MAP_FIXED returns
    // addr unchanged, after that check).
    const { a } = setup();
    expect(a.mmap(top, PG, RW, ANON | MAP.MAP_FIXED)).toBe(top);
    expect(errnoOf(() => a.mmap(top, 2 * PG, RW, ANON | MAP.MAP_FIXED))).toBe("ENOMEM");
    a.fill(top, PG, 5);
    expect(a.load(TASK_SIZE - 1, 1)[0]).toBe(5);
  });

  it("a hint is honoured up to TASK_SIZE - len and ignored above (mmap_address_hint_valid)", () => {
    // arch_get_unmapped_area_topdown: "if (!mmap_address_hint_valid(addr, len)) goto
    // get_unmapped_area", and mmap_address_hint_valid: "if (TASK_SIZE - len < addr) return
    // false". An invalid hint falls back to the top-down search below mmap_base.
    const { a } = setup();
    expect(a.mmap(top, PG, PROT.PROT_READ, ANON)).toBe(top);
    const { a: b } = setup();
    const low = b.mmap(top, 2 * PG, PROT.PROT_READ, ANON);
    expect(low).toBe(MMAP_BASE - 2 * PG);
  });

  it("munmap of the last page below TASK_SIZE is allowed; one byte more is EINVAL", () => {
    // do_vmi_munmap: "if ((offset_in_page(start)) || start > TASK_SIZE || len > TASK_SIZE-start)
    // return -EINVAL".
    const { a } = setup();
    a.mmap(top, PG, RW, ANON | MAP.MAP_FIXED);
    expect(errnoOf(() => a.munmap(top, PG + 1))).toBe("EINVAL");
    expect(errnoOf(() => a.munmap(top, PG))).toBe("ok");
    expect(a.mm.find(top)).toBeUndefined();
  });

  it("MREMAP_FIXED may move a mapping to end exactly at TASK_SIZE", () => {
    // mremap_to (check_mremap_params in 6.16+): "if (new_len > TASK_SIZE || new_addr >
    // TASK_SIZE - new_len) return -EINVAL".
    const { a } = setup();
    const m = a.mmap(0, 2 * PG, RW, ANON);
    a.fill(m, 2 * PG, 9);
    const fixed = MREMAP.MREMAP_MAYMOVE | MREMAP.MREMAP_FIXED;
    expect(errnoOf(() => a.mremap(m, PG, 2 * PG, fixed, top))).toBe("EINVAL");
    expect(a.mremap(m, PG, PG, fixed, top)).toBe(top);
    expect(a.load(top, 1)[0]).toBe(9);
  });
});
