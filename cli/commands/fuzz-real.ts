/**
 * `shmlab fuzz --real NAME` and `shmlab replay FILE [--real NAME]` on a real compositor
 * (lab/fuzz/real.ts): the case runs on a fresh instance and on the model policy that
 * follows the installed version; findings are what the real one did wrong or where the
 * model disagrees.
 */
import { readFileSync } from "node:fs";
import type { Action } from "../../lab/fuzz/actions.ts";
import {
  fuzzReal,
  REAL_FINDING_SCHEMA,
  type RealFinding,
  type RealFuzzCase,
  runRealCase,
} from "../../lab/fuzz/real.ts";
import { realCompositorPolicy } from "../../lab/real-conformance.ts";
import { driverFor } from "../../lab/real-drivers.ts";
import type { RealCompositor } from "../../real/compositor.ts";
import { describeHostileWindow } from "../../real/hostile-window.ts";
import { getReal } from "../../real/index.ts";
import type { RealDriver } from "../../real/target.ts";

function fail(message: string, code: string): never {
  throw Object.assign(new Error(message), { code });
}

/** The compositor, its driver and the policy that follows it, or a one-line reason. */
async function target(
  name: string,
): Promise<{ comp: RealCompositor; driver: RealDriver; policy: string; version: string } | string> {
  const comp = getReal(name);
  const a = comp.probe();
  if (!a.available) return `${name}: ${a.why}`;
  const policy = realCompositorPolicy(comp.kind, a.version);
  if (!policy) return `${name}: no model policy follows ${a.version}`;
  const driver = await driverFor(comp.protocol);
  if (!("run" in driver)) return `${name}: ${driver.why}`;
  return { comp, driver, policy, version: a.version };
}

export interface RealFuzzCliOptions {
  real: string;
  seed: number;
  runs?: number;
  timeMs?: number;
  out: string;
  frames: number;
  honest: number;
  progress: boolean;
  blind?: boolean;
}

export async function fuzzRealCommand(o: RealFuzzCliOptions): Promise<void> {
  const t = await target(o.real);
  if (typeof t === "string") {
    console.log(`fuzz --real skipped: ${t}`);
    return;
  }
  console.log(
    `fuzzing ${t.version} beside the model policy ${t.policy}: seed ${o.seed}, ${o.runs !== undefined ? `${o.runs} case(s)` : `${((o.timeMs ?? 0) / 1000).toFixed(0)} s`}, a fresh instance per case`,
  );
  const show = o.progress && process.stderr.isTTY;
  const report = await fuzzReal({
    compositor: t.comp,
    driver: t.driver,
    policy: t.policy,
    version: t.version,
    seed: o.seed,
    runs: o.runs,
    timeMs: o.timeMs,
    out: o.out,
    frames: o.frames,
    honest: o.honest,
    timeoutMs: 2500,
    length: 16,
    maxShrinkAttempts: 16,
    blind: o.blind,
    onCase: (i, r) => {
      if (show) process.stderr.write(`\r case ${i + 1}: real ${r.real.cell}`.padEnd(70));
    },
  });
  if (show) process.stderr.write(`\r${" ".repeat(70)}\r`);
  for (const { file, finding: f } of report.findings) {
    console.log(
      `\nFINDING ${f.kind} [${f.compositor}]: real ${f.real.verdict} (${f.real.cell}), model ${f.policy} ${f.model.verdict} (${f.model.cell})`,
    );
    console.log(
      `  minimal case: seed ${f.case.seed}, ${f.case.actions.length} action(s): ${f.program.join("; ")}`,
    );
    if (file) console.log(`  saved: ${file}\n  replay: npx shmlab replay ${file}`);
  }
  console.log(
    `\n${report.cases} case(s) in ${report.seconds.toFixed(0)} s (${(report.cases / report.seconds).toFixed(2)} cases/s, instance starts included), ${report.findings.length} finding(s); ${report.features} features observed${o.blind ? "" : `, corpus ${report.corpus}`}`,
  );
  if (report.findings.length) process.exitCode = 1;
}

/** Is this file a real-compositor finding (rather than a model fuzz finding)? */
export function isRealFinding(file: string): boolean {
  const v = JSON.parse(readFileSync(file, "utf8")) as { schema?: string };
  return v.schema === REAL_FINDING_SCHEMA;
}

/**
 * Reruns a case on the model and on a real compositor: a real finding on its own
 * compositor (or `--real`), a model fuzz finding's last client on `--real`.
 */
export async function replayReal(
  file: string,
  realName: string | undefined,
  json: boolean,
): Promise<void> {
  const v = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  let c: RealFuzzCase;
  let name = realName;
  let recorded: string | null = null;
  if (v.schema === REAL_FINDING_SCHEMA) {
    const f = v as unknown as RealFinding;
    c = f.case;
    name ??= f.compositor;
    recorded = f.kind;
  } else {
    const f = v as {
      case?: { seed: number; frames: number; honest: number };
      actions?: unknown;
      program?: unknown;
    };
    const fc = f.case as {
      seed: number;
      frames: number;
      honest: number;
      program: { clients: Action[][] };
    };
    if (!fc?.program?.clients?.length)
      fail(`${file} is not a finding shmlab can replay`, "SHMLAB_ERR_BAD_FINDING");
    c = {
      seed: fc.seed,
      frames: fc.frames,
      honest: fc.honest,
      timeoutMs: 2500,
      actions: fc.program.clients[fc.program.clients.length - 1],
    };
  }
  if (!name) fail("--real NAME: which compositor to replay on", "SHMLAB_ERR_BAD_OPTION");
  const t = await target(name);
  if (typeof t === "string") {
    console.log(`replay --real skipped: ${t}`);
    return;
  }
  const r = await runRealCase(t.comp, t.driver, t.policy, c);
  if (json) {
    console.log(
      JSON.stringify({ file, compositor: t.version, policy: t.policy, recorded, ...r }, null, 1),
    );
  } else {
    console.log(`${file}: seed ${c.seed}, ${c.actions.length} action(s), ${c.honest} honest`);
    for (const d of r.dropped) console.log(`  action ${d.i} (${d.k}) not run on ${name}: ${d.why}`);
    console.log(`  model ${t.policy}: ${r.model.verdict} (${r.model.cell})`);
    console.log(`  real ${t.version}: ${r.real.verdict} (${r.real.cell})`);
    for (const cl of r.observation.clients)
      if (!cl.honest)
        console.log(
          `  real ${cl.behaviour}#${cl.index}'s ${cl.window ? describeHostileWindow(cl.window) : `window unchecked (${cl.notes.find((n) => n.startsWith("window unchecked")) ?? "no buffer committed, or no screenshot"})`}`,
        );
    console.log(
      recorded
        ? r.kind === recorded
          ? `  reproduced: ${recorded}`
          : `  NOT reproduced (recorded ${recorded}, now ${r.kind ?? "no finding"})`
        : `  ${r.kind ?? "no finding"}`,
    );
  }
  process.exitCode = r.kind ? 1 : 0;
}
