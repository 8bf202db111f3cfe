/**
 * A comparison spread over every core: the runs of planCompare go to piscina worker threads
 * (lab/compare-worker.ts) and to this thread, each taking the next run from one shared
 * counter, and the records are put back in task order. A run depends only on its spec (its
 * seed, its own kernel and compositor), so the result is the single-thread compare's, byte
 * for byte, whatever thread ran what (test/compare-parallel.test.ts checks it).
 */
import { availableParallelism, loadavg } from "node:os";
import { Piscina } from "piscina";
import { parseProposalName } from "../protocol/proposal.ts";
import {
  assembleCompare,
  type CompareOptions,
  type CompareResult,
  compare,
  planCompare,
  runTask,
} from "./compare.ts";
import { type CompareWork, DONE, NEXT } from "./compare-worker.ts";
import { idleCores } from "./idle-cores.ts";
import type { RunRecord } from "./record.ts";
import { workerEntry } from "./worker-bundle.ts";

const WORKER = new URL("./compare-worker.ts", import.meta.url);

/**
 * Cores one thread of a comparison keeps busy: its own, plus V8's background threads working
 * for it — the optimizing compiler (TurboFan compiles on helper threads; each thread's
 * isolate compiles the whole simulation again) and the garbage collector's concurrent and
 * parallel phases. Measured with per-thread CPU times (bench/thread-cpu.ts) on the default
 * matrix from a fresh process: 1.41–1.47 CPU-s of background threads for 1.73–1.91 CPU-s of
 * the JavaScript thread (about 1.1 of it the compiler: `--single-threaded-gc` moves only
 * ~0.35 s to the main thread, `--no-concurrent-recompilation` ~1.1 s; docs/performance.md).
 */
export const CORES_PER_THREAD = 1.8;

/**
 * Threads for `free` cores of `cores`: as many as fit with their background work, at least
 * one. On 2 cores that is one: a second thread's JavaScript and its own compiler and GC work
 * make the comparison's total CPU 1.3–1.4× one thread's, more than the second core can
 * absorb (2 idle cores: 2.16 s on one thread, 2.40 s on two, docs/performance.md).
 */
export function threadsFor(cores: number, free: number): number {
  return Math.max(1, Math.min(cores, Math.floor(free / CORES_PER_THREAD)));
}

/**
 * Threads a comparison uses by default: as many as fit (threadsFor) in this thread's core
 * plus the cores that sat idle while the sources loaded (the load average when that window
 * is too short). Where other work keeps the cores busy a second thread only adds its
 * start-up: Linux schedules by autogroup, so our threads split our session's share of the
 * CPU instead of adding to it (measured at load 14 on 2 cores: 23 s over two threads against
 * 12 s in one; docs/performance.md).
 */
export function defaultWorkers(): number {
  const cores = availableParallelism();
  const idle = idleCores();
  const free = idle === undefined ? Math.max(1, cores - loadavg()[0]) : 1 + idle;
  return threadsFor(cores, free);
}

/**
 * Below this many runs per thread a worker costs about as much as the runs it would take:
 * its start-up (about 0.13 CPU-s from the bundled entry, lab/worker-bundle.ts) is the time
 * of about 10 runs of the default matrix in a thread whose code is still cold (12 ms each,
 * against 7.5 ms warm: docs/performance.md, "Compositing and npm start"). The comparison
 * then stays in this thread.
 */
const MIN_RUNS_PER_THREAD = 8;

export interface ParallelOptions {
  /** Threads in all, this one included (1: the single-thread compare, unchanged). */
  workers?: number;
  /**
   * This thread runs tasks too (default), yielding to the event loop between runs so that
   * piscina hands the workers their share as soon as they have started. False: only the
   * workers run tasks (the tests use it to send every record through a worker).
   */
  mainThreadRuns?: boolean;
  /** Filled in: how many runs the workers made. */
  stats?: { byWorkers: number; threads: number };
}

/** `compare` over several threads, with the same result. */
export async function compareParallel(
  opts: CompareOptions,
  popts: ParallelOptions = {},
): Promise<CompareResult> {
  const t0 = performance.now();
  const plan = planCompare(opts);
  const n = plan.tasks.length;
  const workers = popts.workers ?? defaultWorkers();
  const mainRuns = popts.mainThreadRuns ?? true;
  const threads = Math.min(
    mainRuns ? workers - 1 : workers,
    Math.floor(n / MIN_RUNS_PER_THREAD) - (mainRuns ? 1 : 0),
  );
  const stats = popts.stats ?? { byWorkers: 0, threads: 0 };
  stats.byWorkers = 0;
  stats.threads = 0;
  if (threads < 1) return compare(opts);
  stats.threads = threads;
  const work: CompareWork = {
    tasks: plan.tasks,
    settings: {
      seed: opts.seed,
      variant: opts.variant,
      kernelFeatures: opts.kernelFeatures,
      frames: opts.frames,
      honest: opts.honest,
      images: opts.images,
      trace: opts.trace,
      ...(opts.behaviourFiles?.length ? { behaviourFiles: opts.behaviourFiles } : {}),
    },
    counter: new Int32Array(new SharedArrayBuffer(8)),
  };
  // A user's .ts file (a behaviour, a proposal's rules) can only be imported through tsx.
  const userFiles = !!opts.behaviourFiles?.length || !!parseProposalName(opts.variant)?.rules;
  const entry = await workerEntry(WORKER, {
    needsTsx: userFiles ? "the workers import a user's file" : undefined,
  });
  const pool = new Piscina({
    filename: entry.filename,
    minThreads: threads,
    maxThreads: threads,
    concurrentTasksPerWorker: 1,
    execArgv: entry.execArgv,
  });
  // Each worker's promise is settled into this array, so that a rejection is never
  // unhandled while this thread is busy running tasks; it is rethrown below.
  const settled = Array.from({ length: threads }, () =>
    pool.run(work).then(
      (v: [number, RunRecord][]) => ({ ok: true as const, v }),
      (e: unknown) => ({ ok: false as const, e }),
    ),
  );
  const runs: RunRecord[] = new Array(n);
  const mine: [number, RunRecord][] = [];
  let last: RunRecord | undefined;
  const progress = () => {
    if (last) opts.onProgress?.(Atomics.load(work.counter, DONE), n, last);
  };
  try {
    // One task at a time, with an event-loop turn between: piscina dispatches from here.
    while (mainRuns && Atomics.load(work.counter, NEXT) < n) {
      const before = mine.length;
      drainOne(work, mine);
      if (mine.length > before) {
        last = mine[mine.length - 1][1];
        progress();
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    const timer = setInterval(progress, 100);
    try {
      // Every worker is waited for, even when this thread ran every task: a worker that
      // failed (a module it could not load) is an error, never a silent fallback to here.
      const results = await Promise.all(settled);
      for (const r of results) if (!r.ok) throw r.e;
      return finish([...mine, ...results.flatMap((r) => (r.ok ? r.v : []))]);
    } finally {
      clearInterval(timer);
    }
  } finally {
    // Stop every thread from taking more, then end the pool (also on failure here).
    Atomics.store(work.counter, NEXT, n);
    await pool.destroy();
  }

  function finish(tagged: [number, RunRecord][]): CompareResult {
    for (const [i, r] of tagged) runs[i] = r;
    stats.byWorkers = tagged.length - mine.length;
    const got = new Set(tagged.map(([i]) => i));
    if (got.size !== n || tagged.length !== n)
      throw new Error(`parallel compare: ${got.size} distinct records of ${n} runs`);
    opts.onProgress?.(n, n, runs[n - 1]);
    return assembleCompare(opts, plan, runs, performance.now() - t0);
  }
}

/** Takes and runs one task in this thread (if any is left). */
function drainOne(work: CompareWork, out: [number, RunRecord][]): void {
  const i = Atomics.add(work.counter, NEXT, 1);
  if (i >= work.tasks.length) return;
  out.push([i, runTask(work.tasks[i], work.settings)]);
  Atomics.add(work.counter, DONE, 1);
}
