/**
 * GUP long-term pins (FOLL_PIN | FOLL_LONGTERM, mm/gup.c pin_user_pages): how a device — the
 * compositor's GPU importing a client buffer zero-copy — holds user pages. A pin takes one
 * reference per page and remembers the frames; the device then reads (and, for a R/W pin,
 * writes) those frames directly, whatever the process's page tables later say.
 *
 * LINUX.md rule 19. Since 5.19 anonymous pages carry PageAnonExclusive (FRAME_ANON_EXCLUSIVE),
 * and gup_must_unshare() makes a R/O pin of a page the process does not own exclusively take
 * an unshare fault first (FAULT_FLAG_UNSHARE: do_wp_page copies or reuses the page and marks
 * it exclusive, but leaves the entry read-only). The pinned page is then the process's own,
 * so its later write fault reuses it ("if (PageAnonExclusive(page)) goto reuse") and the
 * device sees the write. With kernel feature `gup-pre-5.19` (5.9-5.18) there is no unshare
 * and do_wp_page reuses only when page_count() == 1: a R/O pin of a page shared after fork
 * keeps the old page while the process writes to a copy — the write is lost to the device
 * (the CVE-2020-29374 class; tools/testing/selftests/mm/cow.c "R/O GUP pin on shared page").
 *
 * Errors are those of the GUP core, never signals: a range that is not mapped, VM_PFNMAP or
 * VM_IO memory (check_vma_flags), a missing permission, or a fault that would be SIGBUS
 * (beyond EOF, MADV_USERFAULT) is EFAULT; a pin is all or nothing, as device imports are.
 */

import { readFrames, writeFrames } from "./device.ts";
import { errno } from "./errors.ts";
import { canReuseAnon, resolveFault } from "./fault.ts";
import { FRAME_ANON_EXCLUSIVE, ZERO_FRAME } from "./frames.ts";
import type { Kernel } from "./kernel.ts";
import type { Process } from "./process.ts";
import { PAGE_SIZE, PROT } from "./uapi.ts";
import { makePte, PTE_ANON, PTE_WRITE, prepareAnonVma, pteFrame, type Vma } from "./vma.ts";

export interface PinOptions {
  /** FOLL_WRITE: the device will write; the pages are write-faulted (COW broken) first. */
  write?: boolean;
}

export class Pin {
  released = false;
  constructor(
    readonly id: number,
    readonly pid: number,
    readonly addr: number,
    readonly length: number,
    readonly write: boolean,
    /** The pinned frames, one per page, each holding one reference and one pin. */
    readonly frames: readonly number[],
  ) {}
}

const pins = new WeakMap<Kernel, { next: number; byId: Map<number, Pin> }>();

function registry(k: Kernel): { next: number; byId: Map<number, Pin> } {
  let r = pins.get(k);
  if (!r) pins.set(k, (r = { next: 1, byId: new Map() }));
  return r;
}

export function findPin(k: Kernel, id: number): Pin | undefined {
  return registry(k).byId.get(id);
}

/** The pins currently held on a kernel (for leak checks and reports). */
export function activePins(k: Kernel): Pin[] {
  return [...registry(k).byId.values()];
}

/**
 * is_cow_mapping(): private and may be written — the mappings where a page the process
 * sees can later be replaced by a copy.
 */
function isCowMapping(v: Vma): boolean {
  return !v.flags.shared && v.flags.mayWrite;
}

/**
 * gup_must_unshare() for FOLL_PIN | FOLL_LONGTERM without FOLL_WRITE: an anonymous page must
 * be exclusive; a non-anonymous page (the shared zero page, a page-cache page) in a COW
 * mapping must be replaced by an anonymous one ("We only care about R/O long-term pinning
 * ... of writable private mappings where we have to break COW early").
 */
function mustUnshare(k: Kernel, v: Vma, pte: number): boolean {
  if (k.features.has("gup-pre-5.19")) return false;
  if (v.flags.shared) return false;
  const frame = pteFrame(pte);
  if (!(pte & PTE_ANON) || frame === ZERO_FRAME) return isCowMapping(v);
  return (k.frames.flags[frame] & FRAME_ANON_EXCLUSIVE) === 0;
}

/**
 * do_wp_page with FAULT_FLAG_UNSHARE: reuse the page if nobody else holds it, else
 * wp_page_copy — either way the result is an exclusive anonymous page, still mapped
 * read-only ("unshare ... the new page is mapped R/O").
 */
function unshareFault(k: Kernel, p: Process, v: Vma, i: number, pte: number): void {
  p.counters.minorFaults++;
  const frame = pteFrame(pte);
  if (pte & PTE_ANON && frame !== ZERO_FRAME && canReuseAnon(k, frame)) {
    k.frames.flags[frame] |= FRAME_ANON_EXCLUSIVE;
    return;
  }
  prepareAnonVma(v); // wp_page_copy: "if (vmf_anon_prepare(vmf)) ..." (fork then copies it)
  const copy = k.frames.alloc(p.pid, "pin");
  k.frames.copyFrame(copy, frame);
  k.frames.flags[copy] = FRAME_ANON_EXCLUSIVE;
  v.setPte(i, makePte(copy, PTE_ANON));
  if (frame !== ZERO_FRAME) k.frames.put(frame);
  p.counters.cowCopies++;
  p.counters.anonPages++;
}

/** Faults in one page the way __get_user_pages does and returns its frame (not yet referenced). */
function faultInForPin(p: Process, addr: number, write: boolean): number {
  const k = p.kernel;
  for (let attempt = 0; attempt < 8; attempt++) {
    const v = p.mm.find(addr);
    if (!v) errno("EFAULT", "pin", "not mapped");
    // check_vma_flags: "if (vm_flags & (VM_IO | VM_PFNMAP)) return -EFAULT", then the access.
    if (v.flags.pfnmap) errno("EFAULT", "pin", "VM_PFNMAP has no pages to pin");
    if (write && !(v.prot & PROT.PROT_WRITE)) errno("EFAULT", "pin", "not writable");
    if (!(v.prot & (PROT.PROT_READ | PROT.PROT_WRITE | PROT.PROT_EXEC)))
      errno("EFAULT", "pin", "not readable");
    const i = v.index(addr);
    const pte = v.pte(i);
    if (pte !== 0 && (!write || pte & PTE_WRITE)) {
      if (!write && mustUnshare(k, v, pte)) {
        unshareFault(k, p, v, i, pte);
        continue; // follow_page_mask again, as faultin_page's retry does
      }
      return pteFrame(pte);
    }
    const out = resolveFault(k, p, addr, write);
    // VM_FAULT_SIGBUS / SIGSEGV become -EFAULT in GUP; no signal is sent. A userfaultfd hole
    // would make GUP wait for the resolver; the model does not block a pin and fails it.
    if (out.kind === "oom") errno("ENOMEM", "pin");
    if (out.kind !== "ok") errno("EFAULT", "pin", `fault ${out.kind}`);
  }
  return errno("EFAULT", "pin", "fault did not settle");
}

/**
 * pin_user_pages(addr, len, FOLL_LONGTERM | (write ? FOLL_WRITE : 0)): pins every page of
 * [addr, addr+len) or none (EFAULT / EINVAL / ENOMEM).
 */
export function pin(p: Process, addr: number, length: number, opts: PinOptions = {}): Pin {
  p.enter("ioctl");
  const write = opts.write ?? false;
  if (addr % PAGE_SIZE !== 0) errno("EINVAL", "pin", "unaligned address");
  if (!(length > 0)) errno("EINVAL", "pin", "empty range");
  const k = p.kernel;
  const frames: number[] = [];
  try {
    for (let a = addr; a < addr + length; a += PAGE_SIZE) {
      const f = faultInForPin(p, a, write);
      k.frames.get(f);
      k.pinCounts.set(f, (k.pinCounts.get(f) ?? 0) + 1);
      frames.push(f);
    }
  } catch (e) {
    for (const f of frames) dropPin(k, f);
    throw e;
  }
  const r = registry(k);
  const pinned = new Pin(r.next++, p.pid, addr, length, write, frames);
  r.byId.set(pinned.id, pinned);
  k.emit(p.pid, "pin", { id: pinned.id, addr, length, write });
  return pinned;
}

function dropPin(k: Kernel, f: number): void {
  const n = (k.pinCounts.get(f) ?? 1) - 1;
  if (n > 0) k.pinCounts.set(f, n);
  else k.pinCounts.delete(f);
  k.frames.put(f);
}

/** unpin_user_pages: drops the references; a page the file or process left is freed now. */
export function unpin(k: Kernel, pinned: Pin): void {
  if (pinned.released) errno("EINVAL", "unpin", "pin already released");
  pinned.released = true;
  for (const f of pinned.frames) dropPin(k, f);
  registry(k).byId.delete(pinned.id);
  k.emit(pinned.pid, "unpin", { id: pinned.id });
}

/** What the device reads through the pin (its DMA), [offset, offset+length) of the range. */
export function deviceRead(k: Kernel, pinned: Pin, offset = 0, length?: number): Uint8Array {
  if (pinned.released) errno("EINVAL", "device_read", "pin released");
  const start = pinned.addr % PAGE_SIZE;
  const n = length ?? pinned.length - offset;
  if (offset < 0 || offset + n > pinned.length) errno("EINVAL", "device_read", "outside the pin");
  return readFrames(k, pinned.frames, start + offset, n);
}

/** The device writes through a R/W pin (screen capture into a client buffer, say). */
export function deviceWrite(k: Kernel, pinned: Pin, offset: number, data: Uint8Array): void {
  if (pinned.released) errno("EINVAL", "device_write", "pin released");
  if (!pinned.write) errno("EFAULT", "device_write", "a R/O pin gives no write access");
  if (offset < 0 || offset + data.length > pinned.length)
    errno("EINVAL", "device_write", "outside the pin");
  writeFrames(k, pinned.frames, (pinned.addr % PAGE_SIZE) + offset, data);
}
