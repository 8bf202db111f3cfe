/**
 * `shmlab fuzz --workers N`: the same loop as `fuzz` (fuzz.ts fuzzLoop) on N threads in all,
 * this one included. The loop hands out a batch of BATCH cases chosen from what was
 * observed before the batch, and folds their outcomes back in case order, so the same seed
 * gives the same cases, corpus and findings with 1, 2 or 8 threads: only the time differs.
 *
 * A batch is one message to each worker (piscina, case-worker.ts), not one per case: every
 * thread, this one too, takes the next case from a counter in a SharedArrayBuffer until none
 * is left, and each worker answers once with its outcomes tagged by index. This thread
 * running cases means one thread fewer to start, warm up and message for the same cores.
 * Shrinking and writing findings stay on this thread (a worker's failing case is rerun here;
 * this thread's own cases keep their whole result).
 */
import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import { policyNames } from "../../compositor/policies/index.ts";
import { workerEntry } from "../worker-bundle.ts";
import type { FuzzCase } from "./case.ts";
import { type BatchWork, drainBatch } from "./case-worker.ts";
import { type CaseOutcome, type FuzzOptions, type FuzzReport, fuzz, fuzzLoop } from "./fuzz.ts";

const WORKER = new URL("./case-worker.ts", import.meta.url);

/** A policy given as a file (loadPolicy's rule: a slash or a .ts/.js/.mjs ending). */
function isPolicyPath(arg: string): boolean {
  return !policyNames().includes(arg) && /[\\/]|\.(ts|js|mjs)$/.test(arg);
}

/**
 * A pool of `threads` case workers, each with the policy loaded (before the clock
 * matters). The threads load case-worker.ts bundled (lab/worker-bundle.ts), or through tsx
 * when the policy is a user's file.
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

export interface FuzzParallelOptions {
  /**
   * This thread runs cases too (default). False: only the workers do (the tests use it to
   * send every outcome through a worker).
   */
  mainThreadRuns?: boolean;
  /** Filled in: cases (corpus replays included) run by the workers and by this thread. */
  stats?: { byWorkers: number; byMain: number; batches: number };
}

/**
 * The loop on `o.workers` threads in all, this one included (or on this thread and the
 * threads of `given`, which the caller then destroys). One thread: `fuzz`, unchanged.
 */
export async function fuzzParallel(
  o: FuzzOptions & { workers: number },
  given?: Piscina,
  popts: FuzzParallelOptions = {},
): Promise<FuzzReport> {
  const mainRuns = popts.mainThreadRuns ?? true;
  const poolThreads = given ? given.threads.length : mainRuns ? o.workers - 1 : o.workers;
  const stats = popts.stats ?? { byWorkers: 0, byMain: 0, batches: 0 };
  Object.assign(stats, { byWorkers: 0, byMain: 0, batches: 0 });
  if (poolThreads < 1) {
    const r = fuzz(o);
    stats.byMain = r.runs + r.corpusRuns;
    return r;
  }
  const pool = given ?? (await casePool(poolThreads, o.policyArg));
  try {
    const loop = fuzzLoop(o);
    let step = loop.next(undefined as unknown as CaseOutcome[]);
    while (!step.done) {
      step = loop.next(await runBatch(step.value, o, pool, poolThreads, mainRuns, stats));
    }
    return step.value;
  } finally {
    if (!given) await pool.destroy();
  }
}

/** One batch over every thread; the outcomes in case order. */
async function runBatch(
  cases: FuzzCase[],
  o: FuzzOptions,
  pool: Piscina,
  threads: number,
  mainRuns: boolean,
  stats: NonNullable<FuzzParallelOptions["stats"]>,
): Promise<CaseOutcome[]> {
  const work: BatchWork = {
    policyArg: o.policyArg,
    cases,
    counter: new Int32Array(new SharedArrayBuffer(4)),
  };
  // Fewer cases than threads: a worker would get nothing to do but the message.
  const tasks = Math.min(threads, mainRuns ? cases.length - 1 : cases.length);
  // Each worker's promise is settled into this array, so that a rejection is never
  // unhandled while this thread is busy running cases; it is rethrown below.
  const settled = Array.from({ length: Math.max(0, tasks) }, () =>
    (pool.run(work) as Promise<[number, CaseOutcome][]>).then(
      (v) => ({ ok: true as const, v }),
      (e: unknown) => ({ ok: false as const, e }),
    ),
  );
  const mine = mainRuns ? drainBatch(work, o.policy, true) : [];
  const results = await Promise.all(settled);
  for (const r of results) if (!r.ok) throw r.e;
  const tagged = [...mine, ...results.flatMap((r) => (r.ok ? r.v : []))];
  const outs: CaseOutcome[] = new Array(cases.length);
  for (const [i, out] of tagged) outs[i] = out;
  const got = new Set(tagged.map(([i]) => i)).size;
  if (got !== cases.length || tagged.length !== cases.length)
    throw new Error(`fuzz --workers: ${got} distinct outcomes for a batch of ${cases.length}`);
  stats.byMain += mine.length;
  stats.byWorkers += tagged.length - mine.length;
  stats.batches++;
  return outs;
}
