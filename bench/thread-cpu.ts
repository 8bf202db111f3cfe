/**
 * CPU time per thread of this process, from Linux's /proc/self/task/<tid>/stat (utime and
 * stime, in clock ticks of 10 ms), so that a benchmark can tell the JavaScript threads (this
 * one, piscina's workers) from V8's own background threads (the garbage collector's
 * concurrent marking, sweeping and parallel scavenges, the optimizing compiler): with one
 * JavaScript thread those run on the other cores for free; with one JavaScript thread per
 * core they compete with the workers for the same cores.
 */
import { readdirSync, readFileSync } from "node:fs";

/** USER_HZ: what /proc counts in (100 on every Linux architecture Node runs on). */
const MS_PER_TICK = 10;

/** CPU-ms of each thread by tid; undefined where /proc/self/task is not there. */
export function threadCpu(): Map<number, number> | undefined {
  let tids: string[];
  try {
    tids = readdirSync("/proc/self/task");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  const out = new Map<number, number>();
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    } catch (e) {
      // The thread ended between the listing and the read.
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    // Fields after the command name "(...)": state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.set(Number(tid), (Number(f[11]) + Number(f[12])) * MS_PER_TICK);
  }
  return out;
}

/** This process's CPU-ms, every thread, ended ones included. */
export function processCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export interface CpuSplit {
  /** Every thread, ended ones included. */
  total: number;
  /** This (the main) thread. */
  main: number;
  /** Threads started after `known` was taken (the workers), ended ones included. */
  workers: number;
  /** The other threads that existed when `known` was taken: V8's and libuv's. */
  background: number;
}

/**
 * Where the CPU went between two samples (`threadCpu` and `processCpu` at each end).
 * `known`: the threads that existed before any worker was started.
 */
export function cpuSplit(
  known: ReadonlySet<number>,
  before: { threads: Map<number, number>; total: number },
  after: { threads: Map<number, number>; total: number },
): CpuSplit {
  const d = (tid: number) => (after.threads.get(tid) ?? 0) - (before.threads.get(tid) ?? 0);
  const main = d(process.pid);
  let background = 0;
  for (const tid of after.threads.keys())
    if (tid !== process.pid && known.has(tid)) background += d(tid);
  const total = after.total - before.total;
  return { total, main, background, workers: Math.max(0, total - main - background) };
}

/** A sample for cpuSplit, or undefined off Linux. */
export function cpuSample(): { threads: Map<number, number>; total: number } | undefined {
  const threads = threadCpu();
  return threads && { threads, total: processCpu() };
}
