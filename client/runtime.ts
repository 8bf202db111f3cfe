/**
 * Runs a Behaviour against a Client, two ways:
 *
 *   - `step()`: one generator step, for the lab's deterministic scheduler. A Wait that does
 *     not hold yet makes the step "waiting" without running anything. Whatever the step
 *     throws stays here: a ProcessKilled (the client's process died of a signal) or any
 *     other error ends the client as "dead" with the reason recorded, and its process and
 *     connection are torn down as the death of a real process would (its socket closes).
 *   - `drive()`: the async driver for workers, stepping freely and sleeping on the
 *     client's next event while a Wait is unmet.
 */
import { ProcessKilled } from "../shm/errors.ts";
import type { Behaviour, BehaviourContext, BehaviourStep, Wait } from "./behaviour.ts";
import type { Client } from "./client.ts";

export type StepResult = "progress" | "waiting" | "done" | "dead";

export interface RuntimeReport {
  behaviour: string;
  index: number;
  honest: boolean;
  state: "running" | "waiting" | "done" | "dead";
  steps: number;
  /** Why it ended: "finished", "disconnected: ...", "killed by SIGBUS ...", "threw: ...". */
  reason: string | undefined;
  /** What it was waiting for when it ended, if it was. */
  waitingFor: string | undefined;
  /** The wl_display.error the client received, if any. */
  protocolError: { objectId: number; code: number; message: string; fromServer: boolean } | null;
  killed: { pid: number; signal: string; reason: string } | null;
  requests: number;
  events: number;
  commits: number;
  releases: number;
  notes: string[];
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** mulberry32, seeded from (seed, index): every random choice of a behaviour comes from it. */
export function seededRandom(seed: number, index: number): () => number {
  let a = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeContext(
  seed: number,
  index: number,
  params: Readonly<Record<string, number | string | boolean>> = {},
): BehaviourContext {
  return { seed, index, params, random: seededRandom(seed, index) };
}

export class ClientRuntime {
  readonly behaviour: Behaviour;
  readonly client: Client;
  readonly ctx: BehaviourContext;
  state: RuntimeReport["state"] = "running";
  steps = 0;
  reason: string | undefined;
  killed: ProcessKilled | undefined;
  private wait: Wait | undefined;
  private readonly gen: BehaviourStep;

  constructor(behaviour: Behaviour, client: Client, ctx: BehaviourContext) {
    this.behaviour = behaviour;
    this.client = client;
    this.ctx = ctx;
    this.gen = behaviour.run(client, ctx);
  }

  get finished(): boolean {
    return this.state === "done" || this.state === "dead";
  }

  /** What the client waits for now, if anything. */
  get waitingFor(): string | undefined {
    return this.wait?.what;
  }

  /** Runs one step (or none, while a Wait is unmet). Never throws. */
  step(): StepResult {
    if (this.state === "done" || this.state === "dead") return this.state;
    try {
      if (this.wait) {
        if (!this.wait.ready()) {
          if (this.client.closed) {
            const e = this.client.error;
            return this.end(
              "done",
              `disconnected while waiting for ${this.wait.what}${e ? `: ${e.message}` : ""}`,
            );
          }
          this.state = "waiting";
          return "waiting";
        }
        this.wait = undefined;
      }
      this.steps++;
      const r = this.gen.next();
      if (r.done) return this.end("done", "finished");
      if (r.value) {
        this.wait = r.value;
        if (!this.wait.ready()) {
          this.state = "waiting";
          return "progress";
        }
        this.wait = undefined;
      }
      this.state = "running";
      return "progress";
    } catch (e) {
      return this.die(e);
    }
  }

  private die(e: unknown): StepResult {
    if (e instanceof ProcessKilled) {
      this.killed = e;
      this.reason = `killed: ${e.message}`;
    } else {
      this.reason = `threw: ${(e as Error)?.stack?.split("\n").slice(0, 3).join(" | ") ?? String(e)}`;
    }
    this.state = "dead";
    this.teardown();
    return "dead";
  }

  private end(state: "done", reason: string): StepResult {
    this.state = state;
    this.reason = reason;
    this.wait = undefined;
    return state;
  }

  /** A dead client's process is gone: its socket closes and its fds and mappings go. */
  private teardown(): void {
    try {
      this.gen.return();
    } catch (e) {
      // The behaviour's own finally block threw (its code, not ours): the client is
      // leaving anyway; what it threw is kept with the reason it ended.
      this.reason = `${this.reason ?? "ended"}; its finally threw: ${describe(e)}`;
    }
    this.client.disconnect();
    const sys = this.client.sys;
    if (sys?.alive) sys.exit();
  }

  /**
   * Ends the client now, finished or not: disconnects and exits its process, as a real
   * client leaving would (e.g. at the end of a run, or when its thread hangs).
   */
  stop(reason = "stopped"): void {
    if (this.state === "dead") return;
    if (this.state !== "done") {
      this.state = "done";
      this.reason = reason;
    }
    this.teardown();
  }

  /**
   * The async driver: steps until the behaviour ends, `shouldStop()` holds, or the signal
   * aborts. While a Wait is unmet it sleeps until the client's next event (or `pollMs`, for
   * Waits on things other than events). Every `burst` steps it lets the event loop run, so
   * events keep arriving while a behaviour steps without waiting.
   */
  async drive(
    opts: {
      shouldStop?: () => boolean;
      pollMs?: number;
      burst?: number;
      onStep?: (r: StepResult) => void;
    } = {},
  ): Promise<RuntimeReport> {
    const pollMs = opts.pollMs ?? 5;
    const burst = opts.burst ?? 32;
    let sinceYield = 0;
    for (;;) {
      if (opts.shouldStop?.()) break;
      const r = this.step();
      opts.onStep?.(r);
      if (r === "done" || r === "dead") break;
      if (r === "waiting") {
        sinceYield = 0;
        await Promise.race([this.client.nextActivity(), sleep(pollMs)]);
      } else if (++sinceYield >= burst) {
        sinceYield = 0;
        await new Promise<void>((res) => setImmediate(res));
      }
    }
    return this.report();
  }

  report(): RuntimeReport {
    const c = this.client;
    const e = c.error;
    let releases = 0;
    for (const b of c.buffers.values()) releases += b.releases;
    return {
      behaviour: this.behaviour.name,
      index: this.ctx.index,
      honest: this.behaviour.honest,
      state: this.state,
      steps: this.steps,
      reason: this.reason,
      waitingFor: this.wait?.what,
      protocolError: e
        ? { objectId: e.objectId, code: e.code, message: e.message, fromServer: e.fromServer }
        : null,
      killed: this.killed
        ? { pid: this.killed.pid, signal: this.killed.signal, reason: this.killed.reason }
        : null,
      requests: c.requests,
      events: c.eventCount,
      commits: c.commitCount,
      releases,
      notes: [...c.notes],
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
