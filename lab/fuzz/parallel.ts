/**
 * `shmlab fuzz --workers N`: the same loop as `fuzz` (fuzz.ts fuzzLoop), its cases run on N
 * piscina worker threads. The loop hands out a batch of BATCH cases chosen from what was
 * observed before the batch, and folds their outcomes back in case order, so the same seed
 * gives the same cases, corpus and findings with 1, 2 or 8 workers: only the time differs.
 * Shrinking and writing findings stay on this thread (a finding's case is rerun here).
 */
import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import { policyNames } from "../../compositor/policies/index.ts";
import { workerEntry } from "../worker-bundle.ts";
import type { FuzzCase } from "./case.ts";
import { type CaseOutcome, type FuzzOptions, type FuzzReport, fuzzLoop } from "./fuzz.ts";

const WORKER = new URL("./case-worker.ts", import.meta.url);

/** A policy given as a file (loadPolicy's rule: a slash or a .ts/.js/.mjs ending). */
function isPolicyPath(arg: string): boolean {
  return !policyNames().includes(arg) && /[\\/]|\.(ts|js|mjs)$/.test(arg);
}

/**
 * A pool of case workers, each with the policy loaded (before the clock matters). The
 * threads load case-worker.ts bundled (lab/worker-bundle.ts), or through tsx when the
 * policy is a user's file.
 */
export async function casePool(threads: number, policyArg: string): Promise<Piscina> {
  const n = Math.max(1, Math.min(threads, 4 * availableParallelism()));
  const entry = await workerEntry(WORKER, {
    needsTsx: isPolicyPath(policyArg) ? `the policy is a file (${policyArg})` : undefined,
  });
  const pool = new Piscina({
    filename: entry.filename,
    minThreads: n,
    maxThreads: n,
    concurrentTasksPerWorker: 1,
    idleTimeout: 60_000,
    execArgv: entry.execArgv,
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
