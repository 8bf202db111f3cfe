/**
 * Counting the faults a compositor survives: a SIGBUS it handles (libwayland's
 * wl_shm_buffer_begin_access handler, which maps zeros over the pool and carries on) is
 * invisible from outside, yet it is what the model counts as "tolerated". strace attached
 * to every thread (-f -p) with no syscalls traced reports each delivered signal:
 *   [pid 123] --- SIGBUS {si_signo=SIGBUS, si_code=BUS_ADRERR, si_addr=0x7f...} ---
 * ptrace re-injects the signal, so the compositor handles (or dies of) it as it would alone.
 * Where strace is missing or ptrace is refused, counts are unknown (null), never invented.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { isStopping, type Registered, register, unregister } from "./registry.ts";
import { findBinary } from "./versions.ts";

const ATTACH_TIMEOUT_MS = 5000;

export class SignalWatch implements Registered {
  readonly pid: number;
  readonly runtimeDir = null;
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly outPath: string,
  ) {
    this.pid = child.pid!;
    child.once("exit", () => {
      this.exited = true;
      unregister(this);
    });
  }

  /** Attaches to `pid`; null (with the reason in `why`) where it cannot. */
  static async attach(pid: number, outPath: string): Promise<SignalWatch | { why: string }> {
    if (isStopping()) return { why: "shmlab is stopping" };
    const strace = findBinary("strace");
    if (!strace) return { why: "strace is not installed" };
    const setpriv = findBinary("setpriv");
    const args = [
      "-f",
      "-p",
      String(pid),
      "-e",
      "trace=none",
      "-e",
      "signal=SIGBUS,SIGSEGV",
      "-o",
      outPath,
    ];
    const child = setpriv
      ? spawn(setpriv, ["--pdeathsig", "SIGTERM", "--", strace, ...args], {
          stdio: ["ignore", "ignore", "pipe"],
        })
      : spawn(strace, args, { stdio: ["ignore", "ignore", "pipe"] });
    if (child.pid === undefined) return { why: "strace did not start" };
    const w = new SignalWatch(child, outPath);
    if (!register(w)) {
      await w.stop();
      return { why: "shmlab is stopping" };
    }
    const attached = await new Promise<string | null>((resolve) => {
      let err = "";
      const timer = setTimeout(
        () => resolve(`strace did not attach in ${ATTACH_TIMEOUT_MS} ms`),
        ATTACH_TIMEOUT_MS,
      );
      child.stderr!.on("data", (d: Buffer) => {
        err += d.toString();
        if (/attached/.test(err)) {
          clearTimeout(timer);
          resolve(null);
        } else if (/Operation not permitted|attach: ptrace/.test(err)) {
          clearTimeout(timer);
          resolve(err.trim().split("\n")[0]);
        }
      });
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(err.trim().split("\n")[0] || "strace exited");
      });
    });
    if (attached !== null) {
      await w.stop();
      return { why: attached };
    }
    return w;
  }

  /** How many of `sig` were delivered to the compositor so far. */
  count(sig: "SIGBUS" | "SIGSEGV"): number {
    if (!existsSync(this.outPath)) return 0;
    const re = new RegExp(`--- ${sig} \\{`, "g");
    return (readFileSync(this.outPath, "utf8").match(re) ?? []).length;
  }

  /**
   * Ends strace with SIGKILL: the kernel detaches its tracees when the tracer dies (they go
   * on untouched), while a SIGTERM can be lost when it lands in the middle of strace
   * attaching to the threads of a compositor that is being killed at the same time — a
   * Ctrl-C test found one strace left behind that way.
   */
  async stop(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.child.once("exit", () => r()));
    signal(this.pid, "SIGKILL");
    await done;
  }
}

/** kill(2) that accepts a process already gone (it exits on its own when the tracee dies). */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
  }
}
