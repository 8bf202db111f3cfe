/**
 * `npm run bench [name...] [--reps N] [--json FILE]`: runs every bench/*.bench.ts suite (or
 * those named) and prints each figure as the median of its repetitions with their spread
 * (min–max), its same-run baseline, the median of the same-run ratios with theirs, and
 * whether the goal is met. A suite that does not repeat its own measurements is run N times
 * (at least MIN_REPS, default MIN_REPS). --json writes every figure with its samples.
 */
import { readdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  type BenchResult,
  type BenchSuite,
  combineRepetitions,
  MIN_REPS,
  repeatedEnough,
  type Spread,
  spreads,
} from "./harness.ts";

const here = dirname(fileURLToPath(import.meta.url));

function parseArgs(argv: string[]): { wanted: string[]; reps: number; json?: string } {
  const wanted: string[] = [];
  let reps = MIN_REPS;
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--reps") {
      reps = Number(argv[++i]);
      if (!Number.isInteger(reps) || reps < MIN_REPS) {
        console.error(`--reps must be an integer >= ${MIN_REPS}`);
        process.exit(2);
      }
    } else if (a === "--json") json = argv[++i];
    else wanted.push(a);
  }
  return { wanted, reps, json };
}

const { wanted, reps, json } = parseArgs(process.argv.slice(2));
const files = readdirSync(here)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();

function fmt(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)}k`;
  return n.toFixed(2);
}

/** "1.23k [1.20k–1.31k]": the median, then min–max over the repetitions. */
function fmtSpread(s: Spread, f: (n: number) => string = fmt): string {
  return s.n > 1 ? `${f(s.median)} [${f(s.min)}–${f(s.max)}]` : f(s.median);
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

async function runSuite(suite: BenchSuite): Promise<BenchResult[]> {
  const first = await suite.run();
  if (suite.once || repeatedEnough(first)) return first;
  const runs = [first];
  while (runs.length < reps) runs.push(await suite.run());
  return combineRepetitions(runs);
}

console.log(`load average at start: ${load()}`);
let missed = 0;
const report: { suite: string; load: string; results: BenchResult[] }[] = [];
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: BenchSuite };
  const suite = mod.default;
  console.log(`\n## ${suite.name}`);
  const results = await runSuite(suite);
  for (const r of results) {
    const s = spreads(r);
    let line = `  ${r.name}: ${fmtSpread(s.value)} ${r.unit}`;
    if (r.baseline && s.baseline)
      line += `  (baseline ${r.baseline.name}: ${fmtSpread(s.baseline)} ${r.unit})`;
    if (s.ratio) line += `  ratio ${fmtSpread(s.ratio, (n) => n.toFixed(3))}`;
    if (r.goal && s.ratio) {
      const ok = s.ratio.median >= r.goal.minRatio;
      if (!ok) missed++;
      line += `  goal ${r.goal.text}: ${ok ? "met" : "MISSED"}`;
    }
    console.log(line);
  }
  const n = Math.min(...results.map((r) => spreads(r).value.n));
  console.log(
    suite.once
      ? `  (one run: ${suite.once}; load average now ${load()})`
      : `  (median [min–max] of >= ${n} repetitions; load average now ${load()})`,
  );
  report.push({ suite: suite.name, load: load(), results });
}
if (json) writeFileSync(json, JSON.stringify(report, null, 1));
console.log(missed === 0 ? "\nall goals met" : `\n${missed} goal(s) missed`);
