/**
 * `shmlab compare --real weston,sway,xvfb`: one more column per real compositor, labelled
 * with its installed version, beside the model policies. Each cell is the same behaviour on
 * the same seeds, run as real clients against a fresh instance, classified by the same
 * verdict rules (lab/real-run.ts); a cell's verdict is the worst of its seeds, as for a model
 * cell.
 */
import { getReal } from "../real/index.ts";
import type { RealKind, RealRunObservation } from "../real/target.ts";
import { type CompareResult, worstVerdict } from "./compare.ts";
import { driverFor } from "./real-drivers.ts";
import { planOf, runReal } from "./real-run.ts";
import type { Verdict } from "./record.ts";
import { makeSpec } from "./run.ts";

export interface RealCell {
  behaviour: string;
  verdict: Verdict;
  text: string;
  /** One observation per seed (or the error that prevented the run). */
  runs: (RealRunObservation | { error: string })[];
}

export interface RealColumn {
  compositor: RealKind;
  /** "weston 10.0.1 / libwayland-server 1.21.0", or null when not installed. */
  version: string | null;
  /** The column's heading: the compositor and its own version ("weston 10.0.1"). */
  label: string;
  skipped?: string;
  cells: RealCell[];
  seconds: number;
}

export interface RealCompareOptions {
  compositors: RealKind[];
  behaviours: string[];
  seed: number;
  seeds: number;
  frames: number;
  honest: number;
  timeoutMs?: number;
  onRun?: (compositor: RealKind, behaviour: string) => void;
}

export async function compareReal(opts: RealCompareOptions): Promise<RealColumn[]> {
  const cols: RealColumn[] = [];
  for (const kind of opts.compositors) {
    const comp = getReal(kind);
    const a = comp.probe();
    const col: RealColumn = {
      compositor: kind,
      version: a.available ? a.version : null,
      label: a.available ? a.version.split(" / ")[0] : `${kind} (skipped)`,
      cells: [],
      seconds: 0,
    };
    cols.push(col);
    if (!a.available) {
      col.skipped = a.why;
      continue;
    }
    const driver = await driverFor(comp.protocol);
    if (!("run" in driver)) {
      col.skipped = driver.why;
      col.label = `${col.label} (no driver)`;
      continue;
    }
    const t0 = performance.now();
    for (const behaviour of opts.behaviours) {
      const verdicts: Verdict[] = [];
      const texts: string[] = [];
      const runs: RealCell["runs"] = [];
      for (let i = 0; i < opts.seeds; i++) {
        opts.onRun?.(kind, behaviour);
        const spec = makeSpec({
          policy: "none",
          behaviour,
          seed: opts.seed + i,
          frames: opts.frames,
          honest: opts.honest,
        });
        const inst = await comp.start();
        try {
          const r = await runReal(inst, driver, planOf(spec, opts.timeoutMs));
          verdicts.push(r.verdict);
          texts.push(r.cell);
          runs.push(r.observation);
        } catch (e) {
          const err = e as Error & { code?: string };
          if (!err.code) throw e;
          runs.push({ error: `${err.message} [${err.code}]` });
        } finally {
          await inst.stop();
        }
      }
      if (!verdicts.length) {
        col.cells.push({ behaviour, verdict: "undetected", text: "error", runs });
        continue;
      }
      const worst = worstVerdict(verdicts);
      const n = verdicts.filter((v) => v === worst).length;
      const text = texts[verdicts.indexOf(worst)];
      col.cells.push({
        behaviour,
        verdict: worst,
        text: n === verdicts.length ? text : `${text} ${n}/${verdicts.length}`,
        runs,
      });
    }
    col.seconds = (performance.now() - t0) / 1000;
  }
  return cols;
}

/** The comparison with the real columns added after the policies, for the matrix text. */
export function withRealColumns(r: CompareResult, cols: readonly RealColumn[]): CompareResult {
  const live = cols.filter((c) => !c.skipped);
  return {
    ...r,
    policies: [
      ...r.policies,
      ...live.map((c) => ({
        name: c.label,
        source: c.version ?? "",
        summary: `the real ${c.compositor}`,
        clientReceives: "",
      })),
    ],
    cells: [
      ...r.cells,
      ...live.flatMap((c) =>
        c.cells.map((x) => ({
          policy: c.label,
          behaviour: x.behaviour,
          verdict: x.verdict,
          text: x.text,
          runs: [],
          verdicts: { [x.verdict]: 1 },
        })),
      ),
    ],
  };
}
