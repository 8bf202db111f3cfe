/**
 * A simulated device (the compositor's GPU) for the issue-9 hazards: its own memory (device
 * buffers with no page-cache pages behind them, mapped into processes as VM_PFNMAP by its
 * driver, LINUX.md rule 18), and what it sees through its DMA: device buffers directly, and
 * user memory only through FOLL_PIN pins (gup.ts).
 */
import { ErrnoError } from "./errors.ts";
import type { Kernel } from "./kernel.ts";
import type { Process } from "./process.ts";
import { mmapPfn } from "./syscalls/memory.ts";
import { PAGE_SIZE } from "./uapi.ts";

/** Owner tag of device frames (no process or file owns them). */
export const DEVICE_OWNER = -1;

export class DeviceBuffer {
  constructor(
    readonly name: string,
    /** The device's frames (its "pfns"); each holds one reference for the device. */
    readonly frames: readonly number[],
  ) {}
  get length(): number {
    return this.frames.length * PAGE_SIZE;
  }
}

const devices = new WeakMap<Kernel, Map<string, DeviceBuffer>>();

/**
 * The device buffer `name`, allocated (pages of `fill`, default zero) on first use. Its
 * frames are never freed while the kernel lives: device memory belongs to the device.
 */
export function deviceBuffer(k: Kernel, name: string, length: number, fill = 0): DeviceBuffer {
  let m = devices.get(k);
  if (!m) devices.set(k, (m = new Map()));
  const have = m.get(name);
  if (have) return have;
  const pages = Math.ceil(length / PAGE_SIZE);
  if (pages <= 0) throw new ErrnoError("EINVAL", "device", "empty device buffer");
  const frames: number[] = [];
  for (let i = 0; i < pages; i++) {
    const f = k.frames.alloc(DEVICE_OWNER, "device");
    if (fill) k.frames.view().fill(fill, f * PAGE_SIZE, (f + 1) * PAGE_SIZE);
    frames.push(f);
  }
  const b = new DeviceBuffer(name, frames);
  m.set(name, b);
  return b;
}

export function findDeviceBuffer(k: Kernel, name: string): DeviceBuffer | undefined {
  return devices.get(k)?.get(name);
}

/** Every device buffer of a kernel (each of its frames holds one reference for the device). */
export function deviceBuffers(k: Kernel): DeviceBuffer[] {
  return [...(devices.get(k)?.values() ?? [])];
}

/** The driver's mmap of a device buffer into `p` (remap_pfn_range): a VM_PFNMAP mapping. */
export function mapDeviceBuffer(
  p: Process,
  b: DeviceBuffer,
  length: number,
  prot: number,
  flags: number,
): number {
  return mmapPfn(p, length, prot, flags, b.frames);
}

/** What the device reads from its own memory (a DMA read of the buffer). */
export function readDeviceBuffer(
  k: Kernel,
  b: DeviceBuffer,
  offset: number,
  length: number,
): Uint8Array {
  return readFrames(k, b.frames, offset, length);
}

/** Bytes [offset, offset+length) of a list of frames laid end to end. */
export function readFrames(
  k: Kernel,
  frames: readonly number[],
  offset: number,
  length: number,
): Uint8Array {
  if (offset < 0 || length < 0 || offset + length > frames.length * PAGE_SIZE) {
    throw new ErrnoError("EINVAL", "device_read", "outside the buffer");
  }
  const out = new Uint8Array(length);
  const mem = k.frames.view();
  for (let done = 0; done < length; ) {
    const at = offset + done;
    const f = frames[Math.floor(at / PAGE_SIZE)];
    const inPage = at % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - inPage, length - done);
    out.set(mem.subarray(f * PAGE_SIZE + inPage, f * PAGE_SIZE + inPage + n), done);
    done += n;
  }
  return out;
}

/** A DMA write into frames (a R/W pin's device writing, or its own memory). */
export function writeFrames(
  k: Kernel,
  frames: readonly number[],
  offset: number,
  data: Uint8Array,
): void {
  if (offset < 0 || offset + data.length > frames.length * PAGE_SIZE) {
    throw new ErrnoError("EINVAL", "device_write", "outside the buffer");
  }
  const mem = k.frames.view();
  for (let done = 0; done < data.length; ) {
    const at = offset + done;
    const f = frames[Math.floor(at / PAGE_SIZE)];
    const inPage = at % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - inPage, data.length - done);
    mem.set(data.subarray(done, done + n), f * PAGE_SIZE + inPage);
    done += n;
  }
}
