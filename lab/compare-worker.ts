/**
 * The piscina entry of a comparison spread over threads (lab/compare-parallel.ts): the
 * thread takes the next task index from a counter shared by every thread, runs it exactly
 * as the single-thread compare does, and returns its records tagged with their indexes.
 * Taking tasks one at a time from the counter spreads uneven runs evenly over the threads.
 */
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import type { Behaviour } from "../client/behaviour.ts";
import { loadBehaviour, registerBehaviour } from "../client/behaviours/index.ts";
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

/**
 * A user's behaviour file, registered in this thread. A piscina worker has tsx's require
 * hook but not its ESM loader, so import() of a .ts file fails there
 * (ERR_UNKNOWN_FILE_EXTENSION): the file is then required (tsx compiles it to CommonJS) and
 * registered as loadBehaviour would, with the same shape check.
 */
async function loadInThread(file: string): Promise<void> {
  try {
    await loadBehaviour(file);
    return;
  } catch (e) {
    if ((e as { code?: string }).code !== "ERR_UNKNOWN_FILE_EXTENSION") throw e;
  }
  const m = createRequire(import.meta.url)(file) as { default?: unknown; behaviour?: unknown };
  registerBehaviour((m.default ?? m.behaviour) as Behaviour);
}

/**
 * A module of the user's (a proposal's rules file) loaded in this thread: import(), or, for
 * a .ts file that import() cannot load here (ERR_UNKNOWN_FILE_EXTENSION, as above), require.
 */
async function importInThread(path: string): Promise<{ default?: unknown }> {
  try {
    return (await import(pathToFileURL(path).href)) as { default?: unknown };
  } catch (e) {
    if ((e as { code?: string }).code !== "ERR_UNKNOWN_FILE_EXTENSION") throw e;
  }
  return createRequire(import.meta.url)(path) as { default?: unknown };
}

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
  await ensureProposalVariant(work.settings.variant, importInThread);
  // Users' behaviour files (--behaviours ./file.ts) are registered per thread too.
  for (const f of work.settings.behaviourFiles ?? []) await loadInThread(f);
  const out: [number, RunRecord][] = [];
  drain(work, out);
  return out;
}
