/**
 * `npm run soak [-- --minutes M --honest N --interval MS --policy P --seed S
 * --malloc-mmap-threshold BYTES --max-semi-space MIB]`: the soak
 * test of `shmlab serve` (cli/soak.ts). Not part of CI: it runs for minutes (10 by
 * default), loopback only, and stops by itself. Exit 1 when the verdict fails.
 */
import { loadavg } from "node:os";
import { memoryBreakdown, type RssSample, runSoak } from "../cli/soak.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}

const minutes = Number(arg("minutes", "10"));
const total = minutes * 60_000;
const MiB = 1024 * 1024;
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(", ");
const loadStart = load();
const r = await runSoak({
  warmupMs: Math.round(total * 0.1),
  attackMs: Math.round(total * 0.6),
  cooldownMs: Math.round(total * 0.3),
  honest: Number(arg("honest", "4")),
  honestIntervalMs: Number(arg("interval", "100")),
  policy: arg("policy", "libwayland"),
  seed: Number(arg("seed", "1")),
  sampleMs: Math.max(1000, Math.round(total / 600)),
  log: (l) => console.log(l),
  // glibc keeps freed heap chunks of large buffers (its mmap threshold rises after the
  // first free), so a server's RSS may not come down after a burst of 1 MiB messages;
  // --malloc-mmap-threshold N pins the threshold (MALLOC_MMAP_THRESHOLD_) to test that.
  serveEnv:
    arg("malloc-mmap-threshold", "") === ""
      ? undefined
      : { MALLOC_MMAP_THRESHOLD_: arg("malloc-mmap-threshold", "") },
  // --max-semi-space MiB caps V8's young generation in the server (node's
  // --max-semi-space-size): by default it grows to 2 x 16 MiB under honest traffic alone
  // and shrinks only at a memory-reducing GC (docs/soak.md), so its size at a given moment
  // depends on how long ago the last reclaim was.
  serveNodeArgs:
    arg("max-semi-space", "") === ""
      ? undefined
      : [`--max-semi-space-size=${arg("max-semi-space", "")}`],
});
const h = r.honest;
console.log("\n## soak report");
console.log(
  `honest roundtrips ${h.roundtrips}: p50 ${h.p50.toFixed(1)} ms, p99 ${h.p99.toFixed(1)} ms, max ${h.max.toFixed(1)} ms; per client ${h.perClient.join(", ")}`,
);
for (const [ph, v] of Object.entries(h.byPhase))
  console.log(
    `  ${ph.padEnd(8)} ${v.n} roundtrips: p50 ${v.p50.toFixed(1)} ms, p99 ${v.p99.toFixed(1)} ms`,
  );
console.log(`/health requests that failed: ${r.healthFailures}`);
console.log("server RSS over time (MiB, min / median / max of the samples):");
for (const ph of ["warmup", "attack", "cooldown"] as const) {
  const xs = r.rss
    .filter((x) => x.phase === ph)
    .map((x) => x.rss / MiB)
    .sort((a, b) => a - b);
  const delay = Math.max(...r.rss.filter((x) => x.phase === ph).map((x) => x.loopDelayMaxMs));
  if (xs.length)
    console.log(
      `  ${ph.padEnd(8)} ${xs[0].toFixed(1)} / ${xs[Math.floor(xs.length / 2)].toFixed(1)} / ${xs[xs.length - 1].toFixed(1)} (${xs.length} samples); the server's longest event-loop delay ${delay.toFixed(0)} ms`,
    );
}
console.log(`honest failures: ${h.failures.length ? h.failures.join("; ") : "0"}`);
console.log(`starved: ${h.starved.length ? h.starved.join("; ") : "none"}`);
console.log(`attack rounds: ${JSON.stringify(r.attacks)}`);
console.log("refusals:");
for (const [k, n] of Object.entries(r.refusals).sort())
  console.log(`  ${String(n).padStart(6)}  ${k}`);
// Where the memory is in each window (medians, MiB): docs/soak.md reads this table.
const phaseOf = (ph: RssSample["phase"]) => r.rss.filter((s) => s.phase === ph);
const lastThird = (xs: RssSample[]) => xs.slice(-Math.max(1, Math.ceil(xs.length / 3)));
const windows: [string, RssSample[]][] = [
  ["start", r.startWindow],
  ["warm-up 1/3", lastThird(phaseOf("warmup"))],
  ["attack", phaseOf("attack")],
  ["end", r.endWindow],
  ["cool 1/3", lastThird(phaseOf("cooldown"))],
];
const table = windows.map(([name, xs]) => [name, xs.length, memoryBreakdown(xs)] as const);
console.log(
  `server memory by part (MiB, medians; start/end: the ${r.startWindow.length} samples after a reclaim, "${r.rssHow}"; 1/3: a phase's last third):`,
);
console.log(`  ${"".padEnd(28)}${table.map(([n, k]) => `${n} (${k})`.padStart(18)).join("")}`);
for (const part of Object.keys(table[0][2]) as (keyof (typeof table)[0][2])[])
  console.log(
    `  ${part.padEnd(28)}${table.map(([, , b]) => (b[part] / MiB).toFixed(1).padStart(18)).join("")}`,
  );
console.log(
  `server RSS: start ${(r.rssStart / MiB).toFixed(1)} MiB, peak ${(r.rssPeak / MiB).toFixed(1)} MiB, end ${(r.rssEnd / MiB).toFixed(1)} MiB (end/start ${r.rssRatio.toFixed(3)}; ${r.rssHow}); honest-only phases with no reclaim near (last thirds): warm-up ${(r.rssSteadyStart / MiB).toFixed(1)}, cool-down ${(r.rssSteadyEnd / MiB).toFixed(1)} MiB`,
);
const ret = (x: typeof r.retained.start) =>
  x
    ? `live heap ${(x.liveHeapBytes / MiB).toFixed(1)} MiB, malloc in use ${x.mallocInUseBytes < 0 ? "?" : (x.mallocInUseBytes / MiB).toFixed(1)} MiB`
    : "no reclaim";
console.log(
  `retained (right after the server's full GC and malloc_trim): after the warm-up probe ${ret(r.retained.start)}; after the attackers ${ret(r.retained.end)}`,
);
console.log(
  `kernel frames in use: warm-up ${r.framesStart}, end ${r.framesEnd}, peak ${r.framesPeak} (${((r.framesPeak * 4096) / MiB).toFixed(1)} MiB); kernel memory held at the end ${(r.tableBytesEnd / MiB).toFixed(1)} MiB; compositor deaths ${r.serverDeaths}`,
);
console.log(
  `reclaims after clients left: ${r.reclaim.runs} (kernel memory given back ${(r.reclaim.trimmedBytes / MiB).toFixed(1)} MiB, GCs ${r.reclaim.gcMs.toFixed(0)} ms in all; ${r.reclaim.how})`,
);
console.log(`load average (1, 5, 15 min): at the start ${loadStart}; at the end ${load()}`);
const checks: [string, boolean][] = [
  ["0 honest failures", h.failures.length === 0],
  ["no honest client starved", h.starved.length === 0],
  ["RSS bounded after the attackers left (end <= peak)", r.rssEnd <= r.rssPeak],
  ["kernel frames given back (frames at end <= warm-up + 64)", r.framesEnd <= r.framesStart + 64],
  ["kernel memory given back (held at the end <= 8 MiB)", r.tableBytesEnd <= 8 * MiB],
  ["RSS back within 10 % of start", r.rssRatio <= 1.1],
  ...(["warmup", "attack", "cooldown"] as const).map((ph): [string, boolean] => [
    `honest p99 under 100 ms (${ph})`,
    h.byPhase[ph].p99 < 100,
  ]),
];
for (const [what, ok] of checks) console.log(`${ok ? "met   " : "MISSED"}  ${what}`);
process.exitCode = checks.every(([, ok]) => ok) ? 0 : 1;
