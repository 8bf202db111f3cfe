/**
 * The soak's attackers (cli/soak.ts `attackers`), in a worker thread of their own: the
 * honest clients' roundtrips then measure the server, not the soak process's own event
 * loop busy building 1 MiB syscalls and reading 1 MiB replies for the attackers, as real
 * attackers would be other processes. Posts {refusals, attacks} when the attack is over.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Rng } from "../lab/rng.ts";
import { attackers, type Ctx } from "./soak.ts";

export interface AttackWorkerData {
  url: string;
  seed: number;
  /** The attack's start and end, as Date.now() values (the worker starts before it). */
  startAt: number;
  endAt: number;
}

export interface AttackWorkerResult {
  refusals: Record<string, number>;
  attacks: Record<string, number>;
}

const data = workerData as AttackWorkerData;
const refusals: Record<string, number> = {};
const attacks: Record<string, number> = {};
const gen = new Rng(data.seed);
await new Promise((r) => setTimeout(r, Math.max(0, data.startAt - Date.now())));
const ctx: Ctx = {
  url: data.url,
  t0: performance.now(),
  stop: () => Date.now() >= data.endAt,
  refused: (k) => {
    refusals[k] = (refusals[k] ?? 0) + 1;
  },
  attacked: (k) => {
    attacks[k] = (attacks[k] ?? 0) + 1;
  },
  rand: () => gen.u32() / 2 ** 32,
  seed: data.seed,
};
await Promise.all(attackers(ctx));
parentPort?.postMessage({ refusals, attacks } satisfies AttackWorkerResult);
