/**
 * bench/main.ts runs every suite in a process of its own, one after the other: a suite's
 * figures never depend on what ran before it in the same process (issue 16: the SIGBUS
 * round trip was 0.8 µs alone and 1.5 µs after the compositor suite), --json still collects
 * every suite's figures, and a suite that dies is reported without losing the others.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = mkdtempSync(join(tmpdir(), "shmlab-bench-main-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A suite whose one figure says whether an earlier suite ran in this process (the global
 * the first suite sets), with this process's pid as its baseline's name.
 */
const suite = (name: string, extra = "") => `
${extra}
const seen = (globalThis as { benchMarker?: boolean }).benchMarker === true ? 1 : 0;
(globalThis as { benchMarker?: boolean }).benchMarker = true;
export default {
  name: "${name}",
  async run() {
    return [{
      name: "earlier suite seen", value: seen, unit: "x", samples: [1, 1, 1, 1, 1].map(() => seen),
      baseline: { name: String(process.pid), value: 1, samples: [1, 1, 1, 1, 1] },
      goal: { minRatio: 0, text: "none" },
    }];
  },
};
`;

writeFileSync(join(dir, "a.bench.ts"), suite("first"));
writeFileSync(join(dir, "b.bench.ts"), suite("second"));
writeFileSync(join(dir, "c.bench.ts"), suite("dies", 'throw new Error("suite c dies");'));
writeFileSync(join(dir, "d.bench.ts"), suite("after the dead one"));

function bench(...args: string[]) {
  return spawnSync(
    process.execPath,
    ["--import", "tsx", join(repo, "bench/main.ts"), "--dir", dir, ...args],
    { cwd: repo, encoding: "utf8", timeout: 60_000 },
  );
}

describe("npm run bench: one process per suite", () => {
  it("runs each suite fresh, collects every figure in --json, and reports a suite that died", () => {
    const json = join(dir, "out.json");
    const r = bench("--json", json);
    expect(r.stdout).toContain("## first");
    expect(r.stdout).toContain("## second");
    expect(r.stdout).toContain("## after the dead one");
    expect(r.stdout).toMatch(/c\.bench\.ts: exited with status 1; no figures/);
    expect(r.stdout).toContain("1 suite(s) failed: c.bench.ts");
    expect(r.status).toBe(1);
    const report = JSON.parse(readFileSync(json, "utf8")) as {
      suite: string;
      results: { value: number; baseline: { name: string } }[];
    }[];
    expect(report.map((s) => s.suite)).toEqual(["first", "second", "after the dead one"]);
    // No suite saw the one before it, and each ran in a process of its own.
    expect(report.map((s) => s.results[0].value)).toEqual([0, 0, 0]);
    const pids = report.map((s) => s.results[0].baseline.name);
    expect(new Set(pids).size).toBe(3);
    expect(pids).not.toContain(String(r.pid));
  });

  it("runs only the suites named, and exits 0 when every one gave its figures", () => {
    const r = bench("b.bench");
    expect(r.stdout).toContain("## second");
    expect(r.stdout).not.toContain("## first");
    expect(r.stdout).toContain("all goals met");
    expect(r.status).toBe(0);
  });
});
