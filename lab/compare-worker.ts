/**
 * The piscina entry of a comparison spread over threads (lab/compare-parallel.ts): the
 * thread takes the next task index from a counter shared by every thread, runs it exactly
 * as the single-thread compare does, and returns its records tagged with their indexes.
 * Taking tasks one at a time from the counter spreads uneven runs evenly over the threads.
 */
import { ensureProposalVariant } from "../protocol/proposal.ts";
import type { CompareTask, RunSettings } from "./compare.ts";
import { runTask } from "./compare.ts";
import type { RunRecord } from "./record.ts";

export interface CompareWork {
  tasks: CompareTask[];
  settings: RunSettings;
  /** [next task to take, tasks done]: shared by every thread of the comparison. */
  counter: Int32Array;
}

/** The slots of CompareWork.counter. */
export const NEXT = 0;
export const DONE = 1;

/** Takes and runs tasks until none is left. */
function drain(work: CompareWork, out: [number, RunRecord][]): void {
  for (;;) {
    const i = Atomics.add(work.counter, NEXT, 1);
    if (i >= work.tasks.length) return;
    out.push([i, runTask(work.tasks[i], work.settings)]);
    Atomics.add(work.counter, DONE, 1);
  }
}

export default async function compareWorker(work: CompareWork): Promise<[number, RunRecord][]> {
  // A proposal variant (--protocol) is registered per thread, from the files its name gives.
  await ensureProposalVariant(work.settings.variant);
  const out: [number, RunRecord][] = [];
  drain(work, out);
  return out;
}
