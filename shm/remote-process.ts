/**
 * A simulated process seen from a worker thread (the kernel's end is remote-kernel.ts).
 * Syscalls are synchronous calls over the channel: post, Atomics.wait, receiveMessageOnPort.
 * User stores go straight into physical memory (the frames SharedArrayBuffer) through the
 * process's page tables, faulting through the channel only when an entry is missing or
 * read-only. Errors come back as the kernel's own types: ErrnoError with the errno name,
 * ProcessKilled when the process died (of its own SIGBUS, say).
 */
import type { MessagePort } from "node:worker_threads";
import { receiveMessageOnPort } from "node:worker_threads";
import { ErrnoError, type FatalSignal, ProcessKilled, type SigInfo } from "./errors.ts";
import {
  MM_CHANGING,
  type RemoteReply,
  type RemoteRequest,
  type RemoteSetup,
  type VmaInfo,
} from "./remote-kernel.ts";
import type { Errno, SiCode } from "./uapi.ts";
import { PAGE_SIZE } from "./uapi.ts";
import { PTE_WRITE, PTES_PER_CHUNK, pteFrame } from "./vma.ts";

/** How long a syscall may wait for the kernel's thread before the channel is declared dead. */
const CHANNEL_TIMEOUT_MS = 60_000;

/** The shared state of one worker's channel (a process and the children it forks share it). */
class Channel {
  readonly port: MessagePort;
  readonly ctl: Int32Array;
  readonly mem: Uint8Array;
  readonly epochs: Int32Array;
  readonly slot: number;
  /** User bytes stored directly since the last request (for the kernel's counters). */
  written = 0;
  calls = 0;
  directPages = 0;
  faultPages = 0;
  dead = false;

  constructor(s: RemoteSetup) {
    this.port = s.port;
    this.ctl = new Int32Array(s.ctl);
    // A length-tracking view: it follows the growable buffer as the kernel adds frames.
    this.mem = new Uint8Array(s.memory);
    this.epochs = s.epochs;
    this.slot = s.slot;
  }

  rpc(req: RemoteRequest): RemoteReply {
    if (this.dead) throw new Error("kernel channel closed");
    this.calls++;
    req.written = this.written;
    this.written = 0;
    Atomics.store(this.ctl, 0, 0);
    this.port.postMessage(req);
    const deadline = Date.now() + CHANNEL_TIMEOUT_MS;
    for (;;) {
      const r = Atomics.wait(this.ctl, 0, 0, 1000);
      if (r !== "timed-out") break;
      if (Date.now() > deadline) {
        this.dead = true;
        throw new Error("kernel channel: no answer from the kernel's thread");
      }
    }
    const got = receiveMessageOnPort(this.port);
    if (!got) {
      this.dead = true;
      throw new Error("kernel channel closed");
    }
    return got.message as RemoteReply;
  }
}

export class RemoteProcess {
  readonly pid: number;
  private readonly ch: Channel;
  private state: "running" | "exited" | "killed" = "running";
  killedBy: ProcessKilled | undefined;
  /** Cached mappings (page tables shared with the kernel), dropped on any mm change. */
  private vmas: VmaInfo[] = [];

  constructor(setup: RemoteSetup | Channel, pid?: number) {
    this.ch = setup instanceof Channel ? setup : new Channel(setup);
    this.pid = pid ?? (setup as RemoteSetup).pid;
  }

  get alive(): boolean {
    return this.state === "running";
  }

  /** Channel figures: syscalls made, pages stored directly, pages that faulted. */
  get channelStats(): { calls: number; directPages: number; faultPages: number } {
    return {
      calls: this.ch.calls,
      directPages: this.ch.directPages,
      faultPages: this.ch.faultPages,
    };
  }

  private unwrap(r: RemoteReply): unknown {
    if ("ok" in r) return r.ok;
    if ("errno" in r)
      throw new ErrnoError(r.errno as Errno, r.syscall, /\((.*)\)$/.exec(r.message)?.[1]);
    if ("killed" in r) {
      const k = r.killed;
      const info: SigInfo | undefined = k.info
        ? {
            signo: k.info.signo as SigInfo["signo"],
            code: k.info.code as SiCode,
            addr: k.info.addr,
          }
        : undefined;
      const e = new ProcessKilled(
        k.pid,
        k.signal as FatalSignal,
        info,
        k.reason as ProcessKilled["reason"],
      );
      if (k.pid === this.pid) {
        this.state = "killed";
        this.killedBy = e;
        this.vmas = [];
      }
      throw e;
    }
    throw new Error(`kernel fault: ${r.fault}`);
  }

  private req(r: RemoteRequest): unknown {
    return this.unwrap(this.ch.rpc(r));
  }

  /** Any Process method by name (REMOTE_SYSCALLS), with its arguments. */
  syscall(name: string, ...args: unknown[]): unknown {
    if (MM_CHANGING.has(name)) this.vmas = [];
    if (name === "store") {
      this.store(args[0] as number, args[1] as Uint8Array);
      return undefined;
    }
    return this.req({ op: "call", pid: this.pid, name, args, written: 0 });
  }

  memfdCreate(name: string, flags = 0): number {
    return this.syscall("memfdCreate", name, flags) as number;
  }
  ftruncate(fd: number, length: number): void {
    this.syscall("ftruncate", fd, length);
  }
  fallocate(fd: number, mode: number, offset: number, length: number): void {
    this.syscall("fallocate", fd, mode, offset, length);
  }
  addSeals(fd: number, seals: number): void {
    this.syscall("addSeals", fd, seals);
  }
  getSeals(fd: number): number {
    return this.syscall("getSeals", fd) as number;
  }
  fstatSize(fd: number): number {
    return this.syscall("fstatSize", fd) as number;
  }
  close(fd: number): void {
    this.syscall("close", fd);
  }
  dup(fd: number): number {
    return this.syscall("dup", fd) as number;
  }
  pipe(): [number, number] {
    return this.syscall("pipe") as [number, number];
  }
  pwrite(fd: number, data: Uint8Array, offset: number): number {
    return this.syscall("pwrite", fd, data, offset) as number;
  }
  pread(fd: number, length: number, offset: number): Uint8Array {
    return this.syscall("pread", fd, length, offset) as Uint8Array;
  }
  mmap(addr: number, length: number, prot: number, flags: number, fd = -1, offset = 0): number {
    return this.syscall("mmap", addr, length, prot, flags, fd, offset) as number;
  }
  munmap(addr: number, length: number): void {
    this.syscall("munmap", addr, length);
  }
  mremap(addr: number, oldLength: number, newLength: number, flags: number, newAddr = 0): number {
    return this.syscall("mremap", addr, oldLength, newLength, flags, newAddr) as number;
  }
  madvise(addr: number, length: number, advice: number): void {
    this.syscall("madvise", addr, length, advice);
  }
  load(addr: number, length: number): Uint8Array {
    return this.syscall("load", addr, length) as Uint8Array;
  }
  exportFd(fd: number): number {
    return this.req({ op: "exportFd", pid: this.pid, fd, written: 0 }) as number;
  }
  importFd(handle: number): number {
    return this.req({ op: "importFd", pid: this.pid, handle, written: 0 }) as number;
  }
  fork(childName: string): RemoteProcess {
    const pid = this.req({ op: "fork", pid: this.pid, name: childName, written: 0 }) as number;
    // fork write-protects the parent's private pages: its cached entries may be stale.
    this.vmas = [];
    return new RemoteProcess(this.ch, pid);
  }
  exit(): void {
    this.req({ op: "exit", pid: this.pid, written: 0 });
    this.state = "exited";
    this.vmas = [];
  }

  private findVma(addr: number): VmaInfo | undefined {
    for (const v of this.vmas) if (addr >= v.start && addr < v.end) return v;
    return undefined;
  }

  private remember(v: VmaInfo | null | undefined): void {
    if (!v) return;
    this.vmas = this.vmas.filter((x) => x.end <= v.start || x.start >= v.end);
    this.vmas.push(v);
  }

  /**
   * A user store: page by page, straight into physical memory where the page table has a
   * writable entry; a page without one is a fault, run by the kernel's thread.
   */
  store(addr: number, src: Uint8Array): void {
    if (this.state !== "running") {
      // A dead process makes no accesses (the kernel answers with how it died).
      this.req({ op: "vma", pid: this.pid, addr, written: 0 });
      throw this.killedBy ?? new ProcessKilled(this.pid, "SIGKILL", undefined, "killed");
    }
    const ch = this.ch;
    const epochs = ch.epochs;
    // Publish the epoch this access starts at (frames.ts): frames freed from now on are not
    // reused until the store ends.
    Atomics.store(epochs, ch.slot, Atomics.load(epochs, 0));
    let done = 0;
    try {
      const len = src.length;
      while (done < len) {
        const a = addr + done;
        const inPage = a % PAGE_SIZE;
        const n = Math.min(PAGE_SIZE - inPage, len - done);
        const v = this.findVma(a);
        let pte = 0;
        if (v) {
          const i = Math.floor((a - v.start) / PAGE_SIZE);
          const chunk = v.chunks[Math.floor(i / PTES_PER_CHUNK)];
          if (chunk) pte = Atomics.load(chunk, i % PTES_PER_CHUNK);
        }
        if (pte !== 0 && (pte & PTE_WRITE) !== 0) {
          ch.mem.set(src.subarray(done, done + n), pteFrame(pte) * PAGE_SIZE + inPage);
          ch.directPages++;
        } else {
          // The fault path: the kernel's thread stores this page as the CPU would.
          ch.faultPages++;
          const r = ch.rpc({
            op: "store",
            pid: this.pid,
            addr: a,
            data: src.slice(done, done + n),
            written: 0,
          });
          this.unwrap(r);
          if ("ok" in r) this.remember(r.vma);
          done += n;
          continue;
        }
        done += n;
        ch.written += n;
      }
    } finally {
      Atomics.store(epochs, ch.slot, 0);
    }
  }

  /** Tells the kernel side the worker is done with the channel (the port is closed). */
  detach(): void {
    this.ch.dead = true;
    this.ch.port.close();
  }
}
