/**
 * The benchmark harness. Every goal is a ratio against a baseline measured in the same
 * process, in the same run, so the figures mean the same thing on any machine.
 */
import { performance } from "node:perf_hooks";

export interface BenchResult {
  /** What was measured, e.g. "user read 8 MiB through a mapping". */
  name: string;
  /** The measured figure in its unit. */
  value: number;
  unit: string;
  /** The baseline measured in the same run, in the same unit. */
  baseline?: { name: string; value: number };
  /** The goal, as a minimum ratio value/baseline (e.g. 0.5 = "at least half"). */
  goal?: { minRatio: number; text: string };
}

export interface BenchSuite {
  name: string;
  run(): Promise<BenchResult[]>;
}

/**
 * Runs `fn` repeatedly for at least `minMs` (after a warm-up) and returns operations per
 * second, where one call of `fn` performs `opsPerCall` operations.
 */
export function measureRate(fn: () => void, opsPerCall = 1, minMs = 400): number {
  const warmUntil = performance.now() + minMs / 4;
  while (performance.now() < warmUntil) fn();
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

/** The async twin of measureRate, for work that awaits. */
export async function measureRateAsync(
  fn: () => Promise<void>,
  opsPerCall = 1,
  minMs = 400,
): Promise<number> {
  const warmUntil = performance.now() + minMs / 4;
  while (performance.now() < warmUntil) await fn();
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < minMs) {
    await fn();
    calls++;
    now = performance.now();
  }
  return (calls * opsPerCall * 1000) / (now - start);
}

export function ratio(r: BenchResult): number | undefined {
  return r.baseline ? r.value / r.baseline.value : undefined;
}
