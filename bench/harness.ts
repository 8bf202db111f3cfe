/**
 * The benchmark harness. Every goal is a ratio against a baseline measured in the same
 * process, in the same run, so the figures mean the same thing on any machine. Every figure
 * is the median of at least MIN_REPS repetitions, printed with its spread: on a shared
 * machine one measurement cannot tell a policy's cost from the load of the moment.
 *
 * A suite may measure its repetitions itself (`samples`, and `baseline.samples` or
 * `ratios` for its same-moment ratios); a suite that returns plain figures is run again by
 * bench/main.ts until every figure has MIN_REPS repetitions (combineRepetitions).
 */
import { performance } from "node:perf_hooks";

/** Repetitions behind every printed figure (issue 16: "the median of >= 5 repetitions"). */
export const MIN_REPS = 5;

export interface BenchResult {
  /** What was measured, e.g. "user read 8 MiB through a mapping". */
  name: string;
  /** The measured figure in its unit: the median of `samples` when they are given. */
  value: number;
  unit: string;
  /** The figure of each repetition (`value` is their median). */
  samples?: number[];
  /** The baseline measured in the same run, in the same unit. */
  baseline?: { name: string; value: number; samples?: number[] };
  /**
   * value/baseline of each repetition, each pair measured at the same moment. Without it,
   * samples and baseline.samples of the same length are paired in order.
   */
  ratios?: number[];
  /** The goal, as a minimum ratio value/baseline (e.g. 0.5 = "at least half"). */
  goal?: { minRatio: number; text: string };
}

export interface BenchSuite {
  name: string;
  run(): Promise<BenchResult[]>;
  /**
   * Why one run is the measurement (printed with it): a suite whose figures are counts
   * over a long run rather than rates, which rerunning would only multiply in time.
   */
  once?: string;
}

/** A figure's repetitions: median, quartiles and extremes. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Lower and upper quartile (linear interpolation between order statistics). */
  q1: number;
  q3: number;
  n: number;
}

function quantile(sorted: readonly number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

export function spreadOf(samples: readonly number[]): Spread {
  if (samples.length === 0) throw new RangeError("a spread needs at least one sample");
  const s = [...samples].sort((a, b) => a - b);
  return {
    median: quantile(s, 0.5),
    min: s[0],
    max: s[s.length - 1],
    q1: quantile(s, 0.25),
    q3: quantile(s, 0.75),
    n: s.length,
  };
}

export function median(samples: readonly number[]): number {
  return spreadOf(samples).median;
}

/**
 * Runs `fn` repeatedly for at least `minMs` (after a warm-up) and returns operations per
 * second, where one call of `fn` performs `opsPerCall` operations. One repetition: suites
 * that call it once per run are repeated by bench/main.ts.
 */
export function measureRate(fn: () => void, opsPerCall = 1, minMs = 400): number {
  const warmUntil = performance.now() + minMs / 4;
  while (performance.now() < warmUntil) fn();
  return slice(fn, opsPerCall, minMs);
}

function slice(fn: () => void, opsPerCall: number, minMs: number): number {
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < minMs) {
    fn();
    calls++;
    now = performance.now();
  }
  return (calls * opsPerCall * 1000) / (now - start);
}

/** Microseconds of CPU this process has used (every thread: the JS one, GC helpers). */
function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function sliceAsync(
  fn: () => Promise<void>,
  opsPerCall: number,
  minMs: number,
  clock: "wall" | "cpu" = "wall",
): Promise<number> {
  let calls = 0;
  const start = performance.now();
  const cpu0 = clock === "cpu" ? cpuMicros() : 0;
  let now = start;
  while (now - start < minMs) {
    await fn();
    calls++;
    now = performance.now();
  }
  if (clock === "cpu") return (calls * opsPerCall * 1e6) / Math.max(1, cpuMicros() - cpu0);
  return (calls * opsPerCall * 1000) / (now - start);
}

/** The async twin of measureRate, for work that awaits. */
export async function measureRateAsync(
  fn: () => Promise<void>,
  opsPerCall = 1,
  minMs = 400,
): Promise<number> {
  const warmUntil = performance.now() + minMs / 4;
  while (performance.now() < warmUntil) await fn();
  return sliceAsync(fn, opsPerCall, minMs);
}

export interface RotationOptions {
  /** Rounds; each measures every contender once (at least MIN_REPS). */
  rounds?: number;
  /** Length of one measurement. */
  sliceMs?: number;
  /** Operations per call of a contender. */
  opsPerCall?: number;
  /**
   * "wall" (default): operations per second of elapsed time. "cpu": per second of this
   * process's CPU time — on a shared machine, the time the process waited for a core does
   * not count, so a slice that other jobs preempted does not read as a slow contender.
   */
  clock?: "wall" | "cpu";
}

/**
 * Measures several contenders in rounds, one slice each per round, the order rotating from
 * round to round: each contender gets `rounds` rates, and the contenders of one round were
 * measured within a few slices of each other, so their per-round ratios share the load of
 * that moment. Each contender is warmed up before the first round.
 */
export async function measureRotation(
  contenders: readonly { name: string; fn: () => Promise<void> | void }[],
  opts: RotationOptions = {},
): Promise<Map<string, number[]>> {
  const rounds = Math.max(MIN_REPS, opts.rounds ?? MIN_REPS);
  const sliceMs = opts.sliceMs ?? 250;
  const ops = opts.opsPerCall ?? 1;
  const rates = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (const c of contenders) {
    const warmUntil = performance.now() + sliceMs / 2;
    while (performance.now() < warmUntil) await c.fn();
  }
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < contenders.length; i++) {
      const c = contenders[(i + r) % contenders.length];
      rates.get(c.name)!.push(await sliceAsync(async () => c.fn(), ops, sliceMs, opts.clock));
    }
  }
  return rates;
}

/** A figure measured in rounds against a baseline measured in the same rounds. */
export function rotationResult(
  rates: Map<string, number[]>,
  name: string,
  unit: string,
  baseline?: { name: string; of: string },
  label = name,
): BenchResult {
  const samples = rates.get(name);
  if (!samples) throw new Error(`no measurement named ${name}`);
  const r: BenchResult = { name: label, value: median(samples), unit, samples };
  if (baseline) {
    const b = rates.get(baseline.of);
    if (!b) throw new Error(`no measurement named ${baseline.of}`);
    r.baseline = { name: baseline.name, value: median(b), samples: b };
    r.ratios = samples.map((v, i) => v / b[i]);
  }
  return r;
}

/** The figure, its baseline and its ratio, each as a spread over the repetitions. */
export function spreads(r: BenchResult): { value: Spread; baseline?: Spread; ratio?: Spread } {
  const value = spreadOf(r.samples?.length ? r.samples : [r.value]);
  if (!r.baseline) return { value };
  const bs = r.baseline.samples?.length ? r.baseline.samples : [r.baseline.value];
  const baseline = spreadOf(bs);
  let ratios = r.ratios;
  if (!ratios?.length && r.samples?.length && r.samples.length === bs.length)
    ratios = r.samples.map((v, i) => v / bs[i]);
  return {
    value,
    baseline,
    ratio: spreadOf(ratios?.length ? ratios : [r.value / baseline.median]),
  };
}

/** The ratio the goal is judged on: the median of the same-run ratios. */
export function ratio(r: BenchResult): number | undefined {
  return spreads(r).ratio?.median;
}

/** True when every figure of a suite's results already carries MIN_REPS repetitions. */
export function repeatedEnough(results: readonly BenchResult[]): boolean {
  return results.every((r) => (r.samples?.length ?? 0) >= MIN_REPS);
}

/**
 * Folds several runs of a suite that returns plain figures into one result per figure,
 * matched by position (a figure's name may carry a count that changes from run to run: then
 * every distinct name is kept). Each run's value/baseline pair is one same-run ratio.
 */
export function combineRepetitions(runs: readonly BenchResult[][]): BenchResult[] {
  if (runs.length === 0) return [];
  const n = runs[0].length;
  if (runs.some((r) => r.length !== n))
    throw new Error("a suite returned a different number of figures in one repetition");
  return runs[0].map((first, i) => {
    const reps = runs.map((r) => r[i]);
    const names = [...new Set(reps.map((r) => r.name))];
    const samples = reps.map((r) => r.value);
    const out: BenchResult = {
      ...first,
      name: names.join(" | "),
      value: median(samples),
      samples,
    };
    if (reps.every((r) => r.baseline)) {
      const bs = reps.map((r) => r.baseline!.value);
      out.baseline = { name: first.baseline!.name, value: median(bs), samples: bs };
      out.ratios = reps.map((r) => r.value / r.baseline!.value);
    } else delete out.baseline;
    return out;
  });
}
