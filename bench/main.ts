/**
 * `npm run bench`: runs every bench/*.bench.ts suite (or those named on the command line)
 * and prints each figure with its same-run baseline, the ratio, and whether the goal is met.
 */
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type BenchResult, type BenchSuite, ratio } from "./harness.ts";

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
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

let missed = 0;
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: BenchSuite };
  const suite = mod.default;
  console.log(`\n## ${suite.name}`);
  const results: BenchResult[] = await suite.run();
  for (const r of results) {
    const q = ratio(r);
    let line = `  ${r.name}: ${fmt(r.value)} ${r.unit}`;
    if (r.baseline) line += `  (baseline ${r.baseline.name}: ${fmt(r.baseline.value)} ${r.unit})`;
    if (q !== undefined) line += `  ratio ${q.toFixed(3)}`;
    if (r.goal && q !== undefined) {
      const ok = q >= r.goal.minRatio;
      if (!ok) missed++;
      line += `  goal ${r.goal.text}: ${ok ? "met" : "MISSED"}`;
    }
    console.log(line);
  }
}
console.log(missed === 0 ? "\nall goals met" : `\n${missed} goal(s) missed`);
