/**
 * The kernel's end of the channel a worker thread's processes use (remote-process.ts is the
 * worker's end). The kernel stays on its own thread; a worker client makes its syscalls by
 * posting a request on a MessagePort and sleeping in Atomics.wait until this host has run
 * the syscall on the real Process, posted the reply and notified. The worker then takes the
 * reply synchronously with receiveMessageOnPort: a syscall is a blocking call, as on Linux.
 *
 * User memory is not behind the channel. The host gives the worker the frames
 * SharedArrayBuffer, the reader-epoch array and, per mapping, the page-table chunks
 * (SharedArrayBuffers too), so a worker's stores land in physical memory directly, beside
 * the compositor's reads on this thread. Only a store whose entry is missing or read-only
 * comes here (a fault): the host runs it as a CPU store of that page on the Process, with
 * every consequence (allocation, COW, SIGBUS and death), and returns the mapping's fresh
 * chunks.
 *
 * Each worker store publishes its start epoch in a reader slot of the frame table
 * (frames.ts), so a frame freed by a truncation during the store is not reused until the
 * store ends: a late write lands in a dead frame, never in another file's page.
 */
import { performance } from "node:perf_hooks";
import type { MessagePort } from "node:worker_threads";
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import { Deadlock, ErrnoError, ProcessKilled } from "./errors.ts";
import { MAX_READER_THREADS } from "./frames.ts";
import type { Kernel, Scheduler } from "./kernel.ts";
import { type Process, USER_SYSCALLS } from "./process.ts";

/** The open channels of each kernel, for ServingScheduler. */
const LIVE_HOSTS = new WeakMap<Kernel, Set<RemoteKernelHost>>();
/** Kernels in the middle of serving a request. */
const SERVING = new WeakSet<Kernel>();

/**
 * The scheduler of a kernel whose clients run in worker threads, with real concurrency:
 * every syscall and page of a user access on the kernel's thread is a chance to serve the
 * workers' waiting syscalls (at most every `everyMs`, so a long read does not spend its
 * time polling). A worker's ftruncate issued while the compositor copies a buffer is then
 * executed between two pages of that copy, as on a multi-core machine.
 */
export class ServingScheduler implements Scheduler {
  served = 0;
  private last = 0;

  constructor(
    private readonly kernel: Kernel,
    private readonly everyMs = 0.02,
  ) {}

  point(): void {
    if (SERVING.has(this.kernel)) return;
    const now = performance.now();
    if (now - this.last < this.everyMs) return;
    this.last = now;
    this.pumpAll();
  }

  block(p: Process, until: () => boolean, what: string): void {
    const deadline = performance.now() + 2000;
    while (!until()) {
      if (this.pumpAll() === 0 && performance.now() > deadline) {
        throw new Deadlock(`process ${p.pid} (${p.name}) waits on ${what}; no worker resolved it`);
      }
    }
  }

  private pumpAll(): number {
    let n = 0;
    for (const h of LIVE_HOSTS.get(this.kernel) ?? []) n += h.pump();
    this.served += n;
    return n;
  }
}

/**
 * Process methods a worker may call by name: what user space can do, less `store` (a
 * worker's stores go straight into physical memory; only their faults come here) and `exit`
 * (a worker's processes exit when its channel closes).
 */
export const REMOTE_SYSCALLS: ReadonlySet<string> = new Set(
  [...USER_SYSCALLS].filter((n) => n !== "store" && n !== "exit"),
);

/** Calls that change the caller's mappings: the worker drops its cached page tables. */
export const MM_CHANGING: ReadonlySet<string> = new Set([
  "mmap",
  "munmap",
  "mremap",
  "mprotect",
  "madvise",
  "uffdioRegister",
]);

export type RemoteRequest =
  | { op: "call"; pid: number; name: string; args: unknown[]; written: number }
  | { op: "store"; pid: number; addr: number; data: Uint8Array; written: number }
  | { op: "vma"; pid: number; addr: number; written: number }
  | { op: "fork"; pid: number; name: string; written: number }
  | { op: "exit"; pid: number; written: number }
  | { op: "exportFd"; pid: number; fd: number; written: number }
  | { op: "importFd"; pid: number; handle: number; written: number };

export interface VmaInfo {
  start: number;
  end: number;
  /** The mapping's page-table chunks (Int32Array over SharedArrayBuffers), some absent. */
  chunks: (Int32Array | undefined)[];
}

export type RemoteReply =
  | { ok: unknown; vma?: VmaInfo | null }
  | { errno: string; syscall: string; message: string }
  | {
      killed: {
        pid: number;
        signal: string;
        reason: string;
        info: { signo: string; code: string; addr: number } | null;
      };
    }
  | { fault: string };

/** What a worker needs to reach the kernel: transfer `port`, share the rest. */
export interface RemoteSetup {
  port: MessagePort;
  /** Int32Array(2) over a SharedArrayBuffer: [0] = reply ready. */
  ctl: SharedArrayBuffer;
  memory: SharedArrayBuffer;
  epochs: Int32Array;
  /** The reader slot (index into epochs) this worker publishes its store epochs in. */
  slot: number;
  pid: number;
}

const slotsInUse = new WeakMap<Kernel, Set<number>>();

function takeSlot(k: Kernel): number {
  let used = slotsInUse.get(k);
  if (!used) slotsInUse.set(k, (used = new Set()));
  // From the top down: low slots are left to readers on the kernel's own side.
  for (let s = MAX_READER_THREADS; s >= 1; s--)
    if (!used.has(s)) {
      used.add(s);
      return s;
    }
  throw new Error(`more than ${MAX_READER_THREADS} worker channels on one kernel`);
}

/**
 * One worker's channel: the processes it drives (its client and any children it forks).
 * Create it on the kernel's thread, hand `setup()` to the worker, `close()` when the worker
 * is gone (every process it drove exits, its reader slot is cleared).
 */
export class RemoteKernelHost {
  readonly kernel: Kernel;
  readonly processes = new Map<number, Process>();
  readonly slot: number;
  requests = 0;
  closed = false;
  private readonly port: MessagePort;
  private readonly workerPort: MessagePort;
  private readonly ctl: Int32Array;
  private readonly ctlBuf = new SharedArrayBuffer(8);
  private readonly root: Process;

  constructor(kernel: Kernel, proc: Process) {
    this.kernel = kernel;
    this.root = proc;
    this.processes.set(proc.pid, proc);
    this.slot = takeSlot(kernel);
    // The worker will hold the frames buffer: physical memory must not be swapped for a
    // smaller one under it (FrameTable.trim) until the channel closes.
    kernel.frames.pin();
    this.ctl = new Int32Array(this.ctlBuf);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.workerPort = port2;
    this.port.on("message", (m: RemoteRequest) => this.answer(m));
    let live = LIVE_HOSTS.get(kernel);
    if (!live) LIVE_HOSTS.set(kernel, (live = new Set()));
    live.add(this);
  }

  /**
   * Serves the requests waiting on this channel now, synchronously — from inside whatever
   * the kernel's thread is doing (a preemption point of a multi-page read), so a worker's
   * syscall can land between two of its pages. Returns how many were served.
   */
  pump(): number {
    let n = 0;
    while (!this.closed) {
      const r = receiveMessageOnPort(this.port);
      if (!r) break;
      this.answer(r.message as RemoteRequest);
      n++;
    }
    return n;
  }

  /** The worker's end (transfer `port` in the task's transferList). */
  setup(): RemoteSetup {
    return {
      port: this.workerPort,
      ctl: this.ctlBuf,
      memory: this.kernel.frames.memory,
      epochs: this.kernel.frames.epochs,
      slot: this.slot,
      pid: this.root.pid,
    };
  }

  private answer(m: RemoteRequest): void {
    let reply: RemoteReply;
    // While one request runs, no preemption point may start another (the kernel's state is
    // mid-syscall): ServingScheduler checks this.
    SERVING.add(this.kernel);
    try {
      reply = this.handle(m);
    } catch (e) {
      if (e instanceof ErrnoError)
        reply = { errno: e.code, syscall: e.syscall, message: e.message };
      else if (e instanceof ProcessKilled)
        reply = {
          killed: {
            pid: e.pid,
            signal: e.signal,
            reason: e.reason,
            info: e.info ? { signo: e.info.signo, code: e.info.code, addr: e.info.addr } : null,
          },
        };
      else reply = { fault: (e as Error)?.message ?? String(e) };
    }
    SERVING.delete(this.kernel);
    this.port.postMessage(reply);
    Atomics.store(this.ctl, 0, 1);
    Atomics.notify(this.ctl, 0);
  }

  private proc(pid: number): Process {
    const p = this.processes.get(pid);
    if (!p) throw new Error(`process ${pid} is not driven by this worker`);
    return p;
  }

  private vmaInfo(p: Process, addr: number): VmaInfo | null {
    const v = p.mm.find(addr);
    return v ? { start: v.start, end: v.end, chunks: [...v.sharedChunks()] } : null;
  }

  private handle(m: RemoteRequest): RemoteReply {
    this.requests++;
    const p = this.proc(m.pid);
    if (m.written > 0) p.counters.bytesUserWritten += m.written;
    switch (m.op) {
      case "call": {
        if (!REMOTE_SYSCALLS.has(m.name)) throw new ErrnoError("ENOSYS", m.name);
        const fn = (p as unknown as Record<string, (...a: unknown[]) => unknown>)[m.name];
        return { ok: fn.apply(p, m.args) };
      }
      case "store": {
        // A fault on the worker's side: the store of this page, as the CPU would retry it.
        p.store(m.addr, m.data);
        return { ok: 0, vma: this.vmaInfo(p, m.addr) };
      }
      case "vma":
        return { ok: 0, vma: this.vmaInfo(p, m.addr) };
      case "fork": {
        const child = p.fork(m.name);
        this.processes.set(child.pid, child);
        return { ok: child.pid };
      }
      case "exit":
        p.exit();
        return { ok: 0 };
      case "exportFd":
        return { ok: this.kernel.exportFd(p, m.fd) };
      case "importFd":
        return { ok: this.kernel.importFd(p, m.handle) };
    }
  }

  /**
   * The worker is gone (finished, crashed, terminated): every process it drove exits, as
   * processes die with their thread group, and its reader slot is released.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.processes.values()) {
      if (p.alive) p.exit();
    }
    // A worker terminated in the middle of a store leaves its epoch published.
    Atomics.store(this.kernel.frames.epochs, this.slot, 0);
    slotsInUse.get(this.kernel)?.delete(this.slot);
    this.kernel.frames.unpin();
    LIVE_HOSTS.get(this.kernel)?.delete(this);
    this.port.close();
    // Wake a worker that might still be waiting (it will find the port closed).
    Atomics.store(this.ctl, 0, 1);
    Atomics.notify(this.ctl, 0);
  }
}
