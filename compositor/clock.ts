/**
 * Frame clocks. The compositor never schedules itself: `frame()` is a plain call. A clock
 * says what time a frame has (the wl_callback.done timestamp) and, for live serving, calls
 * the compositor's frame at an interval.
 *
 * - VirtualClock: time advances by a fixed interval per frame and nothing runs by itself;
 *   the lab's seeded scheduler calls frame(), so runs replay exactly.
 * - IntervalClock: real time (performance.now) and a setInterval driving frames, for
 *   `shmlab serve`.
 */
import { performance } from "node:perf_hooks";

export interface FrameClock {
  /** Milliseconds, the clock's current time. */
  now(): number;
  /** Called by the compositor at each frame; returns that frame's time in milliseconds. */
  tick(): number;
  /** Starts driving `onFrame` (no-op for virtual clocks: the caller drives frames). */
  start(onFrame: () => void): void;
  stop(): void;
  readonly virtual: boolean;
}

export class VirtualClock implements FrameClock {
  readonly virtual = true;
  private t: number;
  constructor(
    readonly intervalMs = 1000 / 60,
    start = 0,
  ) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  tick(): number {
    this.t += this.intervalMs;
    return this.t;
  }
  start(): void {}
  stop(): void {}
}

export class IntervalClock implements FrameClock {
  readonly virtual = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  constructor(readonly intervalMs = 1000 / 60) {}
  now(): number {
    return performance.now();
  }
  tick(): number {
    return performance.now();
  }
  start(onFrame: () => void): void {
    this.stop();
    this.timer = setInterval(onFrame, this.intervalMs);
  }
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
