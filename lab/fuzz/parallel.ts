/**
 * `shmlab fuzz --workers N`: the same loop as `fuzz` (fuzz.ts fuzzLoop), its cases run on N
 * piscina worker threads. The loop hands out a batch of BATCH cases chosen from what was
 * observed before the batch, and folds their outcomes back in case order, so the same seed
 * gives the same cases, corpus and findings with 1, 2 or 8 workers: only the time differs.
 * Shrinking and writing findings stay on this thread (a finding's case is rerun here).
 */
import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import type { FuzzCase } from "./case.ts";
import { type CaseOutcome, type FuzzOptions, type FuzzReport, fuzzLoop } from "./fuzz.ts";

const WORKER = new URL("./case-worker.ts", import.meta.url).href;

/** A pool of case workers, each with the policy loaded (before the clock matters). */
export async function casePool(threads: number, policyArg: string): Promise<Piscina> {
  const n = Math.max(1, Math.min(threads, 4 * availableParallelism()));
  const pool = new Piscina({
    filename: WORKER,
    minThreads: n,
    maxThreads: n,
    concurrentTasksPerWorker: 1,
    idleTimeout: 60_000,
    execArgv: ["--import", "tsx"],
  });
  await Promise.all(Array.from({ length: n }, () => pool.run({ policyArg })));
  return pool;
}

/** The loop on `o.workers` threads (or on `given`, which the caller then destroys). */
export async function fuzzParallel(
  o: FuzzOptions & { workers: number },
  given?: Piscina,
): Promise<FuzzReport> {
  const pool = given ?? (await casePool(o.workers, o.policyArg));
  try {
    const loop = fuzzLoop(o);
    let step = loop.next(undefined as unknown as CaseOutcome[]);
    while (!step.done) {
      const batch: FuzzCase[] = step.value;
      const outs = (await Promise.all(
        batch.map((fc) => pool.run({ policyArg: o.policyArg, fc })),
      )) as CaseOutcome[];
      step = loop.next(outs);
    }
    return step.value;
  } finally {
    if (!given) await pool.destroy();
  }
}
