/**
 * The terminal rendering of a protocol review: the paragraph per changed behaviour, every
 * changed cell, and the changed cells' two timelines side by side.
 */
import pc from "picocolors";
import { colourFor, shortCell } from "./matrix-text.ts";
import type { ChangedCell, Review } from "./review.ts";
import { eventLine } from "./timeline.ts";

/** Wraps `text` at `width` columns, every line after the first indented by `indent`. */
export function wrap(text: string, width: number, indent = ""): string {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = indent + word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out.join("\n");
}

const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));

/** The two runs' timelines of one changed cell, side by side, at most `rows` rows. */
export function sideBySide(c: ChangedCell, review: Review, width: number, rows = 30): string {
  const col = Math.max(30, Math.floor((width - 3) / 2));
  const a = c.base.run.timeline.map(eventLine);
  const b = c.proposal.run.timeline.map(eventLine);
  const out = [
    pc.bold(
      `── ${c.policy} × ${c.behaviour}: ${shortCell(c.base.text)} → ${shortCell(c.proposal.text)}`,
    ),
    `${pc.underline(cut(review.base.name, col))} │ ${pc.underline(cut(review.proposal.name, col))}`,
  ];
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < Math.min(n, rows); i++)
    out.push(`${cut(a[i] ?? "", col)} │ ${cut(b[i] ?? "", col)}`);
  if (n > rows) out.push(`… ${n - rows} more rows (--json or --html has them all)`);
  out.push(`replay: ${c.base.run.replay}`);
  out.push(`        ${c.proposal.run.replay}`);
  return out.join("\n");
}

export function renderReview(
  r: Review,
  width = process.stdout.columns || 120,
  maxTimelines = 6,
): string {
  const out: string[] = [];
  out.push(
    pc.bold(
      `shmlab review: ${r.proposal.name} against ${r.base.name} — ${r.changes.length} of ${r.cells} cells change`,
    ),
  );
  out.push(wrap(`proposal: ${r.proposal.description}`, width, "  "));
  out.push(wrap(`base: ${r.base.description}`, width, "  "));
  if (r.changes.length === 0) {
    out.push("\nNo cell changes: on these attacks the proposal behaves as the base.");
    return out.join("\n");
  }
  out.push(pc.bold("\nWhat changes, by behaviour:"));
  for (const s of r.summaries)
    out.push(`\n${wrap(s.paragraph, width - 2, "  ").replace(/^/, "  ")}`);
  out.push(pc.bold("\nChanged cells:"));
  for (const c of r.changes) {
    const a = colourFor(c.base.verdict)(shortCell(c.base.text));
    const b = colourFor(c.proposal.verdict)(shortCell(c.proposal.text));
    out.push(`  ${`${c.policy} × ${c.behaviour}`.padEnd(48)} ${a} → ${b}`);
  }
  const shown = r.changes.slice(0, maxTimelines);
  out.push(
    pc.bold(
      `\nTimelines side by side (${shown.length} of ${r.changes.length} changed cells${shown.length < r.changes.length ? "; --timelines N for more, --html for all" : ""}):`,
    ),
  );
  for (const c of shown) out.push(`\n${sideBySide(c, r, width)}`);
  return out.join("\n");
}
