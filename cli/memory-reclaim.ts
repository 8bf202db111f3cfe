/**
 * Memory given back after a burst, for `shmlab serve`: a client that wrote 64 MiB and left
 * must not leave the server's RSS 64 MiB higher for good (issue 18).
 *
 * Three things keep memory after its users are gone:
 *   - the simulated kernel's physical memory, one growable SharedArrayBuffer that cannot
 *     shrink: FrameTable.trim() swaps it for a smaller one;
 *   - V8: an ArrayBuffer's backing store (a 1 MiB message, a 4 MiB texture, the swapped-out
 *     frames buffer) is freed only when a major GC collects its holder, which a server whose
 *     old generation stops growing may not run for minutes; and the young generation grows
 *     under load (to 2 x 16 MiB) and is shrunk only by memory-reducing GCs;
 *   - glibc keeps freed heap chunks of MiB-sized buffers (native/memory-reclaim.cc says why).
 * So after clients leave, once things are calm (or at the latest every `maxIntervalMs`
 * while clients keep coming and going), the kernel is trimmed, then V8 is told memory is
 * low (a critical MemoryPressureNotification: a memory-reducing full GC) and glibc trims
 * its heap, through
 * the addon native/memory-reclaim.cc. Without the addon (no C++ compiler or node headers) a
 * plain full GC is run instead, reached as jest-leak-detector reaches it
 * (v8.setFlagsFromString("--expose-gc"), then `gc` from a fresh context), so that
 * `shmlab serve` needs no node flag; the young generation and glibc then keep their peak.
 */
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { MemoryReclaimAddon } from "../native/memory-reclaim.ts";

let gcFn: (() => void) | undefined;

/** The engine's full GC (global.gc when node runs with --expose-gc). */
export function fullGc(): () => void {
  if (!gcFn) {
    const own = (globalThis as { gc?: () => void }).gc;
    if (own) gcFn = own;
    else {
      setFlagsFromString("--expose-gc");
      gcFn = runInNewContext("gc") as () => void;
    }
  }
  return gcFn;
}

export interface ReclaimOptions {
  /** Gives back the simulated kernel's free memory; returns the bytes given back. */
  trim: () => number;
  /** Run when no client came or went for this long (ms). */
  calmMs?: number;
  /** ...or at the latest this long after the first departure since the last run (ms). */
  maxIntervalMs?: number;
  /** How often the timer looks (ms). */
  tickMs?: number;
  now?: () => number;
}

export interface ReclaimStats {
  runs: number;
  trimmedBytes: number;
  /** Time spent in GCs and malloc_trim, in all (ms). */
  gcMs: number;
  /** "addon" (memory-pressure GC and malloc_trim), or "gc only: <why no addon>". */
  how: string;
  /**
   * What is still alive after the last run, the measure of what the server retains:
   * V8's heap in use right after its full GC (every object left is reachable), and glibc's
   * bytes in use (mallinfo2 uordblks + hblkhd) right after malloc_trim (-1 without the
   * addon). -1 before the first run. `measuredRun`: the run they are of (its steps end a
   * turn or two of the event loop after `runs` counts it).
   */
  liveHeapBytes: number;
  mallocInUseBytes: number;
  measuredRun: number;
}

export class MemoryReclaimer {
  readonly stats: ReclaimStats = {
    runs: 0,
    trimmedBytes: 0,
    gcMs: 0,
    how: "gc only",
    liveHeapBytes: -1,
    mallocInUseBytes: -1,
    measuredRun: 0,
  };
  private addon: MemoryReclaimAddon | undefined;
  private readonly calmMs: number;
  private readonly maxIntervalMs: number;
  private readonly now: () => number;
  private lastChange = 0;
  /** When the first departure since the last run happened; 0 when none is pending. */
  private dirtySince = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ReclaimOptions) {
    this.calmMs = opts.calmMs ?? 2000;
    this.maxIntervalMs = opts.maxIntervalMs ?? 120_000;
    this.now = opts.now ?? (() => performance.now());
    this.timer = setInterval(() => this.tick(), opts.tickMs ?? 500);
    this.timer.unref();
  }

  /** Uses the addon (native/memory-reclaim.ts), or says why there is none. */
  useAddon(addon: MemoryReclaimAddon | undefined, why: string): void {
    this.addon = addon;
    this.stats.how = addon ? "addon" : `gc only: ${why}`;
  }

  /** A client arrived: not calm yet. */
  arrived(): void {
    this.lastChange = this.now();
  }

  /** A client left: its memory is to be given back once things are calm. */
  left(): void {
    const t = this.now();
    this.lastChange = t;
    if (this.dirtySince === 0) this.dirtySince = t;
  }

  /** Runs the reclaim now if one is due; true when it ran. */
  tick(): boolean {
    if (this.dirtySince === 0) return false;
    const t = this.now();
    if (t - this.lastChange < this.calmMs && t - this.dirtySince < this.maxIntervalMs) return false;
    this.run();
    return true;
  }

  /**
   * Trims the kernel, then the engine's and the C library's memory: three steps, each in a
   * turn of the event loop of its own, so that clients are served between them and the
   * longest pause is one step's.
   */
  run(): void {
    this.dirtySince = 0;
    this.stats.runs++;
    this.stats.trimmedBytes += this.opts.trim();
    const timed = (fn: () => void) => () => {
      const t0 = performance.now();
      fn();
      this.stats.gcMs += performance.now() - t0;
    };
    const addon = this.addon;
    const run = this.stats.runs;
    setImmediate(
      timed(() => {
        if (addon) addon.lowMemory();
        else fullGc()();
        const live = getHeapStatistics().used_heap_size;
        if (!addon) {
          Object.assign(this.stats, { liveHeapBytes: live, measuredRun: run });
          return;
        }
        setImmediate(
          timed(() => {
            addon.mallocTrim();
            const m = addon.mallocStats();
            Object.assign(this.stats, {
              liveHeapBytes: live,
              mallocInUseBytes: m.inUse + m.mmapped,
              measuredRun: run,
            });
          }),
        );
      }),
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
