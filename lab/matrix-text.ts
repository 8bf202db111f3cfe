/**
 * The terminal rendering of a comparison: behaviours down, policies across, a short code
 * per cell coloured by verdict, a legend, and the commands that replay cells.
 */
import Table from "cli-table3";
import pc from "picocolors";
import type { Cell, CompareResult } from "./compare.ts";
import type { RunRecord, Verdict } from "./record.ts";
import { eventLine } from "./timeline.ts";

export const LEGEND: readonly { verdict: Verdict; meaning: string }[] = [
  {
    verdict: "died",
    meaning: "the compositor process died (unhandled SIGBUS/SIGSEGV): every client lost",
  },
  {
    verdict: "honest-harmed",
    meaning: "an honest client saw wrong pixels, or was refused, dropped, killed or never shown",
  },
  {
    verdict: "error-to-client",
    meaning: "the hostile client got a protocol error (named) and was disconnected",
  },
  {
    verdict: "tolerated",
    meaning: "the compositor survived a fault and showed zeros; the client was told nothing",
  },
  { verdict: "undetected", meaning: "no error, no fault: the action had no visible effect" },
  { verdict: "ok", meaning: "an honest behaviour: every pixel correct" },
];

const SCREEN_SHORT: Record<string, string> = { correct: "ok", foreign: "frgn", other: "othr" };

/** A cell's text in at most 10 characters. */
export function shortCell(text: string, max = 10): string {
  return (
    text
      .replace(/^DIED SIG(\w+)/, "DIED($1)")
      .replace(/^invalid_/, "inv_")
      .replace(/^implementation$/, "impl")
      .replace(/^Bad(\w+) \(kept\)/, "Bad$1+")
      .replace(/^zeros, no error/, "zeros")
      .replace(/^last frame kept, no error/, "kept")
      .replace(/^survived, not shown, no error/, "survived")
      // "surv(correct)" is 13 characters and was cut to "surv(corre": the window's pixel
      // class in four letters at most (client/pattern.ts PixelClass).
      .replace(
        /^survived \((\w+)\), no error/,
        (_, px: string) => `surv(${SCREEN_SHORT[px] ?? px})`,
      )
      .replace(/^no effect seen/, "-")
      .replace(/^refused: invalid_/, "refused ")
      .replace(/^harmed: /, "HARM ")
      .replace(/^wl_\w+#(-?\d+)$/, "error $1")
      .slice(0, max)
  );
}

export function colourFor(v: Verdict): (s: string) => string {
  switch (v) {
    case "died":
      return (s) => pc.bold(pc.red(s));
    case "honest-harmed":
      return (s) => pc.bold(pc.magenta(s));
    case "error-to-client":
      return pc.green;
    case "tolerated":
      return pc.cyan;
    case "undetected":
      return pc.dim;
    case "ok":
      return pc.green;
  }
}

/**
 * The matrix, with the policy columns split into as many tables as it takes to fit `width`
 * characters (the terminal's, or 120), so it reads without wrapping.
 */
export function renderMatrix(r: CompareResult, width = process.stdout.columns || 120): string {
  const pols = r.policies.map((p) => p.name);
  const label = Math.max(18, ...r.behaviours.map((b) => b.name.length + (b.honest ? 9 : 0))) + 2;
  const colWidth = (p: string) => Math.max(p.length, 10) + 2;
  const chunks: string[][] = [[]];
  let used = label + 1;
  for (const p of pols) {
    const w = colWidth(p) + 1;
    if (used + w > width && chunks[chunks.length - 1].length) {
      chunks.push([]);
      used = label + 1;
    }
    chunks[chunks.length - 1].push(p);
    used += w;
  }
  return chunks
    .map((cols) => {
      const t = new Table({
        head: ["behaviour \\ policy", ...cols],
        style: { head: [], border: [], compact: true },
        colWidths: [label, ...cols.map(colWidth)],
      });
      for (const b of r.behaviours) {
        const row: string[] = [b.honest ? `${b.name} (honest)` : b.name];
        for (const p of cols) {
          const c = r.cells.find((x) => x.policy === p && x.behaviour === b.name);
          const na = r.notApplicable?.some((x) => x.policy === p && x.behaviour === b.name);
          row.push(c ? colourFor(c.verdict)(shortCell(c.text)) : na ? pc.dim("n/a") : "");
        }
        t.push(row);
      }
      return t.toString();
    })
    .join("\n\n");
}

export function renderLegend(r?: CompareResult): string {
  const lines = LEGEND.map((l) => `  ${colourFor(l.verdict)(l.verdict.padEnd(16))} ${l.meaning}`);
  const own = r ? selfHarm(r) : [];
  if (own.length)
    lines.push(
      `  honest-harmed on an honest behaviour's row (no attacker in the run) is the policy's own price to well-behaved clients, not an attack's effect: ${own.join(", ")}`,
    );
  lines.push(
    `  cell text: the error the hostile client received (inv_fd = wl_shm.invalid_fd, impl = wl_display.implementation ...), "zeros", "-" (no effect), "kept" (its last good frame shown), "surv(ok)" (survived, its window correct), "k/n" = only k of n seeds`,
    `  "error -1": Hyprland's own wl_resource_post_error(-1, ...) for a file smaller than its pool or a shrinking resize (4294967295 on the wire, on the wl_shm_pool)`,
    `  "BadValue+" = "BadValue (kept)": an X11 error after which Xorg kept the client; "n/a": the policy's protocol cannot express the behaviour`,
  );
  return lines.join("\n");
}

/**
 * "policy (behaviour)" for each cell where an honest behaviour, run with no hostile client,
 * was harmed: what the policy costs clients that do nothing wrong (seals-required refuses an
 * honest client's unsealed pool by design). Read from the cells, so it names what the runs did.
 */
function selfHarm(r: CompareResult): string[] {
  const honest = new Set(r.behaviours.filter((b) => b.honest).map((b) => b.name));
  return r.cells
    .filter((c) => c.verdict === "honest-harmed" && honest.has(c.behaviour))
    .map((c) => `${c.policy} (${c.behaviour})`);
}

/** The verdicts a replay line is most wanted for, worst first. */
const REPLAY_ORDER: readonly Verdict[] = [
  "honest-harmed",
  "died",
  "error-to-client",
  "tolerated",
  "undetected",
  "ok",
];

/**
 * Replay lines, at most `max`: first one cell of each verdict that occurs (from a policy not
 * listed yet where there is one), then more died or honest-harmed cells, one per policy not
 * listed yet — so the lines show the matrix's spread, not the first column's cells only.
 */
export function replayLines(r: CompareResult, max = 8): string[] {
  const picked: Cell[] = [];
  const policies = new Set<string>();
  const take = (c: Cell | undefined) => {
    if (!c || picked.length >= max || picked.includes(c)) return;
    picked.push(c);
    policies.add(c.policy);
  };
  for (const v of REPLAY_ORDER) {
    const withV = r.cells.filter((c) => c.verdict === v);
    take(withV.find((c) => !policies.has(c.policy)) ?? withV[0]);
  }
  for (const c of r.cells)
    if ((c.verdict === "died" || c.verdict === "honest-harmed") && !policies.has(c.policy)) take(c);
  const pickRun = (c: Cell): RunRecord =>
    r.runs[c.runs.find((i) => r.runs[i].verdict === c.verdict) ?? c.runs[0]];
  return picked.map((c) => `  ${c.policy} × ${c.behaviour} (${c.verdict}): ${pickRun(c).replay}`);
}

/** The detailed view of one run, for a one-cell compare (a replay). */
export function renderRun(r: RunRecord): string {
  const out: string[] = [];
  out.push(
    `${pc.bold(`${r.spec.policy} × ${r.spec.behaviour}`)}  seed ${r.spec.seed}  → ${colourFor(r.verdict)(r.verdict)}: ${r.cell}`,
  );
  const d = r.compositor.death;
  out.push(
    `compositor: ${r.compositor.alive ? "alive" : `DIED of ${d?.signal} (${d?.reason}) at 0x${(d?.addr ?? 0).toString(16)}: ${d?.cause}`}, ${r.compositor.framesRun} frames, ${r.compositor.preemptions} preemptions inside its reads`,
  );
  for (const c of r.clients) {
    let what: string;
    if (c.honestResult) {
      const h = c.honestResult;
      what = `pixels ${h.pixels} (${h.framesCorrect}/${h.framesChecked} frames correct)`;
    } else {
      const o = c.hostileOutcome;
      what =
        o?.kind === "disconnected"
          ? `disconnected: ${o.error} on ${o.interface}@${o.objectId} "${o.message}"`
          : (o?.kind ?? "");
      if (o?.kind === "tolerated" || o?.kind === "killed-compositor") what += `: ${o.how}`;
    }
    if (c.protocolError && c.honestResult) what += `; error ${c.protocolError.error}`;
    out.push(`  ${c.label.padEnd(28)} ${what}`);
  }
  const k = r.cost;
  out.push(
    `cost: ${k.faults} faults, ${k.signals} signals, ${k.syscalls} syscalls, ${k.bytesCopied} bytes copied, ${k.anonPages} anon pages, ${k.zeroPages} zero pages, ${k.msPerFrame.toFixed(2)} ms/frame`,
  );
  out.push("timeline:");
  for (const e of r.timeline.slice(0, 40)) out.push(`  ${eventLine(e)}`);
  if (r.timeline.length > 40) out.push(`  ... ${r.timeline.length - 40} more (see --json)`);
  out.push(`digest ${r.digest}; replay: ${r.replay}`);
  return out.join("\n");
}
