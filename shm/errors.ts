/**
 * The kernel's typed failures. A syscall that fails throws ErrnoError, whose `code` is the
 * errno name (as Node's fs errors do: err.code === "EINVAL"). A process that receives a
 * fatal signal unwinds with ProcessKilled; the Node process itself never dies of either.
 */
import type { Errno, SiCode } from "./uapi.ts";

export class ErrnoError extends Error {
  readonly code: Errno;
  readonly syscall: string;
  constructor(code: Errno, syscall: string, detail?: string) {
    super(`${syscall}: ${code}${detail ? ` (${detail})` : ""}`);
    this.name = "ErrnoError";
    this.code = code;
    this.syscall = syscall;
  }
}

/** SIGABRT: a process that aborts itself (abort(3), a Rust panic, a FatalError). */
export type FatalSignal = "SIGBUS" | "SIGSEGV" | "SIGKILL" | "SIGABRT";

/**
 * What a death reports: a fatal signal, or "unknown" where a real process (real/native-sys.ts)
 * was seen gone before its exit status was (never in the simulation).
 */
export type DeathSignal = FatalSignal | "unknown";

export interface SigInfo {
  signo: "SIGBUS" | "SIGSEGV";
  code: SiCode;
  /** The exact faulting address (si_addr). */
  addr: number;
}

/**
 * Thrown through a simulated process's JS stack when it dies: an unhandled SIGBUS/SIGSEGV,
 * a synchronous signal raised while that signal is blocked (force_sig_info_to_task resets
 * the handler to SIG_DFL and unblocks it), an OOM kill, or a handler that never fixes its
 * fault (a livelock Linux would spin on forever).
 */
export class ProcessKilled extends Error {
  readonly code = "SHM_ERR_KILLED";
  constructor(
    readonly pid: number,
    readonly signal: DeathSignal,
    readonly info: SigInfo | undefined,
    readonly reason: "unhandled" | "blocked-signal" | "oom" | "livelock" | "killed" | "abort",
  ) {
    super(
      `process ${pid} killed by ${signal} (${reason}${info ? ` ${info.code} at 0x${info.addr.toString(16)}` : ""})`,
    );
    this.name = "ProcessKilled";
  }
}

/** A blocked access that nothing can ever wake (single-threaded model, no one to resolve). */
export class Deadlock extends Error {
  readonly code = "SHM_ERR_DEADLOCK";
}

export function errno(code: Errno, syscall: string, detail?: string): never {
  throw new ErrnoError(code, syscall, detail);
}
