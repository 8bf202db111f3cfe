/**
 * A protocol review: the same matrix under two protocols (a base and a proposal), the
 * cells that change, and for each changed behaviour a paragraph saying what the change
 * did — which attacks it closes or opens, which honest clients it breaks — written from
 * the runs' records, never by hand.
 */
import type { Cell, CompareResult } from "./compare.ts";
import { shortCell } from "./matrix-text.ts";
import type { RunRecord, Verdict } from "./record.ts";

export const REVIEW_SCHEMA = "shmlab.review/1";

export interface ReviewSide {
  /** The variant's name (a built-in name, or the proposal's file name). */
  name: string;
  description: string;
}

export interface CellSide {
  verdict: Verdict;
  text: string;
  /** The run that gave the cell its verdict (the worst of its seeds). */
  run: RunRecord;
}

export interface ChangedCell {
  policy: string;
  behaviour: string;
  honest: boolean;
  base: CellSide;
  proposal: CellSide;
}

export interface BehaviourSummary {
  behaviour: string;
  honest: boolean;
  /** Policies where the compositor died or an honest client was harmed, and no longer is. */
  closes: string[];
  /** Policies where that now happens and did not before. */
  opens: string[];
  /** Honest behaviour: policies where it was served correctly and no longer is. */
  breaks: string[];
  /** Honest behaviour: policies where it was not served correctly and now is. */
  mends: string[];
  /** Every other change, "A → B" (short cell texts) with the policies it happened under. */
  shifts: { from: string; to: string; policies: string[] }[];
  unchanged: number;
  paragraph: string;
}

export interface Review {
  schema: typeof REVIEW_SCHEMA;
  base: ReviewSide;
  proposal: ReviewSide;
  options: CompareResult["options"];
  cells: number;
  changes: ChangedCell[];
  summaries: BehaviourSummary[];
}

const harmful = (v: Verdict) => v === "died" || v === "honest-harmed";

function side(r: CompareResult, c: Cell): CellSide {
  const i = c.runs.find((k) => r.runs[k].verdict === c.verdict) ?? c.runs[0];
  return { verdict: c.verdict, text: c.text, run: r.runs[i] };
}

/** Compares two matrices of the same selection, run under `base` and under `proposal`. */
export function review(
  a: CompareResult,
  b: CompareResult,
  base: ReviewSide,
  proposal: ReviewSide,
): Review {
  const changes: ChangedCell[] = [];
  for (const ca of a.cells) {
    const cb = b.cells.find((c) => c.policy === ca.policy && c.behaviour === ca.behaviour);
    if (!cb || (cb.verdict === ca.verdict && cb.text === ca.text)) continue;
    const honest = a.behaviours.find((x) => x.name === ca.behaviour)?.honest ?? false;
    changes.push({
      policy: ca.policy,
      behaviour: ca.behaviour,
      honest,
      base: side(a, ca),
      proposal: side(b, cb),
    });
  }
  const summaries = a.behaviours
    .filter((beh) => changes.some((c) => c.behaviour === beh.name))
    .map((beh) => summarise(beh, changes, a.policies.length));
  return {
    schema: REVIEW_SCHEMA,
    base,
    proposal,
    options: a.options,
    cells: a.cells.length,
    changes,
    summaries,
  };
}

function summarise(
  beh: CompareResult["behaviours"][number],
  all: ChangedCell[],
  policies: number,
): BehaviourSummary {
  const mine = all.filter((c) => c.behaviour === beh.name);
  const closes: string[] = [];
  const opens: string[] = [];
  const breaks: string[] = [];
  const mends: string[] = [];
  const shifts = new Map<string, { from: string; to: string; policies: string[] }>();
  for (const c of mine) {
    const [va, vb] = [c.base.verdict, c.proposal.verdict];
    if (beh.honest && va === "ok" && vb !== "ok") breaks.push(c.policy);
    else if (beh.honest && va !== "ok" && vb === "ok") mends.push(c.policy);
    else if (!beh.honest && harmful(va) && !harmful(vb)) closes.push(c.policy);
    else if (!beh.honest && !harmful(va) && harmful(vb)) opens.push(c.policy);
    const from = shortCell(c.base.text, 40);
    const to = shortCell(c.proposal.text, 40);
    const k = `${from}\u0000${to}`;
    const s = shifts.get(k) ?? { from, to, policies: [] };
    s.policies.push(c.policy);
    shifts.set(k, s);
  }
  const summary: Omit<BehaviourSummary, "paragraph"> = {
    behaviour: beh.name,
    honest: beh.honest,
    closes,
    opens,
    breaks,
    mends,
    shifts: [...shifts.values()],
    unchanged: policies - mine.length,
  };
  return { ...summary, paragraph: paragraph(summary, beh.description, mine) };
}

const names = (ps: string[]) =>
  ps.length <= 4 ? ps.join(", ") : `${ps.slice(0, 3).join(", ")} and ${ps.length - 3} more`;

/** What the client under test was told in a run, as `error: "message"`, if anything. */
function told(run: RunRecord): string | null {
  const e = run.clients.at(-1)?.protocolError;
  return e ? `${e.error}: "${e.message}"` : null;
}

function paragraph(
  s: Omit<BehaviourSummary, "paragraph">,
  description: string,
  mine: ChangedCell[],
): string {
  const parts: string[] = [];
  const kind = s.honest ? "honest" : "hostile";
  parts.push(`${s.behaviour} (${kind}: ${description.replace(/\.$/, "")}).`);
  const moves = (ps: string[]) => {
    const byShift = s.shifts
      .map((x) => ({ ...x, policies: x.policies.filter((p) => ps.includes(p)) }))
      .filter((x) => x.policies.length > 0);
    return byShift.map((x) => `${x.from} → ${x.to} under ${names(x.policies)}`).join("; ");
  };
  if (s.closes.length)
    parts.push(
      `The proposal closes this attack under ${s.closes.length} polic${s.closes.length > 1 ? "ies" : "y"} (${moves(s.closes)}).`,
    );
  if (s.opens.length)
    parts.push(
      `It opens it under ${s.opens.length} (${moves(s.opens)}): the compositor dies or an honest client is harmed where it did not before.`,
    );
  if (s.breaks.length)
    parts.push(
      `It breaks this honest client under ${s.breaks.length} polic${s.breaks.length > 1 ? "ies" : "y"} (${moves(s.breaks)}).`,
    );
  if (s.mends.length) parts.push(`It mends it under ${names(s.mends)} (${moves(s.mends)}).`);
  const rest = mine
    .map((c) => c.policy)
    .filter((p) => ![...s.closes, ...s.opens, ...s.breaks, ...s.mends].includes(p));
  if (rest.length) parts.push(`The answer changes under ${names(rest)} (${moves(rest)}).`);
  const example = mine.find((c) => told(c.proposal.run) && !told(c.base.run)) ?? mine[0];
  const t = told(example.proposal.run);
  if (t) parts.push(`With the proposal the client is told ${t} (${example.policy}).`);
  const deathBefore = mine.find((c) => c.base.run.compositor.death);
  if (deathBefore && s.closes.length)
    parts.push(
      `Before, the compositor died of ${deathBefore.base.run.compositor.death?.cause} (${deathBefore.policy}).`,
    );
  parts.push(
    s.unchanged > 0
      ? `Unchanged under the other ${s.unchanged} polic${s.unchanged > 1 ? "ies" : "y"}.`
      : "No policy is unchanged.",
  );
  return parts.join(" ");
}
