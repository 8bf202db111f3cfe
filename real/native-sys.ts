/**
 * ClientSys backed by a real process (native/wl-client.c): the same behaviour generators
 * that run against the simulated kernel make real syscalls here — memfd_create, ftruncate,
 * fallocate, seals, mmap and CPU stores into the mapping, fork — so what a compositor gets
 * is what a real hostile client would give it.
 *
 * Failures map to the simulated kernel's types so the runtime treats them the same:
 * a -errno reply is ErrnoError (the errno's name), a process dying of SIGBUS/SIGSEGV is
 * ProcessKilled with the real si_addr and si_code. fd numbers are the helper's own, and
 * exportFd/importFd are the identity: the helper passes them to sendmsg(SCM_RIGHTS) itself.
 */
import os from "node:os";
import type { ClientSys } from "../client/sys.ts";
import {
  errnoName,
  OP,
  type Reply,
  SIGNAL_STATUS,
  signalName,
  WlClientError,
  type WlClientProcess,
} from "../native/wl-client.ts";
import {
  type DeathSignal,
  ErrnoError,
  type FatalSignal,
  ProcessKilled,
  type SigInfo,
} from "../shm/errors.ts";
import type { Errno, SiCode } from "../shm/uapi.ts";

type Call = (op: number, args: readonly (number | bigint)[], data?: Uint8Array) => Reply;

const SI_CODES: Record<string, Record<number, SiCode>> = {
  SIGBUS: { 2: "BUS_ADRERR" },
  SIGSEGV: { 1: "SEGV_MAPERR", 2: "SEGV_ACCERR" },
};

export class NativeSys implements ClientSys {
  killedBy: ProcessKilled | undefined;
  exited = false;
  private readonly children: NativeSys[] = [];

  private constructor(
    readonly pid: number,
    private readonly via: Call,
    /** The helper (for the parent) whose death also ends this process. */
    private readonly proc: WlClientProcess,
  ) {}

  /** The process of a helper (the client's main process). */
  static of(proc: WlClientProcess): NativeSys {
    return new NativeSys(proc.pid, (op, args, data) => proc.call(op, args, data), proc);
  }

  get alive(): boolean {
    if (this.killedBy || this.exited) return false;
    return this.pid !== this.proc.pid || this.proc.exit === null;
  }

  private call(name: string, op: number, args: readonly (number | bigint)[], data?: Uint8Array) {
    if (this.killedBy) throw this.killedBy;
    if (this.exited) throw new ErrnoError("ESRCH", name, "process exited");
    let r: Reply;
    try {
      r = this.via(op, args, data);
    } catch (e) {
      if (!(e instanceof WlClientError)) throw e;
      throw this.gone(name);
    }
    if (r.status <= SIGNAL_STATUS) {
      const sig = signalName(-r.status + SIGNAL_STATUS) as FatalSignal;
      const info: SigInfo | undefined =
        sig === "SIGBUS" || sig === "SIGSEGV"
          ? { signo: sig, code: SI_CODES[sig][r.vals[1]] ?? "BUS_ADRERR", addr: r.vals[0] }
          : undefined;
      throw this.die(sig, info, "unhandled");
    }
    // ECHILD from the parent helper: this forked child is gone (vals[0]: its signal, or 0)
    if (r.status === -os.constants.errno.ECHILD && this.pid !== this.proc.pid) {
      const sig = r.vals[0] ? (signalName(r.vals[0]) as FatalSignal) : undefined;
      if (sig) throw this.die(sig, undefined, "killed");
      this.exited = true;
      throw new ErrnoError("ESRCH", name, "process exited");
    }
    if (r.status < 0) throw new ErrnoError(errnoName(-r.status) as Errno, name);
    return r;
  }

  /**
   * The helper's channel is closed or cut mid-command: its own exit status says how it
   * ended where Node has reaped it already; until then the signal is "unknown", never a
   * guess. A helper that exited with a code (no signal) is an exited process.
   */
  private gone(name: string): Error {
    // a forked child's own status is not the helper's: only the helper's is known here
    const exit = this.pid === this.proc.pid ? this.proc.exit : null;
    if (exit?.signal) return this.die(exit.signal as DeathSignal, undefined, "killed");
    if (exit) {
      this.exited = true;
      return new ErrnoError("ESRCH", name, `process exited with code ${exit.code}`);
    }
    return this.die("unknown", undefined, "killed");
  }

  private die(sig: DeathSignal, info: SigInfo | undefined, reason: ProcessKilled["reason"]) {
    this.killedBy = new ProcessKilled(this.pid, sig, info, reason);
    return this.killedBy;
  }

  private value(name: string, op: number, args: readonly (number | bigint)[], data?: Uint8Array) {
    return this.call(name, op, args, data).vals[0] ?? 0;
  }

  memfdCreate(name: string, flags = 0): number {
    return this.value("memfd_create", OP.MEMFD, [flags], new TextEncoder().encode(name));
  }
  ftruncate(fd: number, length: number): void {
    this.call("ftruncate", OP.FTRUNCATE, [fd, length]);
  }
  fallocate(fd: number, mode: number, offset: number, length: number): void {
    this.call("fallocate", OP.FALLOCATE, [fd, mode, offset, length]);
  }
  addSeals(fd: number, seals: number): void {
    this.call("fcntl(F_ADD_SEALS)", OP.ADD_SEALS, [fd, seals]);
  }
  getSeals(fd: number): number {
    return this.value("fcntl(F_GET_SEALS)", OP.GET_SEALS, [fd]);
  }
  fstatSize(fd: number): number {
    return this.value("fstat", OP.FSTAT_SIZE, [fd]);
  }
  close(fd: number): void {
    this.call("close", OP.CLOSE, [fd]);
  }
  dup(fd: number): number {
    return this.value("dup", OP.DUP, [fd]);
  }
  pipe(): [number, number] {
    const r = this.call("pipe", OP.PIPE, []);
    return [r.vals[0], r.vals[1]];
  }
  pwrite(fd: number, data: Uint8Array, offset: number): number {
    return this.value("pwrite", OP.PWRITE, [fd, offset], data);
  }
  pread(fd: number, length: number, offset: number): Uint8Array {
    return this.call("pread", OP.PREAD, [fd, length, offset]).data;
  }
  mmap(addr: number, length: number, prot: number, flags: number, fd = -1, offset = 0): number {
    return this.value("mmap", OP.MMAP, [addr, length, prot, flags, fd, offset]);
  }
  munmap(addr: number, length: number): void {
    this.call("munmap", OP.MUNMAP, [addr, length]);
  }
  mremap(addr: number, oldLength: number, newLength: number, flags: number, newAddr = 0): number {
    return this.value("mremap", OP.MREMAP, [addr, oldLength, newLength, flags, newAddr]);
  }
  madvise(addr: number, length: number, advice: number): void {
    this.call("madvise", OP.MADVISE, [addr, length, advice]);
  }
  store(addr: number, src: Uint8Array): void {
    this.call("store", OP.STORE, [addr], src);
  }
  load(addr: number, length: number): Uint8Array {
    return this.call("load", OP.LOAD, [addr, length]).data;
  }
  fork(_childName: string): ClientSys {
    if (this.pid !== this.proc.pid) throw new ErrnoError("EAGAIN", "fork", "nested fork");
    const pid = this.value("fork", OP.FORK, []);
    const child = new NativeSys(
      pid,
      (op, args, data) => this.proc.callChild(pid, op, args, data),
      this.proc,
    );
    this.children.push(child);
    return child;
  }
  exit(): void {
    if (this.exited || this.killedBy) return;
    this.call("exit", OP.EXIT, []);
    this.exited = true;
  }
  exportFd(fd: number): number {
    return fd;
  }
  importFd(handle: number): number {
    return handle;
  }
  syscall(name: string, ...args: unknown[]): unknown {
    const fn = (this as unknown as Record<string, unknown>)[name];
    if (typeof fn !== "function" || name === "syscall" || name.startsWith("_"))
      throw new ErrnoError("ENOSYS", name, "not a syscall of a real client");
    return (fn as (...a: unknown[]) => unknown).apply(this, args);
  }
}
