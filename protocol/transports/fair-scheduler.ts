/**
 * Fair service of many connections on one thread (issue 18: one thread serves everyone).
 *
 * Without it, every message a socket's read brings is handled at once, in the order the
 * bytes arrived: a client that floods (1 MiB syscalls back to back, thousands of requests)
 * keeps the thread for as long as its backlog lasts, and an honest client's commit waits
 * behind all of it. libwayland-server has the same shape (wl_event_loop dispatches one
 * client's fd until its buffer is drained, up to 4 KiB of requests per read); a compositor
 * on one thread can only be fair by bounding what one client gets per turn.
 *
 * So each connection queues what it receives, and the scheduler serves the queues round
 * robin: per turn a connection gets at most `turnBytes` of messages (always at least one
 * whole message), and after `sliceMs` of turns the scheduler yields to the event loop, so
 * that timers (the frame clock), new connections and other sockets' reads run. A connection
 * whose queue holds more than its high-water mark stops reading its socket (TCP backpressure
 * slows the sender, not the server) until the queue drains.
 */
import { performance } from "node:perf_hooks";

/** A connection with queued work. */
export interface FairSource {
  /** Handles queued messages, up to `budgetBytes` (at least one); true if more remain. */
  turn(budgetBytes: number): boolean;
}

export interface FairLimits {
  /** Most bytes of messages one connection gets handled per turn (at least one message). */
  turnBytes: number;
  /** Most milliseconds of turns before the scheduler yields to the event loop. */
  sliceMs: number;
  /** Queued bytes past which a connection stops reading its socket until drained. */
  highWaterBytes: number;
}

export const DEFAULT_FAIR_LIMITS: Readonly<FairLimits> = Object.freeze({
  turnBytes: 64 * 1024,
  sliceMs: 4,
  highWaterBytes: 256 * 1024,
});

export interface FairStats {
  /** Turns given, and runs (each ends by yielding to the event loop). */
  turns: number;
  runs: number;
  /** The longest single turn (ms): what the thread's fairness cannot cut below. */
  maxTurnMs: number;
}

export class FairScheduler {
  readonly limits: FairLimits;
  readonly stats: FairStats = { turns: 0, runs: 0, maxTurnMs: 0 };
  private ready: FairSource[] = [];
  private readonly queued = new Set<FairSource>();
  private scheduled = false;

  constructor(limits: Partial<FairLimits> = {}) {
    this.limits = { ...DEFAULT_FAIR_LIMITS, ...limits };
  }

  /** `s` has work queued: it gets a turn in round-robin order. */
  wake(s: FairSource): void {
    if (!this.queued.has(s)) {
      this.queued.add(s);
      this.ready.push(s);
    }
    this.schedule();
  }

  /** Connections waiting for a turn. */
  get waiting(): number {
    return this.ready.length;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate runs after the poll phase: every socket read ready now is queued first,
    // so the round includes every connection that has something to say.
    setImmediate(() => this.run());
  }

  private run(): void {
    this.scheduled = false;
    this.stats.runs++;
    const t0 = performance.now();
    let i = 0;
    try {
      while (i < this.ready.length) {
        const s = this.ready[i++];
        this.queued.delete(s);
        const ts = performance.now();
        const more = s.turn(this.limits.turnBytes);
        const te = performance.now();
        this.stats.turns++;
        if (te - ts > this.stats.maxTurnMs) this.stats.maxTurnMs = te - ts;
        // Back of the line, behind the connections woken during this run.
        if (more && !this.queued.has(s)) {
          this.queued.add(s);
          this.ready.push(s);
        }
        if (te - t0 >= this.limits.sliceMs) break;
      }
    } finally {
      // Consistent even if a turn threw (a source's own errors are its to report).
      this.ready = this.ready.slice(i);
      if (this.ready.length > 0) this.schedule();
    }
  }
}
