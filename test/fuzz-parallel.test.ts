/**
 * `fuzz --workers N` (lab/fuzz/parallel.ts): the same seed gives the same findings folder,
 * byte for byte (corpus entries, corpus.json, finding files), on one thread, on this thread
 * and workers, and on workers alone; each batch is split over the threads by a shared
 * counter, so these runs also check that outcomes are put back in case order whoever ran them.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import { type FuzzReport, fuzz } from "../lab/fuzz/fuzz.ts";
import { fuzzParallel } from "../lab/fuzz/parallel.ts";

const root = mkdtempSync(join(tmpdir(), "shmlab-fuzz-parallel-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/**
 * Every file under `dir`, by its path relative to it, with its bytes; the folder's own name
 * (a finding's replay line names it relative to the working directory) reads "<out>".
 */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const fromCwd = relative(process.cwd(), dir);
  const walk = (d: string) => {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else
        out[relative(dir, p)] = readFileSync(p, "utf8")
          .replaceAll(dir, "<out>")
          .replaceAll(fromCwd, "<out>");
    }
  };
  walk(dir);
  return out;
}

const summary = (r: FuzzReport) => ({
  runs: r.runs,
  failures: r.failures,
  features: [...r.features].sort(),
  corpus: r.corpus,
  firstSeen: r.firstSeen.map((f) => [f.signature, f.runs]),
  findings: r.findings.map((f) => [f.finding.signature, f.finding.digest, f.stable]),
});

describe("fuzz --workers", () => {
  // `none` fails within a few cases (the compositor dies of SIGBUS), so the runs write
  // finding files too; a shrink budget counted in runs keeps them deterministic.
  const o = (out: string) => ({
    policy: getPolicy("none"),
    policyArg: "none",
    seed: 3,
    runs: 40,
    out,
    shrinkRuns: 40,
    shrinkMs: 600_000,
  });

  it("writes the same findings folder on 1, 2 and 3 threads and on workers alone", async () => {
    const one = join(root, "one");
    const a = fuzz(o(one));
    expect(a.findings.length).toBeGreaterThan(0);
    expect(readdirSync(join(one, "corpus")).length).toBeGreaterThan(0);
    const runs: [string, number, boolean][] = [
      ["two", 2, true],
      ["three", 3, true],
      ["workers-only", 2, false],
    ];
    for (const [name, workers, mainThreadRuns] of runs) {
      const dir = join(root, name);
      const stats = { byWorkers: 0, byMain: 0, batches: 0 };
      const b = await fuzzParallel({ ...o(dir), workers }, undefined, { mainThreadRuns, stats });
      expect(summary(b), name).toEqual(summary(a));
      expect(tree(dir), name).toEqual(tree(one));
      // Every case ran once; all of them on the workers when this thread runs none.
      expect(stats.byMain + stats.byWorkers, name).toBe(b.runs + b.corpusRuns);
      if (!mainThreadRuns) expect(stats.byWorkers, name).toBe(b.runs + b.corpusRuns);
    }
  }, 120_000);

  it("on one thread in all is the one-thread loop", async () => {
    const stats = { byWorkers: 0, byMain: 0, batches: 0 };
    const opts = { ...o(join(root, "single")), out: undefined, workers: 1 };
    const r = await fuzzParallel(opts, undefined, { stats });
    expect(stats.byWorkers).toBe(0);
    expect(summary(r)).toEqual(summary(fuzz(opts)));
  });
});
