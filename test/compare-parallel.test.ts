/**
 * A comparison spread over piscina workers gives the single-thread comparison's records,
 * byte for byte (verdicts, digests, timelines, traces), in the same order.
 */

import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { type CompareOptions, type CompareResult, compare } from "../lab/compare.ts";
import { compareParallel, defaultWorkers, threadsFor } from "../lab/compare-parallel.ts";
import { idleCores } from "../lab/idle-cores.ts";

const OPTS: CompareOptions = {
  policies: ["none", "libwayland", "wlroots"],
  behaviours: ["honest-renderer", "truncate-during-read", "pool-larger-than-file", "shrink-regrow"],
  seed: 3,
  seeds: 2,
  variant: "standard",
  kernelFeatures: [],
  frames: 6,
  honest: 1,
  trace: true,
};

/** The result without its wall-clock figures (the only facts that are not deterministic). */
function deterministic(r: CompareResult): string {
  const { elapsedMs: _e, ...rest } = r;
  return JSON.stringify({
    ...rest,
    runs: r.runs.map((x) => ({ ...x, cost: { ...x.cost, msPerFrame: 0 } })),
  });
}

describe("compare over worker threads", () => {
  const single = compare(OPTS);

  it("gives the single thread's records byte for byte when every run is made in a worker", async () => {
    const stats = { byWorkers: 0, threads: 0 };
    const par = await compareParallel(OPTS, { workers: 2, mainThreadRuns: false, stats });
    expect(stats).toEqual({ byWorkers: single.runs.length, threads: 2 });
    expect(par.runs.map((r) => r.digest)).toEqual(single.runs.map((r) => r.digest));
    expect(deterministic(par)).toBe(deterministic(single));
  }, 60_000);

  it("gives them too when this thread and a worker share the runs", async () => {
    const stats = { byWorkers: 0, threads: 0 };
    const par = await compareParallel(OPTS, { workers: 2, stats });
    expect(stats.threads).toBe(1);
    expect(deterministic(par)).toBe(deterministic(single));
  }, 60_000);

  it("a worker that cannot start is an error, even when this thread could run every task", async () => {
    // The worker loads behaviourFiles; this thread has its behaviours registered already.
    const broken = { ...OPTS, behaviourFiles: ["/nonexistent/shmlab-attack.ts"] };
    await expect(compareParallel(broken, { workers: 2 })).rejects.toThrow(/nonexistent/);
  }, 60_000);

  it("keeps the single-thread path for one worker", async () => {
    const stats = { byWorkers: -1, threads: -1 };
    const par = await compareParallel(OPTS, { workers: 1, stats });
    expect(stats).toEqual({ byWorkers: 0, threads: 0 });
    expect(deterministic(par)).toBe(deterministic(single));
  });

  it("reports progress up to the number of runs", async () => {
    const seen: [number, number][] = [];
    await compareParallel(
      { ...OPTS, onProgress: (done, total) => seen.push([done, total]) },
      { workers: 2, mainThreadRuns: false },
    );
    expect(seen.at(-1)).toEqual([24, 24]);
    expect(seen.every(([d, t]) => t === 24 && d <= 24)).toBe(true);
  }, 60_000);

  it("gives each thread the cores its V8 background work needs: one thread on two cores", () => {
    // One thread of the matrix keeps ~1.8 cores busy (its compiler and GC threads).
    expect(threadsFor(2, 2)).toBe(1);
    expect(threadsFor(4, 4)).toBe(2);
    expect(threadsFor(8, 8)).toBe(4);
    expect(threadsFor(8, 3.5)).toBe(1);
    expect(threadsFor(4, 0.2)).toBe(1);
    expect(threadsFor(2, 64)).toBe(2);
  });

  it("chooses the threads by how idle the cores stayed", () => {
    const idle = idleCores();
    if (idle !== undefined) {
      expect(idle).toBeGreaterThanOrEqual(0);
      expect(idle).toBeLessThanOrEqual(availableParallelism() + 0.01);
    }
    const w = defaultWorkers();
    expect(w).toBeGreaterThanOrEqual(1);
    expect(w).toBeLessThanOrEqual(availableParallelism());
  });
});

describe("a user's behaviour file in a comparison over worker threads", () => {
  it("every worker registers it (behaviourFiles) and runs it", () => {
    // A real node + tsx process: vitest's own module loader is not what the workers have.
    const repo = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
    const script = `
      const { loadBehaviour } = await import(${JSON.stringify(`${repo}/client/behaviours/index.ts`)});
      const { compareParallel } = await import(${JSON.stringify(`${repo}/lab/compare-parallel.ts`)});
      const file = ${JSON.stringify(`${repo}/test/fixtures/behaviours/own-attack.ts`)};
      await loadBehaviour(file);
      const stats = { byWorkers: 0, threads: 0 };
      const r = await compareParallel(
        { policies: ["libwayland", "none", "wlroots", "kwin"], behaviours: ["test-own-attack", "truncate-after-commit"],
          seed: 1, seeds: 1, variant: "standard", kernelFeatures: [], frames: 6, honest: 1, behaviourFiles: [file] },
        { workers: 1, mainThreadRuns: false, stats });
      console.log(JSON.stringify({ stats, cells: r.cells.map((c) => c.policy + "/" + c.behaviour + ":" + c.text) }));`;
    const p = spawnSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      {
        cwd: repo,
        encoding: "utf8",
      },
    );
    expect(p.stderr).toBe("");
    const out = JSON.parse(p.stdout.trim().split("\n").at(-1)!) as {
      stats: { byWorkers: number; threads: number };
      cells: string[];
    };
    expect(out.stats).toEqual({ byWorkers: 8, threads: 1 });
    expect(out.cells).toContain("libwayland/test-own-attack:invalid_fd");
    expect(out.cells).toContain("none/test-own-attack:DIED SIGBUS");
  });
});

describe("a proposal's rules file (--protocol/--rules) in a comparison over worker threads", () => {
  it("every worker loads the .ts rules and runs them: the same cells as one thread", () => {
    // A real node + tsx process, as above: in a piscina worker import() of a .ts file fails
    // (ERR_UNKNOWN_FILE_EXTENSION) and, with every run taken by this thread, went unseen.
    const repo = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
    const ex = (f: string) => JSON.stringify(`${repo}/examples/protocols/${f}`);
    const script = `
      const { ensureProposalVariant, proposalName } = await import(${JSON.stringify(`${repo}/protocol/proposal.ts`)});
      const { compare } = await import(${JSON.stringify(`${repo}/lab/compare.ts`)});
      const { compareParallel } = await import(${JSON.stringify(`${repo}/lab/compare-parallel.ts`)});
      const variant = proposalName(${ex("checked-pool-size.xml")}, ${ex("checked-pool-size.ts")});
      await ensureProposalVariant(variant);
      const opts = { policies: ["libwayland", "none", "wlroots", "kwin"],
        behaviours: ["pool-larger-than-file", "honest-renderer"],
        seed: 1, seeds: 1, variant, kernelFeatures: [], frames: 6, honest: 1 };
      const cells = (r) => r.cells.map((c) => c.policy + "/" + c.behaviour + ":" + c.text);
      const stats = { byWorkers: 0, threads: 0 };
      const par = await compareParallel(opts, { workers: 1, mainThreadRuns: false, stats });
      console.log(JSON.stringify({ stats, par: cells(par), one: cells(compare(opts)) }));`;
    const p = spawnSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      {
        cwd: repo,
        encoding: "utf8",
      },
    );
    expect(p.stderr).toBe("");
    const out = JSON.parse(p.stdout.trim().split("\n").at(-1)!) as {
      stats: { byWorkers: number; threads: number };
      par: string[];
      one: string[];
    };
    expect(out.stats).toEqual({ byWorkers: 8, threads: 1 });
    expect(out.par).toEqual(out.one);
    // The rules' create_pool hook ran in the worker: the proposal's own error.
    expect(out.par).toContain("none/pool-larger-than-file:size_beyond_file");
  });
});
