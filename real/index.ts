/**
 * The real compositors shmlab can start, by kind, and a keeper that gives the lab a live
 * instance, restarting it after a death (a fuzz case runs on a fresh or still-alive one).
 */
import { cage } from "./cage.ts";
import type { RealCompositor, StartOptions } from "./compositor.ts";
import type { LaunchedInstance } from "./instance.ts";
import { kwin } from "./kwin.ts";
import { mutter } from "./mutter.ts";
import { sway } from "./sway.ts";
import type { Availability, RealKind } from "./target.ts";
import { weston } from "./weston.ts";
import { xvfb } from "./xvfb.ts";

export const REAL_COMPOSITORS: readonly RealCompositor[] = [weston, sway, xvfb, mutter, kwin, cage];

export function realKinds(): RealKind[] {
  return REAL_COMPOSITORS.map((c) => c.kind);
}

export function getReal(kind: string): RealCompositor {
  const c = REAL_COMPOSITORS.find((x) => x.kind === kind);
  if (!c) {
    const err = new Error(
      `unknown real compositor ${JSON.stringify(kind)}; known: ${realKinds().join(", ")}`,
    ) as Error & { code: string };
    err.code = "SHMLAB_ERR_UNKNOWN_NAME";
    throw err;
  }
  return c;
}

export function probeReal(kind: RealKind): Availability {
  return getReal(kind).probe();
}

/**
 * One live instance of a compositor, started on first use and again after it died: what a
 * dead compositor takes down is itself, and the next case gets a fresh one.
 */
export class InstanceKeeper {
  private current: LaunchedInstance | null = null;
  /** How many times it was (re)started. */
  starts = 0;

  constructor(
    readonly compositor: RealCompositor,
    private readonly opts: StartOptions = {},
  ) {}

  /** A running instance: the current one if it is alive, else a new one. */
  async live(): Promise<LaunchedInstance> {
    if (this.current && !this.current.exited()) return this.current;
    if (this.current) await this.current.stop();
    this.current = await this.compositor.start(this.opts);
    this.starts++;
    return this.current;
  }

  /** Stops the current instance and forgets it, so the next `live()` starts a fresh one. */
  async fresh(): Promise<LaunchedInstance> {
    await this.stop();
    return this.live();
  }

  async stop(): Promise<void> {
    const c = this.current;
    this.current = null;
    if (c) await c.stop();
  }
}
