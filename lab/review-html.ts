/**
 * The HTML page of a protocol review: one paragraph per changed behaviour, the changed
 * cells, and for each changed cell its two runs (base and proposal) side by side with
 * their clients and timelines. Self-contained like the compare report (report-html.ts).
 */
import { shortCell } from "./matrix-text.ts";
import { CSS, esc, runDetails } from "./report-html.ts";
import type { Review } from "./review.ts";

const REVIEW_CSS = `
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.pair>div{min-width:0;overflow-x:auto}
.pair h3{font-size:1em;margin:.3em 0}
table.changes td{padding:1px 8px;font-size:12px;white-space:nowrap}
p.summary{max-width:60em}
`;

const anchor = (policy: string, behaviour: string) =>
  `change-${policy}--${behaviour}`.replace(/[^\w-]/g, "_");

export function renderReviewHtml(r: Review): string {
  const o = r.options;
  const rows = r.changes
    .map(
      (c) =>
        `<tr><td><a href="#${anchor(c.policy, c.behaviour)}">${esc(c.policy)} × ${esc(c.behaviour)}</a></td><td><span class="swatch v-${c.base.verdict}"></span>${esc(shortCell(c.base.text))}</td><td>→</td><td><span class="swatch v-${c.proposal.verdict}"></span>${esc(shortCell(c.proposal.text))}</td></tr>`,
    )
    .join("\n");
  const pairs = r.changes
    .map(
      (c) =>
        `<details id="${anchor(c.policy, c.behaviour)}" class="cell"><summary>${esc(c.policy)} × ${esc(c.behaviour)}: ${esc(c.base.text)} → ${esc(c.proposal.text)}</summary><div class="pair"><div><h3>${esc(r.base.name)}</h3>${runDetails(c.base.run)}</div><div><h3>${esc(r.proposal.name)}</h3>${runDetails(c.proposal.run)}</div></div></details>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>shmlab review: ${esc(r.proposal.name)} against ${esc(r.base.name)}</title>
<style>${CSS}${REVIEW_CSS}</style></head>
<body>
<h1>shmlab review: ${esc(r.proposal.name)} against ${esc(r.base.name)}</h1>
<p><b>${esc(r.proposal.name)}</b>: ${esc(r.proposal.description)}<br><b>${esc(r.base.name)}</b>: ${esc(r.base.description)}</p>
<p>${r.changes.length} of ${r.cells} cells change (seed ${o.seed}, ${o.seeds} seed(s) a cell, ${o.frames} frames, ${o.honest} honest bystanders). Every sentence below is generated from the runs.</p>
<h2>What changes, by behaviour</h2>
${r.summaries.map((s) => `<p class="summary">${esc(s.paragraph)}</p>`).join("\n")}
<h2>Changed cells</h2>
<table class="changes"><tbody>${rows}</tbody></table>
<h2>Each changed cell, both runs side by side</h2>
${pairs}
<script>
function openTarget(){const d=document.getElementById(decodeURIComponent(location.hash.slice(1)));if(d&&d.tagName==="DETAILS"){d.open=true;d.scrollIntoView();}}
window.addEventListener("hashchange",openTarget);openTarget();
</script>
</body></html>
`;
}
