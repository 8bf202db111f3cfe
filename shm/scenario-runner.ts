/**
 * Runs a scenario script (docs/scenarios.md) on the simulated kernel and returns one result
 * per step, in the same form the host helper (native/) produces.
 *
 * Async steps: an access that must wait (a userfaultfd fault) calls the scheduler's `block`,
 * and this runner's `block` executes the script's following steps until the wait is over —
 * the single-threaded equivalent of the host running the access in a second thread.
 */
import { deviceBuffer, findDeviceBuffer, mapDeviceBuffer, readDeviceBuffer } from "./device.ts";
import { Deadlock, ErrnoError, ProcessKilled, type SigInfo } from "./errors.ts";
import { deviceRead, findPin, pin, unpin } from "./gup.ts";
import { Kernel, type Scheduler } from "./kernel.ts";
import type { Process } from "./process.ts";
import { reclaim } from "./reclaim.ts";
import {
  type FaultReport,
  rle,
  type Scenario,
  type Step,
  type StepResult,
  type StepValue,
  unrle,
} from "./scenario.ts";
import { MAP, MREMAP, PAGE_SIZE, PROT, parseFlags, sealNames } from "./uapi.ts";

/** Thrown out of the default `catch` handler: the model's siglongjmp. */
class CaughtSignal extends Error {
  constructor(readonly info: SigInfo) {
    super(`caught ${info.signo}`);
  }
}

type Binding = number | number[];

export interface ModelRun {
  results: StepResult[];
  kernel: Kernel;
}

export function runScenarioOnModel(s: Scenario): ModelRun {
  return new Runner(s).run();
}

class Runner implements Scheduler {
  private readonly kernel: Kernel;
  private readonly procs = new Map<string, Process>();
  private readonly bindings = new Map<string, Binding>();
  private readonly asyncResults = new Map<string, StepResult>();
  private readonly results: StepResult[] = [];
  private cursor = 0;
  /** Faults handled by the zero-page handler during the current step, per process. */
  private readonly handled = new Map<Process, FaultReport[]>();
  /** The address binding base of the step each process is executing. */
  private readonly bases = new Map<Process, number>();

  constructor(private readonly s: Scenario) {
    this.kernel = new Kernel({ features: s.kernelFeatures ?? [], scheduler: this, trace: true });
    for (const name of s.processes) this.addProcess(name, this.kernel.spawn(name));
  }

  point(): void {}

  block(_p: Process, until: () => boolean, what: string): void {
    // Only an async step (a second thread) lets the script go on while it waits; a
    // synchronous step blocks its process and, as on the host, the whole script.
    if (!this.running.at(-1)?.async) {
      if (!until()) throw new Deadlock(`blocked on ${what}`);
      return;
    }
    while (!until()) {
      if (this.cursor >= this.s.steps.length) throw new Deadlock(`blocked on ${what}`);
      this.execute(this.cursor++);
    }
  }

  run(): ModelRun {
    while (this.cursor < this.s.steps.length) this.execute(this.cursor++);
    return { results: this.results, kernel: this.kernel };
  }

  private addProcess(name: string, p: Process): void {
    this.procs.set(name, p);
    this.installHandler(p, "catch", "SIGBUS");
    this.installHandler(p, "catch", "SIGSEGV");
  }

  private installHandler(p: Process, kind: string, sig: "SIGBUS" | "SIGSEGV"): void {
    if (kind === "default") {
      p.signals.actions.set(sig, { handler: "default" });
      return;
    }
    if (kind === "catch") {
      p.signals.actions.set(sig, {
        handler: (info) => {
          throw new CaughtSignal(info);
        },
      });
      return;
    }
    if (kind === "zero-page") {
      // What compositors do: map anonymous memory over the faulting page and return.
      p.signals.actions.set(sig, {
        handler: (info, self) => {
          const page = info.addr - (info.addr % PAGE_SIZE);
          self.mmap(
            page,
            PAGE_SIZE,
            PROT.PROT_READ | PROT.PROT_WRITE,
            MAP.MAP_FIXED | MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS,
          );
          const list = this.handled.get(self) ?? [];
          list.push(this.report(self, info));
          this.handled.set(self, list);
        },
      });
      return;
    }
    throw new ErrnoError("EINVAL", "sigaction", `unknown handler ${kind}`);
  }

  private report(p: Process, info: SigInfo): FaultReport {
    return { signal: info.signo, code: info.code, offset: info.addr - (this.bases.get(p) ?? 0) };
  }

  /** The steps being executed, innermost last (an async step's wait runs later steps). */
  private readonly running: Step[] = [];

  private execute(index: number): void {
    const step = this.s.steps[index];
    this.running.push(step);
    try {
      this.executeStep(index, step);
    } finally {
      this.running.pop();
    }
  }

  private executeStep(index: number, step: Step): void {
    const p = this.procs.get(step.p);
    let result: StepResult;
    if (!p?.alive) {
      result = { dead: true };
    } else {
      this.handled.delete(p);
      this.bases.delete(p);
      try {
        const value = this.op(p, step);
        const handled = this.handled.get(p);
        result = handled?.length ? { value, handled } : { value };
      } catch (e) {
        result = this.failure(p, e);
        // The host binds a failed step's names to -1, so later uses fail as they would there.
        if ("errno" in result && step.as !== undefined) {
          this.bind(step, Array.isArray(step.as) ? step.as.map(() => -1) : -1);
        }
        // A synchronous step that never returns: the host kills the process after a timeout.
        if ("blocked" in result && !step.async && step.op !== "join" && step.op !== "uffd_read") {
          if (p.alive) {
            try {
              p.kill("SIGKILL", undefined, "killed");
            } catch (e) {
              // kill() unwinds by throwing its own ProcessKilled; here there is nothing to unwind.
              if (!(e instanceof ProcessKilled)) throw e;
            }
          }
        }
      }
    }
    if (step.async) {
      this.asyncResults.set(String(step.as), result);
      result = { value: "started" };
    }
    this.results[index] = result;
  }

  private failure(p: Process, e: unknown): StepResult {
    if (e instanceof JoinResult) return e.result;
    if (e instanceof ErrnoError) return { errno: e.code };
    if (e instanceof CaughtSignal) return this.report(p, e.info);
    if (e instanceof ProcessKilled && e.pid === p.pid) {
      return { killed: e.signal === "SIGSEGV" ? "SIGSEGV" : "SIGBUS" };
    }
    if (e instanceof Deadlock) return { blocked: true };
    throw e;
  }

  private arg(step: Step, name: string): number {
    const v = step[name];
    if (typeof v === "string" && v.startsWith("$")) {
      const m = /^\$(\w+)(?:\.(\d+))?$/.exec(v);
      const b = m ? this.bindings.get(m[1]) : undefined;
      if (b === undefined) throw new ErrnoError("EINVAL", step.op, `unbound ${v}`);
      if (Array.isArray(b)) return b[Number(m![2] ?? 0)];
      return b;
    }
    if (typeof v === "number") return v;
    if (v === undefined) return 0;
    return parseFlags(v as string);
  }

  private pinOf(step: Step) {
    const pinned = findPin(this.kernel, this.arg(step, "pin"));
    if (!pinned) throw new ErrnoError("EINVAL", step.op, "no such pin");
    return pinned;
  }

  private flags(step: Step, name: string): number {
    return parseFlags(step[name] as string | number | undefined);
  }

  /** binding + offset, remembering the binding as the base that fault offsets are reported against. */
  private addr(p: Process, step: Step, offsetName = "offset"): number {
    const base = this.arg(step, "addr");
    this.bases.set(p, base);
    return base + (typeof step[offsetName] === "number" ? (step[offsetName] as number) : 0);
  }

  private bytes(step: Step): Uint8Array {
    if (typeof step.data === "string") return unrle(step.data);
    return new Uint8Array(this.arg(step, "length")).fill(this.arg(step, "fill"));
  }

  private bind(step: Step, v: Binding): void {
    if (typeof step.as === "string") this.bindings.set(step.as, v);
    else if (Array.isArray(step.as) && Array.isArray(v)) {
      for (const [i, n] of step.as.entries()) this.bindings.set(n, v[i]);
      if (step.as.length) this.bindings.set(step.as.join(","), v);
    }
  }

  private op(p: Process, st: Step): StepValue {
    const a = (n: string) => this.arg(st, n);
    switch (st.op) {
      case "memfd_create": {
        const fd = p.memfdCreate(String(st.name ?? "memfd"), this.flags(st, "flags"));
        this.bind(st, fd);
        return fd;
      }
      case "pipe": {
        const fds = p.pipe();
        this.bind(st, fds);
        return fds;
      }
      case "dup": {
        const fd = p.dup(a("fd"));
        this.bind(st, fd);
        return fd;
      }
      case "close":
        p.close(a("fd"));
        return 0;
      case "send_fd": {
        const to = this.procs.get(String(st.to));
        if (!to?.alive) throw new ErrnoError("EPIPE", "sendmsg", "receiver is dead");
        const fd = p.sendFd(a("fd"), to);
        this.bind(st, fd);
        return fd;
      }
      case "ftruncate":
        p.ftruncate(a("fd"), a("length"));
        return 0;
      case "fallocate":
        p.fallocate(a("fd"), this.flags(st, "mode"), a("offset"), a("length"));
        return 0;
      case "set_zero_beyond_eof":
        p.setZeroBeyondEof(a("fd"));
        return 0;
      case "fstat_size":
        return p.fstatSize(a("fd"));
      case "fstat_blocks":
        return p.fstatBlocks(a("fd"));
      case "pread":
        return rle(p.pread(a("fd"), a("length"), a("offset")));
      case "pwrite":
        return p.pwrite(a("fd"), this.bytes(st), a("offset"));
      case "read":
        return p.read(a("fd"), this.addr(p, st), a("length"));
      case "write":
        return p.write(a("fd"), this.addr(p, st), a("length"));
      case "add_seals":
        p.addSeals(a("fd"), this.flags(st, "seals"));
        return 0;
      case "get_seals":
        return sealNames(p.getSeals(a("fd")));
      case "mmap": {
        const flags = this.flags(st, "flags");
        const fixed = flags & (MAP.MAP_FIXED | MAP.MAP_FIXED_NOREPLACE);
        // Without MAP_FIXED an address is a hint (the host helper passes it the same way).
        const addr = fixed || st.addr !== undefined ? this.addr(p, st, "at") : 0;
        const fd = st.fd === undefined ? -1 : a("fd");
        const m = p.mmap(addr, a("length"), this.flags(st, "prot"), flags, fd, a("offset"));
        this.bind(st, m);
        return "mapped";
      }
      case "munmap":
        p.munmap(this.addr(p, st), a("length"));
        return 0;
      case "mremap": {
        const flags = this.flags(st, "flags");
        // MREMAP_FIXED: the target is a binding (`new_addr`) plus `new_at`.
        const target =
          flags & MREMAP.MREMAP_FIXED
            ? this.arg(st, "new_addr") + (typeof st.new_at === "number" ? st.new_at : 0)
            : 0;
        const m = p.mremap(this.addr(p, st), a("old_length"), a("new_length"), flags, target);
        this.bind(st, m);
        return "mapped";
      }
      case "mprotect":
        p.mprotect(this.addr(p, st), a("length"), this.flags(st, "prot"));
        return 0;
      case "madvise":
        p.madvise(this.addr(p, st), a("length"), this.flags(st, "advice"));
        return 0;
      case "load":
        return rle(p.load(this.addr(p, st), a("length")));
      case "store": {
        const data = this.bytes(st);
        p.store(this.addr(p, st), data);
        return data.length;
      }
      case "touch": {
        // One byte per page, read or written; the value is the minor faults it took, as the
        // host helper reads them from getrusage(RUSAGE_SELF).ru_minflt around its loop.
        const base = this.addr(p, st);
        const before = p.counters.minorFaults;
        const fill = new Uint8Array([this.arg(st, "fill")]);
        for (let off = 0; off < a("length"); off += PAGE_SIZE) {
          if (st.write === true) p.store(base + off, fill);
          else p.load(base + off, 1);
        }
        return p.counters.minorFaults - before;
      }
      case "sigaction": {
        const sig = String(st.signal) as "SIGBUS" | "SIGSEGV";
        p.enter("rt_sigaction");
        this.installHandler(p, String(st.handler), sig);
        return 0;
      }
      case "fork": {
        const child = p.fork(String(st.child));
        this.procs.set(String(st.child), child);
        return 0;
      }
      case "exit":
        p.exit();
        return 0;
      case "userfaultfd": {
        const fd = p.userfaultfd(this.flags(st, "flags"));
        this.bind(st, fd);
        return fd;
      }
      case "uffdio_api":
        p.uffdioApi(a("uffd"), this.flags(st, "features"));
        return 0;
      case "uffdio_register":
        p.uffdioRegister(a("uffd"), this.addr(p, st), a("length"), this.flags(st, "mode"));
        return 0;
      case "uffd_read": {
        // A blocking read with nothing pending never returns: report it as the host does.
        if (!p.uffdPending(a("uffd"))) throw new Deadlock("uffd read with no fault pending");
        const e = p.uffdRead(a("uffd"));
        const base = st.base === undefined ? 0 : this.arg(st, "base");
        return { event: "pagefault", offset: e.address - base, write: e.write };
      }
      case "uffdio_zeropage":
        return p.uffdioZeropage(a("uffd"), this.addr(p, st), a("length"));
      case "uffdio_copy":
        return p.uffdioCopy(a("uffd"), this.addr(p, st), this.bytes(st));
      // ---- model-only (issue 9): the simulated device and memory pressure ----
      case "pin": {
        // A device import: pin_user_pages(FOLL_LONGTERM [| FOLL_WRITE]); binds the pin.
        const pinned = pin(p, this.addr(p, st), a("length"), { write: st.write === true });
        this.bind(st, pinned.id);
        return pinned.frames.length;
      }
      case "unpin":
        unpin(this.kernel, this.pinOf(st));
        return 0;
      case "device_read": {
        // What the device sees: through a pin (`pin`), or in its own memory (`device`).
        const off = typeof st.offset === "number" ? st.offset : 0;
        if (typeof st.device === "string") {
          const dev = findDeviceBuffer(this.kernel, st.device);
          if (!dev) throw new ErrnoError("ENODEV", "device_read", `no device buffer ${st.device}`);
          return rle(readDeviceBuffer(this.kernel, dev, off, a("length")));
        }
        return rle(deviceRead(this.kernel, this.pinOf(st), off, a("length")));
      }
      case "reclaim":
        return reclaim(this.kernel);
      case "pfnmap": {
        // The device's driver mmap (remap_pfn_range) of device buffer `device`, created
        // `length` bytes long (pages of `fill`) on first use.
        const fill = typeof st.fill === "number" ? st.fill : 0;
        const dev = deviceBuffer(this.kernel, String(st.device ?? "vram"), a("length"), fill);
        const m = mapDeviceBuffer(
          p,
          dev,
          a("length"),
          this.flags(st, "prot"),
          this.flags(st, "flags"),
        );
        this.bind(st, m);
        return "mapped";
      }
      case "join": {
        throw new JoinResult(this.asyncResults.get(String(st.step)) ?? { blocked: true });
      }
      default:
        throw new ErrnoError("ENOSYS", st.op, "not a model operation");
    }
  }
}

/** `join` returns another step's whole result, not a value; carried out of `op` by throw. */
class JoinResult extends Error {
  constructor(readonly result: StepResult) {
    super("join");
  }
}
