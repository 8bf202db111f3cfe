/**
 * The simulated kernel: physical frames, processes, the switched-on proposals, the scheduler
 * hook that makes every syscall and every page of a user access a preemption point, and the
 * open-file handles that carry fds between processes (SCM_RIGHTS).
 */
import { DEFAULT_MAX_MAP_COUNT } from "./address-space.ts";
import type { ProcessCounters } from "./counters.ts";
import { Deadlock, ErrnoError } from "./errors.ts";
import type { OpenFile } from "./file.ts";
import { FrameTable } from "./frames.ts";
import { mapLoaderData } from "./loader-image.ts";
import { Process } from "./process.ts";
import { reclaim } from "./reclaim.ts";
import type { KernelFeature } from "./scenario.ts";
import { releaseFile } from "./syscalls/files.ts";
import type { Vma } from "./vma.ts";

/**
 * Decides interleavings. `point` is called at every syscall entry and every page of a user
 * access; a deterministic scheduler may run other processes' steps there. `block` is called
 * when a process must wait (a userfaultfd fault): it must make progress elsewhere until
 * `until()` holds, or throw.
 */
export interface Scheduler {
  point(p: Process, site: string): void;
  block(p: Process, until: () => boolean, what: string): void;
  /**
   * True when `point(p, ...)` does nothing at all for `p` (no state, no random draw) for as
   * long as one user access lasts. A user access may then skip its per-page points and copy
   * a physically contiguous run at once. Absent or false: every page is a point.
   */
  quietFor?(p: Process): boolean;
}

/** The scheduler of a plain single-threaded run: no preemption, and nobody to wake a waiter. */
export const NO_PREEMPTION: Scheduler = {
  point() {},
  quietFor: () => true,
  block(p, until, what) {
    if (!until()) throw new Deadlock(`process ${p.pid} (${p.name}) blocked on ${what} forever`);
  },
};

export interface KernelEvent {
  seq: number;
  pid: number;
  kind: string;
  detail: Record<string, number | string | boolean>;
}

export interface KernelOptions {
  /** Physical memory limit in bytes (ENOMEM past it). Default 1 GiB. */
  memoryLimit?: number;
  /** Proposals that never landed, switched on for this kernel. */
  features?: readonly KernelFeature[];
  scheduler?: Scheduler;
  /** Record an event log (faults, signals, truncations) for timelines. */
  trace?: boolean;
  /** sysctl vm.max_map_count: most VMAs per process (default 65530, as on Linux). */
  maxMapCount?: number;
}

export class Kernel {
  readonly frames: FrameTable;
  readonly features: ReadonlySet<KernelFeature>;
  scheduler: Scheduler;
  readonly processes = new Map<number, Process>();
  readonly events: KernelEvent[] | undefined;
  /**
   * FOLL_PIN pins per frame (folio_maybe_dma_pinned): fork copies a pinned anonymous page for
   * the child instead of sharing it, and reclaim never drops one. Maintained by gup.ts.
   */
  readonly pinCounts = new Map<number, number>();
  /** "Obsolete feature used" notes, each counted (the kernel would log once). */
  readonly obsoleteFeatureUses = new Map<string, number>();
  /** sysctl vm.max_map_count. */
  readonly maxMapCount: number;
  private nextPid = 1;
  private nextIno = 1;
  private nextFileId = 1;
  private seq = 0;
  /** Files in flight between processes, by handle id (each holds one reference). */
  private readonly inFlight = new Map<number, OpenFile>();
  private nextHandle = 1;

  constructor(opts: KernelOptions = {}) {
    this.frames = new FrameTable(opts.memoryLimit ?? 1024 * 1024 * 1024);
    this.features = new Set(opts.features ?? []);
    this.scheduler = opts.scheduler ?? NO_PREEMPTION;
    this.events = opts.trace ? [] : undefined;
    this.maxMapCount = opts.maxMapCount ?? DEFAULT_MAX_MAP_COUNT;
    // Memory pressure: before an allocation fails, drop MAP_DROPPABLE pages (LINUX.md rule
    // 17; shrink_folio_list discards droppable folios even when dirty).
    this.frames.onPressure = () => reclaim(this);
  }

  /**
   * A new process with an empty fd table and the address space exec leaves a dynamically
   * linked program: only the loader's mapping above MMAP_BASE (shm/loader-image.ts).
   */
  spawn(name: string): Process {
    const p = new Process(this, this.nextPid++, name);
    mapLoaderData(p);
    this.processes.set(p.pid, p);
    return p;
  }

  /**
   * waitpid: forgets a process that has exited or was killed, so that a long-lived kernel
   * (a server's) does not keep every process it ever ran. A running process stays.
   */
  reap(pid: number): boolean {
    const p = this.processes.get(pid);
    if (!p || p.alive) return false;
    this.processes.delete(pid);
    return true;
  }

  /** @internal */
  adopt(p: Process): void {
    this.processes.set(p.pid, p);
  }
  /** @internal */
  allocPid(): number {
    return this.nextPid++;
  }
  /** @internal */
  allocIno(): number {
    return this.nextIno++;
  }
  /** @internal */
  allocFileId(): number {
    return this.nextFileId++;
  }

  /**
   * Takes a reference to the file behind `fd` for transfer (the sending half of SCM_RIGHTS)
   * and returns a handle id that `importFd` turns into a new fd in the receiver.
   */
  exportFd(p: Process, fd: number): number {
    const f = p.fds.get(fd, "sendmsg");
    f.refs++;
    const h = this.nextHandle++;
    this.inFlight.set(h, f);
    return h;
  }

  /** The receiving half: installs the in-flight file at the lowest free fd of `p`. */
  importFd(p: Process, handle: number): number {
    const f = this.inFlight.get(handle);
    if (!f) throw new ErrnoError("EBADF", "recvmsg", `no file in flight with handle ${handle}`);
    // scm_detach_fds: a full fd table (EMFILE) leaves the file with the message, which the
    // receiver then discards (dropHandle) — never a lost reference.
    const fd = p.fds.install(f, "recvmsg");
    this.inFlight.delete(handle);
    f.refs--; // the in-flight reference became the fd's
    return fd;
  }

  /** The files in flight between processes (each holds one reference), for self-checks. */
  filesInFlight(): OpenFile[] {
    return [...this.inFlight.values()];
  }

  /** Drops a handle that will never be received (the message was discarded). */
  dropHandle(handle: number): void {
    const f = this.inFlight.get(handle);
    if (!f) return;
    this.inFlight.delete(handle);
    // The discarded message's reference may be the file's last (the sender closed its fd).
    releaseFile(this, f);
  }

  /** @internal The counters of the process owning a VMA. */
  countersOfVma(vma: Vma): ProcessCounters | undefined {
    return vma.owner;
  }

  noteObsoleteFeature(what: string): void {
    this.obsoleteFeatureUses.set(what, (this.obsoleteFeatureUses.get(what) ?? 0) + 1);
  }

  emit(pid: number, kind: string, detail: Record<string, number | string | boolean> = {}): void {
    if (this.events) this.events.push({ seq: this.seq++, pid, kind, detail });
  }
}
