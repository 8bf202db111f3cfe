/**
 * Pieces the policies share: libwayland's way of mapping a pool (mmap MAP_SHARED, close the
 * fd, grow with mremap(MREMAP_MAYMOVE)), the "map anonymous zero memory over the whole
 * mapping" step every SIGBUS handler performs, and the two ways handlers give up.
 * Everything here is a syscall or a user access of the compositor process.
 */
import { SHM_ERROR } from "../../protocol/schema.ts";
import { ErrnoError, type SigInfo } from "../../shm/errors.ts";
import type { Process } from "../../shm/process.ts";
import type { SigAction } from "../../shm/signal.ts";
import { MAP, MREMAP, PROT } from "../../shm/uapi.ts";
import { type Access, type BufferView, type ShmPool, ShmRefusal } from "../policy.ts";

export const RW = PROT.PROT_READ | PROT.PROT_WRITE;

/** strerror(3) for the errnos mmap can return. */
const STRERROR: Record<string, string> = {
  EACCES: "Permission denied",
  EBADF: "Bad file descriptor",
  EINVAL: "Invalid argument",
  ENODEV: "No such device",
  ENOMEM: "Cannot allocate memory",
  EPERM: "Operation not permitted",
  EOVERFLOW: "Value too large for defined data type",
};
export function strerror(e: unknown): string {
  const code = e instanceof ErrnoError ? e.code : "EIO";
  return STRERROR[code] ?? code;
}

/** Runs a syscall; an errno becomes `onErrno(e)` (a refusal), anything else propagates. */
export function orRefuse<T>(fn: () => T, onErrno: (e: ErrnoError) => ShmRefusal): T {
  try {
    return fn();
  } catch (e) {
    // The calls it wraps (mmap, mremap of a live process) throw nothing but an errno.
    // Stryker disable next-line ConditionalExpression: equivalent (above)
    if (e instanceof ErrnoError) throw onErrno(e);
    throw e;
  }
}

/**
 * wayland-shm.c shm_create_pool: `mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)`,
 * "failed mmap fd %d: %s" on failure, then (MREMAP_MAYMOVE available) `close(fd)`.
 */
export function libwaylandMap(
  proc: Process,
  pool: ShmPool,
  opts: { prot?: number; flags?: number; keepFd?: boolean } = {},
): void {
  const fd = pool.fd;
  pool.addr = orRefuse(
    () => proc.mmap(0, pool.size, opts.prot ?? RW, opts.flags ?? MAP.MAP_SHARED, fd, 0),
    (e) => new ShmRefusal(SHM_ERROR.invalid_fd, `failed mmap fd ${fd}: ${strerror(e)}`),
  );
  if (!opts.keepFd) {
    proc.close(fd);
    pool.fd = -1;
  }
}

/** wayland-shm.c shm_pool_finish_resize: `mremap(pool->data, pool->size, pool->new_size, MREMAP_MAYMOVE)`. */
export function libwaylandGrow(proc: Process, pool: ShmPool, size: number): void {
  // mremap(2) to the same size returns the same address and changes nothing.
  // Stryker disable next-line ConditionalExpression: equivalent (above)
  if (size === pool.size) return;
  pool.addr = orRefuse(
    () => proc.mremap(pool.addr, pool.size, size, MREMAP.MREMAP_MAYMOVE),
    () => new ShmRefusal(SHM_ERROR.invalid_fd, "failed mremap"),
  );
  pool.size = size;
}

// munmap(2) of a range with nothing mapped succeeds, and no caller reaches these for a dead
// process (pools.ts unmaps only while the compositor lives); the only caller of closeQuiet
// (Hyprland's unmapPool) holds a valid fd, >= 3 (0-2 are stdio). So the guards below are
// kept for safety and are equivalent where they are called.
export function unmapQuiet(proc: Process, addr: number, size: number): void {
  // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent (above)
  if (addr !== 0 && proc.alive) proc.munmap(addr, size);
}

export function closeQuiet(proc: Process, pool: ShmPool): void {
  // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: equivalent (above)
  if (pool.fd >= 0 && proc.alive) proc.close(pool.fd);
  pool.fd = -1;
}

/** The access every mapping policy makes: the buffer starts at the mapping plus its offset. */
export function mappedAccess(buffer: BufferView, state?: unknown): Access {
  return { buffer, base: buffer.pool.addr + buffer.offset, state };
}

/** A plain user read of the buffer's bytes (the CPU loads a compositor's memcpy makes). */
export function loadSpan(proc: Process, access: Access, dst: Uint8Array): void {
  proc.loadInto(access.base, dst);
}

/**
 * One range of the buffer's span (a damaged rectangle's row) into the same bytes of dst:
 * the loads glTexSubImage2D makes for one row of a damaged rectangle.
 */
export function loadRange(
  proc: Process,
  access: Access,
  dst: Uint8Array,
  offset: number,
  length: number,
): void {
  proc.loadInto(access.base + offset, dst.subarray(offset, offset + length));
}

/**
 * "Replace the mapping with a new one which won't cause SIGBUS": every handler's
 * `mmap(addr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0)`.
 * Returns false where the real code sees MAP_FAILED.
 */
export function zeroOver(proc: Process, addr: number, size: number, prot = RW): boolean {
  try {
    proc.mmap(addr, size, prot, MAP.MAP_PRIVATE | MAP.MAP_FIXED | MAP.MAP_ANONYMOUS);
    return true;
  } catch (e) {
    if (e instanceof ErrnoError) return false;
    throw e;
  }
}

/**
 * libwayland's and Smithay's reraise_sigbus: `sigaction(SIGBUS, &old, NULL); raise(SIGBUS);`.
 * Modelled as restoring the old action and returning: the access retries, faults again and
 * the signal is delivered under the old action — the default one kills the process by
 * SIGBUS, exactly what raise() would have done.
 */
export function reraiseSigbus(proc: Process, old: SigAction): void {
  proc.sigaction("SIGBUS", old);
}

/**
 * wlroots' and KWin's reraise: the previous handler is *called* (`prev.sa_sigaction(sig,
 * info, ctx)` or `prev.sa_handler(sig)`). A previous SIG_DFL (0) or SIG_IGN (1) is not a
 * function: calling it jumps to address 0 or 1 and the process dies of SIGSEGV there
 * (derived from the quoted code; no compositor source says so).
 */
export function callPrevious(proc: Process, prev: SigAction, info: SigInfo): void {
  if (typeof prev.handler === "function") {
    prev.handler(info, proc);
    return;
  }
  const addr = prev.handler === "ignore" ? 1 : 0;
  proc.kill("SIGSEGV", { signo: "SIGSEGV", code: "SEGV_MAPERR", addr }, "unhandled");
}
