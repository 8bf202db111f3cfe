/**
 * The seeded scheduler of deterministic runs. It is the kernel's Scheduler: at every
 * syscall and every page of the compositor's user accesses it may, with a probability drawn
 * from the run's seed, run one step of a client *inside* that read — so a client's ftruncate
 * lands between two pages of the compositor's copy exactly as it can on real hardware, and
 * the same seed lands it between the same two pages every time.
 */
import { Deadlock } from "../shm/errors.ts";
import type { Scheduler } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import type { Rng } from "./rng.ts";

/** Something the scheduler can run: returns false when it could make no progress. */
export interface Actor {
  name: string;
  runnable(): boolean;
  run(): boolean;
}

export interface SchedulerOptions {
  /** Probability that a compositor preemption point runs a client step. */
  preemptProbability: number;
}

export class SeededScheduler implements Scheduler {
  /** The compositor's pid: only its points are preemption points for client steps. */
  compositorPid = -1;
  /** Actors that may run inside a compositor read (client steps). */
  nestable: Actor[] = [];
  /** Every actor, for block(): whatever can make progress while a process waits. */
  all: Actor[] = [];
  preemptions = 0;
  private nested = false;

  constructor(
    private readonly rng: Rng,
    private readonly opts: SchedulerOptions,
  ) {}

  /** Only the compositor's points can run anything; every other process's are no-ops. */
  quietFor(p: Process): boolean {
    return p.pid !== this.compositorPid;
  }

  point(p: Process, site: string): void {
    if (this.nested || p.pid !== this.compositorPid) return;
    if (site !== "load" && site !== "store" && !this.rng.chance(0.25)) return;
    if (!this.rng.chance(this.opts.preemptProbability)) return;
    const ready = this.nestable.filter((a) => a.runnable());
    if (!ready.length) return;
    this.nested = true;
    try {
      this.rng.pick(ready).run();
      this.preemptions++;
    } finally {
      this.nested = false;
    }
  }

  block(p: Process, until: () => boolean, what: string): void {
    let idle = 0;
    while (!until()) {
      const ready = this.all.filter((a) => a.runnable());
      if (!ready.length || idle > 1000) {
        throw new Deadlock(`process ${p.pid} (${p.name}) waits on ${what} and nothing can run`);
      }
      const wasNested = this.nested;
      this.nested = true;
      try {
        idle = this.rng.pick(ready).run() ? 0 : idle + 1;
      } finally {
        this.nested = wasNested;
      }
    }
  }
}
