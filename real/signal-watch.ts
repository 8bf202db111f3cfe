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
import { isStopping, type Registered, register, signalGroup, unregister } from "./registry.ts";
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
    // Its own process group (detached), so that stop() reaches the children strace forks
    // for its feature tests (below), and a terminal's Ctrl-C reaches only us, who stop it.
    const opts = { stdio: ["ignore", "ignore", "pipe"] as ("ignore" | "pipe")[], detached: true };
    const child = setpriv
      ? spawn(setpriv, ["--pdeathsig", "SIGTERM", "--", strace, ...args], opts)
      : spawn(strace, args, opts);
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
   * Ends strace and every process it forked with SIGKILL, as a group. The kernel detaches
   * strace's tracees when it dies (they go on untouched). The group matters: before it
   * attaches, strace forks throwaway children to probe ptrace (strace.c
   * test_ptrace_seize, test_ptrace_get_syscall_info: the child pause()s until strace kills
   * it). Killed in that window, strace left such a child behind, an orphan with strace's own
   * command line (found by Ctrl-C during `conformance --compositors` with strace on: the
   * stray "strace -f -p PID" was a pid strace had forked, not the one we spawned).
   */
  async stop(): Promise<void> {
    // Exited on its own (its tracee died): strace reaped its probes itself, and its pid (so
    // its group id) may already be another process's.
    if (this.exited) return;
    const done = new Promise<void>((r) => this.child.once("exit", () => r()));
    signalGroup(this.pid, "SIGKILL");
    await done;
  }
}
