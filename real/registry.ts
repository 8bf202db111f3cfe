/**
 * Every real compositor this process started and has not yet seen exit. They are stopped
 * when the Node process ends, however it ends: normal exit, an uncaught error, SIGINT (Ctrl-C),
 * SIGTERM or SIGHUP. A compositor is also started with a parent-death signal (setpriv
 * --pdeathsig, PR_SET_PDEATHSIG in prctl(2)), so a SIGKILLed Node still takes it down.
 *
 * The signal handlers are installed when the first compositor is launched (armSignals), so a
 * process that never starts one keeps Node's default Ctrl-C behaviour; once installed they stay until a
 * signal's stop has run (see `unregister`).
 */
import { rmSync } from "node:fs";

export interface Registered {
  readonly pid: number;
  /** Removed at exit; null for a helper process with no dir of its own. */
  readonly runtimeDir: string | null;
  /** SIGTERM, a grace period, SIGKILL; resolves once the process has exited. */
  stop(): Promise<unknown>;
}

const live = new Set<Registered>();
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
type Sig = (typeof SIGNALS)[number];
let installed = false;
let stopping = false;

/**
 * Registers a started process. During a stop on a signal it is stopped at once and false
 * is returned: the command's loop may still be starting its next case, and that one must
 * not outlive us either.
 */
export function register(r: Registered): boolean {
  live.add(r);
  armSignals();
  if (stopping) {
    void r.stop();
    return false;
  }
  return true;
}

export function unregister(r: Registered): void {
  // The handlers stay installed when the last one goes: a command's loop starts its next
  // compositor in a moment (launch creates the runtime dir, spawns, then registers), and a
  // Ctrl-C in that moment with no handler would kill Node at once with the default action —
  // after the dir was made, before it was registered: the dir left behind by the Ctrl-C
  // test. With the handler, the signal waits for the event loop, by which time the launch
  // has registered. A signal with nothing live still ends the process with that signal
  // (onSignal below), as Node's default would.
  live.delete(r);
}

/** True while a signal's stop is under way: start nothing new. */
export function isStopping(): boolean {
  return stopping;
}

/** The instances still registered (for tests and for `stopAll`). */
export function liveInstances(): readonly Registered[] {
  return [...live];
}

/** Stops every registered instance (the lab calls it at the end of a command, too). */
export async function stopAll(): Promise<void> {
  await Promise.allSettled([...live].map((r) => r.stop()));
}

/**
 * Signals a compositor started detached (its own process group) and all it started:
 * weston's desktop-shell and keyboard helpers, Xwayland. The pid alone where the group is
 * gone (kill(2): ESRCH on -pgid).
 */
export function signalGroup(pid: number, sig: NodeJS.Signals): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, sig);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
    }
  }
}

/**
 * Removes a compositor's runtime dir right after its process group was SIGKILLed. kill(2)
 * returns before the targets are gone: a helper of the group (Xwayland, weston's
 * desktop-shell) may still be creating its socket or lock file there, and the recursive
 * removal then fails with ENOTEMPTY — seen as a runtime dir left behind after Ctrl-C on a
 * loaded machine. rmSync's retries (ENOTEMPTY, EBUSY, EPERM; a short sleep between) let the
 * dying processes finish.
 */
export function removeRuntimeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
}

/** 'exit' handlers must be synchronous: SIGKILL and remove the runtime dirs, no waiting. */
function killAllNow(): void {
  for (const r of live) {
    signalGroup(r.pid, "SIGKILL");
    if (r.runtimeDir) removeRuntimeDir(r.runtimeDir);
  }
  live.clear();
}

function onSignal(sig: Sig): void {
  if (stopping) return;
  stopping = true;
  // Stop them properly (weston removes its socket on SIGTERM), then die of the same signal
  // so the shell sees the usual status — unless someone else also listens for it.
  const drain = async () => {
    // Until nothing is left: what was started while we stopped is stopped too.
    while (live.size) await stopAll();
  };
  void drain().finally(() => {
    stopping = false;
    // The drain's last look and this callback are separate microtasks: a command's loop
    // may start its next case in between (launch creates the runtime dir and registers in
    // one synchronous step, then awaits its own stop). Dying of the signal runs no 'exit'
    // handler, so whatever is registered now is killed and its dir removed here.
    killAllNow();
    uninstall();
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  });
}

const handlers = new Map<Sig, () => void>(SIGNALS.map((s) => [s, () => onSignal(s)]));

/**
 * Installs the signal handlers; a launcher calls it before it makes anything a signal
 * would leave behind. Between a compositor's runtime dir and its registration there is a
 * spawn (fork and exec: milliseconds on a loaded machine), and the child is visible in
 * /proc from its fork: a Ctrl-C that lands there in the first launch of a process found no
 * handler and killed Node with the dir still on disk (the Ctrl-C test, about 1 run in 4
 * under load). With the handler armed the signal waits for the event loop, and by then the
 * launch has registered.
 */
export function armSignals(): void {
  if (installed) return;
  installed = true;
  process.on("exit", killAllNow);
  for (const [s, h] of handlers) process.on(s, h);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off("exit", killAllNow);
  for (const [s, h] of handlers) process.off(s, h);
}
