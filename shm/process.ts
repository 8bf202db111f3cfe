/**
 * A simulated process: fd table, address space, signal dispositions, counters, and the
 * surface user-space code uses — syscalls (methods named for them) and user memory access
 * (load/store, page by page, faulting like a CPU). Policies and clients reach memory only
 * through this class, as a real compositor reaches Linux only through syscalls and loads.
 *
 * File and memory syscalls live in syscalls/files.ts and syscalls/memory.ts; this file
 * holds the process itself, signal delivery and user access.
 */
import { AddressSpace } from "./address-space.ts";
import { newProcessCounters, type ProcessCounters } from "./counters.ts";
import { Deadlock, ErrnoError, type FatalSignal, ProcessKilled, type SigInfo } from "./errors.ts";
import { pteAllows, resolveFault } from "./fault.ts";
import { FdTable } from "./fd-table.ts";
import type { Kernel } from "./kernel.ts";
import { type SigAction, SignalState } from "./signal.ts";
import * as files from "./syscalls/files.ts";
import * as memory from "./syscalls/memory.ts";
import * as uffd from "./syscalls/uffd.ts";
import { PAGE_SIZE, PROT, pageOffset } from "./uapi.ts";
import type { UffdEvent } from "./userfaultfd.ts";
import { pteFrame, type Vma } from "./vma.ts";

/**
 * The Process methods user space may call by name (a client's raw syscall escape hatch, a
 * worker's channel): everything a program can do, nothing of the kernel's inside.
 */
export const USER_SYSCALLS: ReadonlySet<string> = new Set([
  "memfdCreate",
  "pipe",
  "dup",
  "close",
  "ftruncate",
  "fallocate",
  "fstatSize",
  "fstatBlocks",
  "pread",
  "pwrite",
  "read",
  "write",
  "addSeals",
  "getSeals",
  "setZeroBeyondEof",
  "mmap",
  "munmap",
  "mremap",
  "mprotect",
  "madvise",
  "userfaultfd",
  "uffdioApi",
  "uffdioRegister",
  "uffdRead",
  "uffdPending",
  "uffdioZeropage",
  "uffdioCopy",
  "load",
  "store",
  "fill",
  "exit",
]);

/** Copies this short are a byte loop: cheaper than making a subarray to copy from. */
const SMALL_COPY = 16;
const PROT_ANY = PROT.PROT_READ | PROT.PROT_WRITE | PROT.PROT_EXEC;

/** A handler that returns without fixing its fault makes Linux spin forever; we stop here. */
const LIVELOCK_RETRIES = 64;

export type ProcessState = "running" | "exited" | "killed";

export class Process {
  readonly fds = new FdTable();
  readonly mm = new AddressSpace();
  signals = new SignalState();
  readonly counters: ProcessCounters = newProcessCounters();
  state: ProcessState = "running";
  killedBy: ProcessKilled | undefined;
  /** See physical(). */
  private memView: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  /** memView.length, kept as a number: a view of a growable buffer has a slow length. */
  private memLength = 0;
  private memOf: SharedArrayBuffer | undefined;

  constructor(
    readonly kernel: Kernel,
    readonly pid: number,
    readonly name: string,
  ) {}

  get alive(): boolean {
    return this.state === "running";
  }

  /** Syscall entry: a dead process makes no calls; every entry is a preemption point. */
  enter(name: string): void {
    if (this.state !== "running") {
      throw this.killedBy ?? new ProcessKilled(this.pid, "SIGKILL", undefined, "killed");
    }
    this.counters.syscalls[name] = (this.counters.syscalls[name] ?? 0) + 1;
    this.kernel.scheduler.point(this, name);
  }

  // ---- files -------------------------------------------------------------------------

  memfdCreate(name: string, flags = 0): number {
    return files.memfdCreate(this, name, flags);
  }
  pipe(): [number, number] {
    return files.pipe(this);
  }
  dup(fd: number): number {
    return files.dup(this, fd);
  }
  close(fd: number): void {
    files.close(this, fd);
  }
  /** Passes an fd to another process (SCM_RIGHTS); returns the receiver's fd number. */
  sendFd(fd: number, to: Process): number {
    this.enter("sendmsg");
    return to.receiveFd(this.kernel.exportFd(this, fd));
  }
  receiveFd(handle: number): number {
    this.enter("recvmsg");
    return this.kernel.importFd(this, handle);
  }
  ftruncate(fd: number, length: number): void {
    files.ftruncate(this, fd, length);
  }
  fallocate(fd: number, mode: number, offset: number, length: number): void {
    files.fallocate(this, fd, mode, offset, length);
  }
  fstatSize(fd: number): number {
    return files.fstatSize(this, fd);
  }
  /** fstat's st_blocks (512-byte units allocated). */
  fstatBlocks(fd: number): number {
    return files.fstatBlocks(this, fd);
  }
  pread(fd: number, length: number, offset: number): Uint8Array {
    return files.pread(this, fd, length, offset);
  }
  /** pread(2) into `dst`; returns the count (short at EOF). */
  preadInto(fd: number, dst: Uint8Array, offset: number): number {
    return files.preadInto(this, fd, dst, offset);
  }
  pwrite(fd: number, data: Uint8Array, offset: number): number {
    return files.pwrite(this, fd, data, offset);
  }
  /** read(2) into user memory at addr: a kernel access (short count or EFAULT, no signal). */
  read(fd: number, addr: number, length: number): number {
    return files.readToUser(this, fd, addr, length);
  }
  /** write(2) from user memory at addr: a kernel access (short count or EFAULT, no signal). */
  write(fd: number, addr: number, length: number): number {
    return files.writeFromUser(this, fd, addr, length);
  }
  addSeals(fd: number, seals: number): void {
    files.addSeals(this, fd, seals);
  }
  getSeals(fd: number): number {
    return files.getSeals(this, fd);
  }
  /** Proposal (Shutemov): mark the inode so read faults beyond EOF map the zero page. */
  setZeroBeyondEof(fd: number): void {
    files.setZeroBeyondEof(this, fd);
  }

  // ---- memory ------------------------------------------------------------------------

  mmap(addr: number, length: number, prot: number, flags: number, fd = -1, offset = 0): number {
    return memory.mmap(this, addr, length, prot, flags, fd, offset);
  }
  munmap(addr: number, length: number): void {
    memory.munmap(this, addr, length);
  }
  mremap(addr: number, oldLength: number, newLength: number, flags: number, newAddr = 0): number {
    return memory.mremap(this, addr, oldLength, newLength, flags, newAddr);
  }
  mprotect(addr: number, length: number, prot: number): void {
    memory.mprotect(this, addr, length, prot);
  }
  madvise(addr: number, length: number, advice: number): void {
    memory.madvise(this, addr, length, advice);
  }

  // ---- userfaultfd -------------------------------------------------------------------

  userfaultfd(flags = 0): number {
    return uffd.userfaultfd(this, flags);
  }
  uffdioApi(fd: number, features = 0): void {
    uffd.api(this, fd, features);
  }
  uffdioRegister(fd: number, addr: number, length: number, mode: number): void {
    uffd.register(this, fd, addr, length, mode);
  }
  /** Reads one fault event; EAGAIN when none is pending (the model never blocks a reader). */
  uffdRead(fd: number): UffdEvent {
    return uffd.readEvent(this, fd);
  }
  /** How many fault events wait to be read (what poll(2) would report). */
  uffdPending(fd: number): number {
    return uffd.pending(this, fd);
  }
  uffdioZeropage(fd: number, addr: number, length: number): number {
    return uffd.zeropage(this, fd, addr, length);
  }
  uffdioCopy(fd: number, addr: number, data: Uint8Array): number {
    return uffd.copy(this, fd, addr, data);
  }

  // ---- signals and lifetime ----------------------------------------------------------

  sigaction(sig: "SIGBUS" | "SIGSEGV", action: SigAction): SigAction {
    this.enter("rt_sigaction");
    const old = this.signals.action(sig);
    this.signals.actions.set(sig, action);
    return old;
  }

  fork(childName: string): Process {
    this.enter("fork");
    return memory.fork(this, childName);
  }

  /** exit(2): every fd closed, every mapping removed. */
  exit(): void {
    this.enter("exit");
    this.teardown();
    this.state = "exited";
  }

  /** Kills the process with a fatal signal and unwinds its stack. */
  kill(signal: FatalSignal, info: SigInfo | undefined, reason: ProcessKilled["reason"]): never {
    const err = new ProcessKilled(this.pid, signal, info, reason);
    if (this.state === "running") {
      this.killedBy = err;
      this.teardown();
      this.state = "killed";
      this.kernel.emit(this.pid, "killed", { signal, reason, addr: info?.addr ?? -1 });
    }
    throw err;
  }

  private teardown(): void {
    for (const [fd] of this.fds.entries()) files.closeQuiet(this, fd);
    for (const v of [...this.mm.vmas]) memory.removeVma(this, v);
  }

  /**
   * Delivers a synchronous fault signal. Returns when a handler ran (the access retries);
   * throws ProcessKilled otherwise.
   */
  private raise(info: SigInfo): void {
    if (info.signo === "SIGBUS") this.counters.sigbus++;
    else this.counters.sigsegv++;
    if (this.kernel.events)
      this.kernel.emit(this.pid, info.signo, { code: info.code, addr: info.addr });
    const act = this.signals.action(info.signo);
    const blocked = this.signals.blocked.has(info.signo);
    if (typeof act.handler !== "function" || blocked) {
      this.kill(info.signo, info, blocked ? "blocked-signal" : "unhandled");
    }
    const handler = act.handler as (i: SigInfo, self: Process) => void;
    if (!act.nodefer) this.signals.blocked.add(info.signo);
    try {
      handler(info, this);
    } finally {
      // Also on siglongjmp (a throw out of the handler): sigsetjmp(env, 1) restores the mask.
      if (!act.nodefer) this.signals.blocked.delete(info.signo);
    }
  }

  /** Resolves a user-mode fault at addr or delivers its signal; returns when the access may retry. */
  private userFault(addr: number, write: boolean, attempt: number): void {
    if (attempt >= LIVELOCK_RETRIES) this.kill("SIGBUS", undefined, "livelock");
    const out = resolveFault(this.kernel, this, addr, write);
    switch (out.kind) {
      case "ok":
        return;
      case "oom":
        this.kill("SIGKILL", undefined, "oom");
        break;
      case "uffd":
        this.waitForUffd(out.vma, out.page, write);
        return;
      case "signal":
        this.raise(out.info);
        return;
    }
  }

  private waitForUffd(vma: Vma, page: number, write: boolean): void {
    const ctx = vma.uffd!;
    this.counters.uffdFaults++;
    ctx.report(page, write, this.pid);
    this.kernel.emit(this.pid, "uffd-fault", { addr: page, write });
    this.kernel.scheduler.block(
      this,
      () => !ctx.waiting.has(page) || ctx.released || vma.uffd !== ctx,
      "userfaultfd",
    );
  }

  /**
   * Physical memory as a fixed-length view covering at least [0, end): element access and
   * subarray on the frame table's length-tracking view of its growable SharedArrayBuffer are
   * several times slower in V8 11 (Node 20). Made again when a fault grew memory past it.
   */
  private physical(end: number): Uint8Array<ArrayBufferLike> {
    const frames = this.kernel.frames;
    // (A typed array's .buffer getter is slow on such a buffer: the buffer is kept aside.)
    if (end > this.memLength || this.memOf !== frames.memory) {
      this.memOf = frames.memory;
      this.memView = new Uint8Array(frames.memory, 0, frames.memory.byteLength);
      this.memLength = this.memView.length;
    }
    return this.memView;
  }

  /** The present entry for addr allowing the access, or 0. */
  private translate(addr: number, write: boolean): number {
    const v = this.mm.find(addr);
    if (v === undefined) return 0;
    // PROT_NONE leaves entries in place: the VMA's protection is what refuses the access.
    if (!(v.prot & PROT_ANY)) return 0;
    const pte = v.pte(v.index(addr));
    return pteAllows(pte, write) ? pte : 0;
  }

  /**
   * How many bytes from `addr` (a page start), at most `max`, are present, allow the access,
   * and continue physically from `frame` in the same VMA — one typed-array copy serves them
   * all. Only used where the scheduler said its points are no-ops for this process: then
   * nothing can run between two pages to change what the later one translates to.
   */
  private contiguous(addr: number, max: number, frame: number, write: boolean): number {
    if (max <= 0) return 0;
    const v = this.mm.find(addr);
    if (v === undefined) return 0;
    const last = Math.min(v.index(addr) + Math.ceil(max * (1 / 4096)), v.pages);
    let i = v.index(addr);
    for (; i < last; i++, frame++) {
      const pte = v.pte(i);
      if (!pteAllows(pte, write) || pteFrame(pte) !== frame) break;
    }
    return Math.min(max, (i - v.index(addr)) * PAGE_SIZE);
  }

  /** The translation for a user access at addr, after as many faults as it takes. */
  private present(addr: number, write: boolean): number {
    let pte = this.translate(addr, write);
    for (let attempt = 0; pte === 0; attempt++) {
      this.userFault(addr, write, attempt);
      pte = this.translate(addr, write);
    }
    return pte;
  }

  /**
   * Copies [addr, addr+dst.length) of user memory into dst, as the CPU would: page by page,
   * faulting where there is no translation; each page is a preemption point. Where the
   * scheduler's points are no-ops for this process (Scheduler.quietFor), a physically
   * contiguous present run is copied at once: the same bytes, faults and counts.
   */
  loadInto(addr: number, dst: Uint8Array): void {
    const len = dst.length;
    // SMALL_COPY (16), PROT_ANY (7), pteFrame and PAGE_SIZE are written out in this path:
    // inlined into the caller's loop, each module-level binding was a load from its cell
    // with a hole check per access (perf annotate of the pool bench).
    if (len <= 16 && this.state === "running") {
      // A small access inside one present page (a pixel, a header, one touch per page) where
      // the scheduler is quiet: what loadRun does for it, in a body small enough for V8 to
      // inline into the caller's loop. The same checks in the same order (translate), so
      // the same outcome; anything else (a fault, a point, grown memory, an access more than
      // 2 GiB into its VMA or at a fractional address) takes loadRun.
      const v = this.mm.find(addr);
      if (v !== undefined && v.prot & 7 && this.kernel.scheduler.quietFor?.(this) === true) {
        // The offset into the VMA as an int32, when it is one: VMAs start on a page, so its
        // low 12 bits are the offset in the page and the rest the page index — one int32
        // conversion and integer masks where pageOffset and Vma.index took a float floor
        // each, whose int32 checks sat on every load's critical path (perf annotate of the
        // pool bench; ~3 % of a pool's life, docs/performance.md).
        const d = addr - v.start;
        const off = d | 0;
        const at = off & 4095;
        if (off === d && at + len <= 4096) {
          const pte = v.pte(off >>> 12);
          const base = ((pte >>> 3) - 1) * 4096 + at;
          const mem = this.memView;
          if (
            pte !== 0 &&
            base + len <= this.memLength &&
            this.memOf === this.kernel.frames.memory
          ) {
            for (let j = 0; j < len; j++) dst[j] = mem[base + j];
            this.counters.bytesUserRead += len;
            return;
          }
        }
      }
    }
    this.loadRun(addr, dst);
  }

  /** loadInto's general case: any length, page by page, faulting and preempted as it goes. */
  private loadRun(addr: number, dst: Uint8Array): void {
    if (this.state !== "running") this.enter("load");
    const sched = this.kernel.scheduler;
    const quiet = sched.quietFor?.(this) === true;
    let done = 0;
    const len = dst.length;
    while (done < len) {
      const a = addr + done;
      const inPage = pageOffset(a);
      let n = Math.min(PAGE_SIZE - inPage, len - done);
      if (!quiet) sched.point(this, "load");
      const pte = this.present(a, false);
      const frame = pteFrame(pte);
      if (quiet) n += this.contiguous(a + n, len - done - n, frame + 1, false);
      const base = frame * PAGE_SIZE + inPage;
      const mem = this.physical(base + n);
      if (n <= SMALL_COPY) for (let j = 0; j < n; j++) dst[done + j] = mem[base + j];
      else dst.set(mem.subarray(base, base + n), done);
      done += n;
    }
    this.counters.bytesUserRead += len;
  }

  load(addr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.loadInto(addr, out);
    return out;
  }

  /** Writes src to user memory at addr, page by page, with write faults (COW, SIGBUS...). */
  store(addr: number, src: Uint8Array): void {
    if (this.state !== "running") this.enter("store");
    this.storeOrFill(addr, src.length, src, 0);
  }

  /** Stores `length` copies of `byte` at addr (memset). */
  fill(addr: number, length: number, byte: number): void {
    let done = 0;
    while (done < length) {
      // One store per page, as a memset is: each checks that the process still runs.
      if (this.state !== "running") this.enter("store");
      const n = Math.min(PAGE_SIZE - pageOffset(addr + done), length - done);
      this.storeOrFill(addr + done, n, undefined, byte);
      done += n;
    }
  }

  /** store (src given) or memset (byte) of `len` bytes at addr; see loadInto for `quiet`. */
  private storeOrFill(addr: number, len: number, src: Uint8Array | undefined, byte: number): void {
    const sched = this.kernel.scheduler;
    const quiet = sched.quietFor?.(this) === true;
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const inPage = pageOffset(a);
      let n = Math.min(PAGE_SIZE - inPage, len - done);
      if (!quiet) sched.point(this, "store");
      const pte = this.present(a, true);
      const frame = pteFrame(pte);
      if (quiet) n += this.contiguous(a + n, len - done - n, frame + 1, true);
      const base = frame * PAGE_SIZE + inPage;
      const mem = this.physical(base + n);
      if (src === undefined) mem.fill(byte, base, base + n);
      else if (n <= SMALL_COPY) for (let j = 0; j < n; j++) mem[base + j] = src[done + j];
      else mem.set(src.subarray(done, done + n), base);
      done += n;
    }
    this.counters.bytesUserWritten += len;
  }

  /**
   * A kernel access to user memory on this process's behalf (copy_from_user when `write` is
   * false, copy_to_user when true): faults are resolved where they can be, but a fault that
   * would raise a signal stops the copy instead — no signal is ever delivered. Returns the
   * bytes copied. A userfaultfd-registered hole makes the kernel wait, as for the CPU.
   */
  kernelAccess(addr: number, length: number, write: boolean, buf: Uint8Array): number {
    let done = 0;
    while (done < length) {
      const a = addr + done;
      const inPage = pageOffset(a);
      const n = Math.min(PAGE_SIZE - inPage, length - done);
      let pte = this.translate(a, write);
      while (pte === 0) {
        const out = resolveFault(this.kernel, this, a, write);
        if (out.kind === "uffd") {
          // UFFD_USER_MODE_ONLY: a kernel-mode fault is not reported, it fails (EFAULT).
          if (out.vma.uffd?.userModeOnly) return done;
          this.waitForUffd(out.vma, out.page, write);
        } else if (out.kind !== "ok") return done;
        pte = this.translate(a, write);
      }
      const base = pteFrame(pte) * PAGE_SIZE + inPage;
      const mem = this.physical(base + n);
      if (write) mem.set(buf.subarray(done, done + n), base);
      else buf.set(mem.subarray(base, base + n), done);
      done += n;
    }
    return done;
  }
}

export { Deadlock, ErrnoError, ProcessKilled };
