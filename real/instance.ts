/**
 * Starting one real compositor: a private XDG_RUNTIME_DIR (0700, owned by whoever runs the
 * compositor), a clean environment (no WAYLAND_DISPLAY or DISPLAY of ours leaks in, so it
 * never nests in a session), its own process group (a terminal's Ctrl-C reaches us, not it:
 * we stop it and report its death as ours to tell), its log kept under .cache/real/logs/,
 * readiness from the socket it creates (or Xvfb's -displayfd), and its death with the signal
 * that caused it (SIGBUS is not SIGSEGV is not an exit code).
 *
 * Every instance is registered (real/registry.ts) until it has exited, so nothing outlives
 * the Node process. It is started under `setpriv --pdeathsig SIGTERM` where setpriv exists,
 * so even a SIGKILLed Node takes it down.
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { armSignals, register, removeRuntimeDir, signalGroup, unregister } from "./registry.ts";
import { SignalWatch } from "./signal-watch.ts";
import type { Endpoint, ExitInfo, RealInstance, RealKind } from "./target.ts";
import { findBinary } from "./versions.ts";
import { pingWayland, WaylandPingError } from "./wayland-ping.ts";

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
export const REAL_LOG_DIR = join(REPO, ".cache", "real", "logs");
const KEEP_LOGS = 200;
const STOP_GRACE_MS = 3000;
export const DEFAULT_START_TIMEOUT_MS = 20_000;

export class RealStartError extends Error {
  readonly code = "SHMLAB_ERR_REAL_START";
  constructor(
    message: string,
    readonly logPath: string,
  ) {
    super(message);
    this.name = "RealStartError";
  }
}

/** How to tell the compositor is ready for clients. */
export type Readiness =
  /** A Unix socket in the runtime dir whose name matches (weston's --socket, sway's wayland-N). */
  | { kind: "socket"; name: RegExp }
  /** Xvfb -displayfd 3: the display number written on fd 3 once it accepts connections. */
  | { kind: "displayfd" };

export interface LaunchSpec {
  kind: RealKind;
  version: string;
  binary: string;
  /** The arguments, given the instance's runtime dir (config files go there). */
  args: (runtimeDir: string) => string[];
  env?: Record<string, string>;
  /** Files to write into the runtime dir before starting (sway's config). */
  files?: Record<string, string>;
  /** Run under this unprivileged user and group when we are root (sway refuses root). */
  runAs?: { user: string; group: string };
  ready: Readiness;
  startTimeoutMs?: number;
  /**
   * A log line naming the fault behind a death the process reports differently (Xvfb
   * catches SIGBUS in OsSigHandler, logs "Caught signal 7 (Bus error)" and aborts).
   */
  faultLine?: RegExp;
  /**
   * How stop() asks it to end: "self" (default: SIGTERM to it) or "children" (SIGTERM to
   * its child processes: cage ends with its application, and its own SIGTERM handler
   * aborts; see real/cage.ts). SIGKILL to the group after the grace period either way.
   */
  stopVia?: "self" | "children";
  /**
   * Count delivered SIGBUS/SIGSEGV with strace. Off unless SHMLAB_REAL_STRACE=1: a Ctrl-C
   * landing while strace attaches can still leave that strace behind (found by
   * test/real-conformance.test.ts; docs/real-compositors.md), and nothing may outlive us.
   */
  watchSignals?: boolean;
}

/** uid/gid of a user and group by name, from /etc/passwd and /etc/group. */
export function lookupIds(user: string, group: string): { uid: number; gid: number } {
  const field = (file: string, name: string) => {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const f = line.split(":");
      if (f[0] === name) return Number(f[2]);
    }
    throw new RealStartError(`no ${name} in ${file}`, "");
  };
  return { uid: field("/etc/passwd", user), gid: field("/etc/group", group) };
}

function newLogPath(kind: RealKind): string {
  mkdirSync(REAL_LOG_DIR, { recursive: true });
  const logs = readdirSync(REAL_LOG_DIR).sort();
  for (const old of logs.slice(0, Math.max(0, logs.length - KEEP_LOGS))) {
    rmSync(join(REAL_LOG_DIR, old), { force: true });
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  return join(
    REAL_LOG_DIR,
    `${stamp}-${kind}-${process.pid}-${Math.random().toString(36).slice(2, 6)}.log`,
  );
}

/** The last lines of a log, for an error message. */
export function logTail(path: string, lines = 8): string {
  if (!path || !existsSync(path)) return "";
  return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

/** Is a process running (not gone, not a zombie awaiting its reaper)? */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

export class LaunchedInstance implements RealInstance {
  readonly pid: number;
  private exit: ExitInfo | null = null;
  private readonly exitWaiters: ((e: ExitInfo) => void)[] = [];
  private stopping: Promise<ExitInfo> | null = null;
  /** strace counting delivered SIGBUS/SIGSEGV, or why there is none. */
  watch: SignalWatch | { why: string } = {
    why: "strace not attached (SHMLAB_REAL_STRACE=1 attaches it)",
  };

  constructor(
    readonly kind: RealKind,
    readonly version: string,
    readonly endpoint: Endpoint,
    readonly logPath: string,
    readonly runtimeDir: string,
    readonly child: ChildProcess,
    private readonly faultLine?: RegExp,
    private readonly stopVia: "self" | "children" = "self",
  ) {
    this.pid = child.pid!;
  }

  /** Called by the launcher when the child exits (before or after readiness). */
  noteExit(e: ExitInfo): void {
    this.exit = e;
    for (const w of this.exitWaiters.splice(0)) w(e);
  }

  exited(): ExitInfo | null {
    return this.exit;
  }

  /** The log's own account of a fatal fault ("Caught signal 7 (Bus error)"), if it gave one. */
  faultNoted(): string | null {
    if (!this.faultLine || !existsSync(this.logPath)) return null;
    return this.faultLine.exec(readFileSync(this.logPath, "utf8"))?.[0] ?? null;
  }

  /**
   * Signals delivered to it so far (handled or fatal), read by strace; null where strace
   * could not attach (watchNote() says why).
   */
  signalsSeen(): { SIGBUS: number; SIGSEGV: number } | null {
    const w = this.watch;
    if (!(w instanceof SignalWatch)) return null;
    return { SIGBUS: w.count("SIGBUS"), SIGSEGV: w.count("SIGSEGV") };
  }

  watchNote(): string | null {
    return this.watch instanceof SignalWatch ? null : this.watch.why;
  }

  /** Resolves when the process has exited (immediately if it has). */
  waitExit(): Promise<ExitInfo> {
    if (this.exit) return Promise.resolve(this.exit);
    return new Promise((r) => this.exitWaiters.push(r));
  }

  stop(): Promise<ExitInfo> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<ExitInfo> {
    // The tracer first, while its tracee still lives.
    if (this.watch instanceof SignalWatch) await this.watch.stop();
    if (!this.exit) {
      // SIGTERM to the compositor alone: it stops its own helpers (weston's desktop-shell)
      // and exits 0. Sent to the whole group, the helper may die first and weston then
      // exits 1 ("desktop-shell died"), a failure that is ours, not the compositor's.
      const kids = this.stopVia === "children" ? childrenOf(this.pid) : [];
      for (const pid of kids.length ? kids : [this.pid]) {
        try {
          process.kill(pid, "SIGTERM");
        } catch (e) {
          // Exited (and reaped) since the check: the 'exit' event is on its way.
          if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
        }
      }
      const timer = setTimeout(() => this.signal("SIGKILL"), STOP_GRACE_MS);
      await this.waitExit();
      clearTimeout(timer);
    }
    // Whatever it started and left behind (its process group) goes with it.
    signalGroup(this.pid, "SIGKILL");
    removeRuntimeDir(this.runtimeDir);
    unregister(this);
    return this.exit!;
  }

  private signal(sig: NodeJS.Signals): void {
    if (this.exit) return;
    signalGroup(this.pid, sig);
  }
}

/** The pids of a process's children (/proc/PID/task/PID/children), [] once it is gone. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}

function makeRuntimeDir(kind: RealKind, owner?: { uid: number; gid: number }): string {
  const dir = mkdtempSync(join(tmpdir(), `shmlab-${kind}-`));
  chmodSync(dir, 0o700);
  if (owner) chownSync(dir, owner.uid, owner.gid);
  return dir;
}

function cleanEnv(runtimeDir: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: runtimeDir,
    XDG_RUNTIME_DIR: runtimeDir,
    LANG: "C.UTF-8",
    ...extra,
  };
}

function findSocket(dir: string, name: RegExp): string | undefined {
  for (const n of readdirSync(dir)) {
    if (!name.test(n)) continue;
    const p = join(dir, n);
    if (statSync(p).isSocket()) return p;
  }
  return undefined;
}

/** Starts a compositor and resolves once it accepts clients; rejects with its log's tail. */
export async function launch(spec: LaunchSpec): Promise<LaunchedInstance> {
  const asUser =
    spec.runAs && process.getuid?.() === 0
      ? lookupIds(spec.runAs.user, spec.runAs.group)
      : undefined;
  armSignals();
  const runtimeDir = makeRuntimeDir(spec.kind, asUser);
  for (const [name, text] of Object.entries(spec.files ?? {})) {
    const p = join(runtimeDir, name);
    writeFileSync(p, text);
    // Readable by the unprivileged user whatever our umask.
    chmodSync(p, 0o644);
  }
  const logPath = newLogPath(spec.kind);
  const logFd = openSync(logPath, "a");
  const setpriv = findBinary("setpriv");
  if (asUser && !setpriv) {
    closeSync(logFd);
    rmSync(runtimeDir, { recursive: true, force: true });
    throw new RealStartError(`${spec.kind} must not run as root and setpriv is missing`, logPath);
  }
  const args = spec.args(runtimeDir);
  const [cmd, argv] = setpriv
    ? [
        setpriv,
        [
          "--pdeathsig",
          "SIGTERM",
          ...(asUser
            ? ["--reuid", String(asUser.uid), "--regid", String(asUser.gid), "--clear-groups"]
            : []),
          "--",
          spec.binary,
          ...args,
        ],
      ]
    : [spec.binary, args];
  const stdio: ("ignore" | "pipe" | number)[] = ["ignore", logFd, logFd];
  if (spec.ready.kind === "displayfd") stdio.push("pipe");
  let child: ChildProcess;
  try {
    child = spawn(cmd, argv, {
      env: cleanEnv(runtimeDir, spec.env ?? {}),
      cwd: runtimeDir,
      stdio,
      detached: true,
    });
  } finally {
    closeSync(logFd);
  }
  if (child.pid === undefined) {
    rmSync(runtimeDir, { recursive: true, force: true });
    const err = await new Promise<Error>((r) => child.once("error", r));
    throw new RealStartError(`${spec.kind}: ${err.message}`, logPath);
  }
  // A placeholder endpoint until readiness tells the real one.
  const inst = new LaunchedInstance(
    spec.kind,
    spec.version,
    { kind: "wayland", socket: "" },
    logPath,
    runtimeDir,
    child,
    spec.faultLine,
    spec.stopVia,
  );
  child.once("exit", (code, signal) => inst.noteExit({ code, signal }));
  if (!register(inst)) {
    await inst.stop();
    throw new RealStartError(`${spec.kind} not started: shmlab is stopping`, logPath);
  }
  try {
    const endpoint = await waitReady(spec, inst, child, runtimeDir);
    (inst as { endpoint: Endpoint }).endpoint = endpoint;
    if (spec.watchSignals ?? process.env.SHMLAB_REAL_STRACE === "1") {
      inst.watch = await SignalWatch.attach(inst.pid, logPath.replace(/\.log$/, ".signals"));
    }
    return inst;
  } catch (e) {
    await inst.stop();
    throw e;
  }
}

function waitReady(
  spec: LaunchSpec,
  inst: LaunchedInstance,
  child: ChildProcess,
  runtimeDir: string,
): Promise<Endpoint> {
  const timeoutMs = spec.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, ep?: Endpoint) => {
      if (done) return;
      done = true;
      clearInterval(poll);
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(ep!);
    };
    const fail = (why: string) =>
      finish(
        new RealStartError(
          `${spec.kind} ${why}; log ${inst.logPath}:\n${logTail(inst.logPath)}`,
          inst.logPath,
        ),
      );
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs);
    inst
      .waitExit()
      .then((e) => fail(`exited before it was ready (${e.signal ?? `code ${e.code}`})`));
    let poll: NodeJS.Timeout | undefined;
    const ready = spec.ready;
    if (ready.kind === "socket") {
      let pinging = false;
      poll = setInterval(() => {
        const s = pinging ? undefined : findSocket(runtimeDir, ready.name);
        if (!s) return;
        pinging = true;
        pingWayland(s, 2000).then(
          () => finish(null, { kind: "wayland", socket: s }),
          (e: Error) => {
            // Not answering yet (or refused while it starts): try again on the next tick.
            if (!(e instanceof WaylandPingError && e.notYet)) finish(e);
            pinging = false;
          },
        );
      }, 10);
    } else {
      let text = "";
      child.stdio[3]?.on("data", (b: Buffer) => {
        text += b.toString("utf8");
        const m = /^(\d+)\n/.exec(text);
        if (m)
          finish(null, { kind: "x11", display: `:${m[1]}`, socket: `/tmp/.X11-unix/X${m[1]}` });
      });
    }
  });
}
