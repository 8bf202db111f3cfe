/** Small shared fixtures for the kernel suites. */
import { ErrnoError } from "../shm/errors.ts";
import { Kernel, type KernelOptions } from "../shm/kernel.ts";
import { LOADER_DATA_SIZE, LOADER_DATA_START } from "../shm/loader-image.ts";
import type { Process } from "../shm/process.ts";
import { MAP, MFD, PROT } from "../shm/uapi.ts";

export const RW = PROT.PROT_READ | PROT.PROT_WRITE;
export const PG = 4096;

export function setup(opts: KernelOptions = {}): { k: Kernel; a: Process } {
  const k = new Kernel(opts);
  return { k, a: k.spawn("a") };
}

/**
 * Unmaps the loader's mapping every process has above MMAP_BASE (shm/loader-image.ts), as a
 * Linux process may: for tests that need nothing right above their topmost mapping (or a
 * first private anonymous mapping that joins nothing), i.e. the address space they were
 * written against. The next mmap then takes the top of the freed range.
 */
export function unmapLoader(p: Process): void {
  p.munmap(LOADER_DATA_START, LOADER_DATA_SIZE);
}

/** `p`'s VMAs but the loader's (shm/loader-image.ts): the ones the test's code made. */
export function ownVmas(p: Process) {
  return p.mm.vmas.filter((v) => v.start !== LOADER_DATA_START);
}

/** A memfd of `size` bytes, mapped MAP_SHARED read-write: [fd, addr]. */
export function sharedPool(
  p: Process,
  size: number,
  flags = MFD.MFD_ALLOW_SEALING,
): [number, number] {
  const fd = p.memfdCreate("pool", flags);
  p.ftruncate(fd, size);
  return [fd, p.mmap(0, size, RW, MAP.MAP_SHARED, fd, 0)];
}

/** The errno a call fails with, or "ok". */
export function errnoOf(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (e instanceof ErrnoError) return e.code;
    throw e;
  }
}

/** Installs a SIGBUS/SIGSEGV handler that records and maps a zero page over the fault. */
export function zeroPageHandler(p: Process, sig: "SIGBUS" | "SIGSEGV" = "SIGBUS"): number[] {
  const seen: number[] = [];
  p.sigaction(sig, {
    handler: (info) => {
      seen.push(info.addr);
      const page = info.addr - (info.addr % PG);
      p.mmap(page, PG, RW, MAP.MAP_FIXED | MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    },
  });
  return seen;
}
