/**
 * `npm run bench [name...] [--reps N] [--json FILE] [--dir DIR]`: runs every bench/*.bench.ts
 * suite (or those named; --dir: the suites of DIR instead, as the harness's tests do) and prints each figure as the median of its repetitions with their spread
 * (min–max), its same-run baseline, the median of the same-run ratios with theirs, and
 * whether the goal is met. A suite that does not repeat its own measurements is run N times
 * (at least MIN_REPS, default MIN_REPS). --json writes every figure with its samples.
 *
 * Every suite runs in a process of its own (this file again, with --suite), one after the
 * other so that no two compete for the cores: a figure then is what a fresh process gives,
 * whatever ran before it. In one shared process a suite's figures depended on the suites
 * before it (the SIGBUS round trip was 0.73–0.83 µs with `bench kernel` alone and 1.52 µs
 * as the last suite of a whole `npm run bench`: the compositor suite had grown the heap).
 */
import { type ChildProcess, fork } from "node:child_process";
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

const self = fileURLToPath(import.meta.url);

interface Args {
  wanted: string[];
  reps: number;
  json?: string;
  /** Where the suites are (bench/ unless --dir). */
  dir: string;
  /** Child mode: the one suite file (a name in `dir`) this process runs. */
  suite?: string;
}

function parseArgs(argv: string[]): Args {
  const wanted: string[] = [];
  let reps = MIN_REPS;
  let json: string | undefined;
  let suite: string | undefined;
  let dir = dirname(self);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--reps") {
      reps = Number(argv[++i]);
      if (!Number.isInteger(reps) || reps < MIN_REPS) {
        console.error(`--reps must be an integer >= ${MIN_REPS}`);
        process.exit(2);
      }
    } else if (a === "--json") json = argv[++i];
    else if (a === "--suite") suite = argv[++i];
    else if (a === "--dir") dir = argv[++i];
    else wanted.push(a);
  }
  return { wanted, reps, json, dir, suite };
}

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

async function runSuite(suite: BenchSuite, reps: number): Promise<BenchResult[]> {
  const first = await suite.run();
  if (suite.once || repeatedEnough(first)) return first;
  const runs = [first];
  while (runs.length < reps) runs.push(await suite.run());
  return combineRepetitions(runs);
}

/** What a suite's process sends back: its figures and how many goals it missed. */
interface SuiteReport {
  suite: string;
  load: string;
  results: BenchResult[];
  missed: number;
}

/** Child mode: runs one suite, prints its section, sends its report to the parent. */
async function runChild(dir: string, file: string, reps: number): Promise<void> {
  const mod = (await import(pathToFileURL(join(dir, file)).href)) as { default: BenchSuite };
  const suite = mod.default;
  console.log(`\n## ${suite.name}`);
  const results = await runSuite(suite, reps);
  let missed = 0;
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
  const report: SuiteReport = { suite: suite.name, load: load(), results, missed };
  await new Promise<void>((resolve, reject) =>
    process.send!(report, (err: Error | null) => (err ? reject(err) : resolve())),
  );
}

/** The suite process running now, stopped if this one is interrupted. */
let running: ChildProcess | undefined;

/**
 * Runs `file` in a fresh Node process with this process's flags (tsx's loader), its output
 * on this terminal; resolves with its report, or with why there is none.
 */
function spawnSuite(dir: string, file: string, reps: number): Promise<SuiteReport | string> {
  return new Promise((resolve) => {
    const child = fork(self, ["--dir", dir, "--suite", file, "--reps", String(reps)], {
      execArgv: process.execArgv,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    running = child;
    let report: SuiteReport | undefined;
    child.on("message", (m) => {
      report = m as SuiteReport;
    });
    child.on("error", (e) => {
      running = undefined;
      resolve(`could not start: ${e.message}`);
    });
    child.on("exit", (code, signal) => {
      running = undefined;
      if (report && code === 0) resolve(report);
      else resolve(signal ? `killed by ${signal}` : `exited with status ${code}`);
    });
  });
}

async function runParent({ wanted, reps, json, dir }: Args): Promise<void> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".bench.ts"))
    .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
    .sort();
  // Ctrl-C or a kill: the suite's process goes with this one (it is in our process group
  // for a terminal's Ctrl-C, but not for a kill aimed at this process alone).
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      running?.kill(sig);
      process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1));
    });
  }
  console.log(`load average at start: ${load()}`);
  let missed = 0;
  const failed: string[] = [];
  const report: Omit<SuiteReport, "missed">[] = [];
  for (const f of files) {
    const r = await spawnSuite(dir, f, reps);
    if (typeof r === "string") {
      console.log(`  (${f}: ${r}; no figures)`);
      failed.push(f);
      continue;
    }
    missed += r.missed;
    report.push({ suite: r.suite, load: r.load, results: r.results });
  }
  if (json) writeFileSync(json, JSON.stringify(report, null, 1));
  if (failed.length > 0) console.log(`\n${failed.length} suite(s) failed: ${failed.join(", ")}`);
  console.log(missed === 0 ? "\nall goals met" : `\n${missed} goal(s) missed`);
  if (failed.length > 0) process.exitCode = 1;
}

const args = parseArgs(process.argv.slice(2));
if (args.suite !== undefined) {
  if (!process.send) {
    console.error("--suite is bench/main.ts's own child mode (it reports over IPC)");
    process.exit(2);
  }
  await runChild(args.dir, args.suite, args.reps);
  process.disconnect();
} else await runParent(args);
