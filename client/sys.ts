/**
 * The kernel as a client sees it: the syscalls and user-memory accesses of its simulated
 * process. One interface, two implementations:
 *
 *   - LocalSys: the client runs on the kernel's thread (the lab's deterministic runs,
 *     tests); every call goes straight to the Process, so every syscall and every page of
 *     a store is a preemption point of the seeded scheduler.
 *   - RemoteProcess (shm/remote-process.ts): the client runs in a worker thread; syscalls
 *     cross a synchronous channel to the kernel's thread, stores go straight into the
 *     frames SharedArrayBuffer through the process's page tables.
 *
 * A hostile client needs any syscall, so `syscall(name, ...args)` reaches every Process
 * method by name; the typed methods are the ones behaviours use every day.
 */

import type { ProcessKilled } from "../shm/errors.ts";
import type { Kernel } from "../shm/kernel.ts";
import { type Process, USER_SYSCALLS } from "../shm/process.ts";

export interface ClientSys {
  readonly pid: number;
  readonly alive: boolean;
  /** Why the process died, when it was killed. */
  readonly killedBy: ProcessKilled | undefined;
  memfdCreate(name: string, flags?: number): number;
  ftruncate(fd: number, length: number): void;
  fallocate(fd: number, mode: number, offset: number, length: number): void;
  addSeals(fd: number, seals: number): void;
  getSeals(fd: number): number;
  fstatSize(fd: number): number;
  close(fd: number): void;
  dup(fd: number): number;
  pipe(): [number, number];
  pwrite(fd: number, data: Uint8Array, offset: number): number;
  pread(fd: number, length: number, offset: number): Uint8Array;
  mmap(
    addr: number,
    length: number,
    prot: number,
    flags: number,
    fd?: number,
    offset?: number,
  ): number;
  munmap(addr: number, length: number): void;
  mremap(
    addr: number,
    oldLength: number,
    newLength: number,
    flags: number,
    newAddr?: number,
  ): number;
  madvise(addr: number, length: number, advice: number): void;
  /** A user store (CPU write): faults, SIGBUS and all. */
  store(addr: number, src: Uint8Array): void;
  load(addr: number, length: number): Uint8Array;
  fork(childName: string): ClientSys;
  exit(): void;
  /** SCM_RIGHTS, sending half: a handle the peer's recvmsg turns into its own fd. */
  exportFd(fd: number): number;
  importFd(handle: number): number;
  /** Any Process method by name, with any arguments: the raw escape hatch. */
  syscall(name: string, ...args: unknown[]): unknown;
}

/** Process methods a client may call through `syscall` (everything user space can do). */
export const PROCESS_SYSCALLS: ReadonlySet<string> = USER_SYSCALLS;

/** A client on the kernel's own thread: calls go straight to its Process. */
export class LocalSys implements ClientSys {
  constructor(
    readonly kernel: Kernel,
    readonly proc: Process,
  ) {}

  get pid(): number {
    return this.proc.pid;
  }
  get alive(): boolean {
    return this.proc.alive;
  }
  get killedBy(): ProcessKilled | undefined {
    return this.proc.killedBy;
  }
  memfdCreate(name: string, flags = 0): number {
    return this.proc.memfdCreate(name, flags);
  }
  ftruncate(fd: number, length: number): void {
    this.proc.ftruncate(fd, length);
  }
  fallocate(fd: number, mode: number, offset: number, length: number): void {
    this.proc.fallocate(fd, mode, offset, length);
  }
  addSeals(fd: number, seals: number): void {
    this.proc.addSeals(fd, seals);
  }
  getSeals(fd: number): number {
    return this.proc.getSeals(fd);
  }
  fstatSize(fd: number): number {
    return this.proc.fstatSize(fd);
  }
  close(fd: number): void {
    this.proc.close(fd);
  }
  dup(fd: number): number {
    return this.proc.dup(fd);
  }
  pipe(): [number, number] {
    return this.proc.pipe();
  }
  pwrite(fd: number, data: Uint8Array, offset: number): number {
    return this.proc.pwrite(fd, data, offset);
  }
  pread(fd: number, length: number, offset: number): Uint8Array {
    return this.proc.pread(fd, length, offset);
  }
  mmap(addr: number, length: number, prot: number, flags: number, fd = -1, offset = 0): number {
    return this.proc.mmap(addr, length, prot, flags, fd, offset);
  }
  munmap(addr: number, length: number): void {
    this.proc.munmap(addr, length);
  }
  mremap(addr: number, oldLength: number, newLength: number, flags: number, newAddr = 0): number {
    return this.proc.mremap(addr, oldLength, newLength, flags, newAddr);
  }
  madvise(addr: number, length: number, advice: number): void {
    this.proc.madvise(addr, length, advice);
  }
  store(addr: number, src: Uint8Array): void {
    this.proc.store(addr, src);
  }
  load(addr: number, length: number): Uint8Array {
    return this.proc.load(addr, length);
  }
  fork(childName: string): ClientSys {
    return new LocalSys(this.kernel, this.proc.fork(childName));
  }
  exit(): void {
    this.proc.exit();
  }
  exportFd(fd: number): number {
    return this.kernel.exportFd(this.proc, fd);
  }
  importFd(handle: number): number {
    return this.kernel.importFd(this.proc, handle);
  }
  syscall(name: string, ...args: unknown[]): unknown {
    if (!PROCESS_SYSCALLS.has(name)) throw new Error(`no syscall ${name}`);
    const fn = (this.proc as unknown as Record<string, (...a: unknown[]) => unknown>)[name];
    return fn.apply(this.proc, args);
  }
}
