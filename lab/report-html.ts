/**
 * The self-contained HTML report of a comparison: the matrix as a heat map, per-policy cost
 * charts, and for each cell a drill-down with the run's event timeline and its last output
 * frame beside what the honest clients committed. One file, no external resources, no
 * script needed to read it (the drill-downs are <details> elements; a small script only
 * opens the one a matrix cell links to).
 */
import type { CompareResult } from "./compare.ts";
import { LEGEND, shortCell } from "./matrix-text.ts";
import type { RunRecord, Verdict } from "./record.ts";

const COLOURS: Record<Verdict, string> = {
  died: "#c62828",
  "honest-harmed": "#8e24aa",
  undetected: "#9e9e9e",
  tolerated: "#00838f",
  "error-to-client": "#2e7d32",
  ok: "#66bb6a",
};

/** Trace lines per run in the report; the rest are a replay away. */
const HTML_TRACE_LINES = 400;

export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const cellId = (policy: string, behaviour: string) =>
  `cell-${policy}--${behaviour}`.replace(/[^\w-]/g, "_");

function matrix(r: CompareResult): string {
  const head = r.policies
    .map((p) => `<th scope="col" title="${esc(p.summary)}">${esc(p.name)}</th>`)
    .join("");
  const rows = r.behaviours
    .map((b) => {
      const tds = r.policies
        .map((p) => {
          const c = r.cells.find((x) => x.policy === p.name && x.behaviour === b.name);
          const na = r.notApplicable?.find((x) => x.policy === p.name && x.behaviour === b.name);
          if (na)
            return `<td class="na" title="${esc(`${p.name} × ${b.name}: not applicable — ${na.why}`)}">n/a</td>`;
          if (!c) return "<td></td>";
          return `<td class="v-${c.verdict}" title="${esc(`${p.name} × ${b.name}: ${c.verdict} — ${c.text}`)}"><a href="#${cellId(p.name, b.name)}">${esc(shortCell(c.text))}</a></td>`;
        })
        .join("");
      return `<tr><th scope="row" title="${esc(b.description)}">${esc(b.name)}${b.honest ? " <small>(honest)</small>" : ""}</th>${tds}</tr>`;
    })
    .join("\n");
  return `<table id="matrix" class="matrix"><thead><tr><th>behaviour \\ policy</th>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}

function legend(): string {
  return `<ul class="legend">${LEGEND.map(
    (l) =>
      `<li><span class="swatch v-${l.verdict}"></span><b>${l.verdict}</b>: ${esc(l.meaning)}</li>`,
  ).join("")}</ul>`;
}

/** Horizontal bars, one per policy, for one cost figure summed over that policy's runs. */
function costChart(
  r: CompareResult,
  key: keyof RunRecord["cost"],
  title: string,
  unit: string,
): string {
  const totals = r.policies.map((p) => {
    const runs = r.runs.filter((x) => x.spec.policy === p.name);
    const sum = runs.reduce((s, x) => s + x.cost[key], 0);
    return { name: p.name, value: key === "msPerFrame" ? sum / Math.max(1, runs.length) : sum };
  });
  const max = Math.max(1e-9, ...totals.map((t) => t.value));
  const rowH = 18;
  const w = 420;
  const bars = totals
    .map((t, i) => {
      const len = Math.round((t.value / max) * (w - 190));
      const val = key === "msPerFrame" ? t.value.toFixed(2) : String(Math.round(t.value));
      return `<text x="0" y="${i * rowH + 13}" class="lbl">${esc(t.name)}</text><rect x="120" y="${i * rowH + 3}" width="${len}" height="${rowH - 6}" class="bar"/><text x="${124 + len}" y="${i * rowH + 13}" class="val">${val}</text>`;
    })
    .join("");
  return `<figure class="chart"><figcaption>${esc(title)} <small>(${esc(unit)})</small></figcaption><svg role="img" aria-label="${esc(title)}" width="${w}" height="${totals.length * rowH}" viewBox="0 0 ${w} ${totals.length * rowH}">${bars}</svg></figure>`;
}

export function runDetails(run: RunRecord): string {
  const clients = run.clients
    .map((c) => {
      let what: string;
      if (c.honestResult) {
        const h = c.honestResult;
        what = `pixels <b>${h.pixels}</b> (${h.framesCorrect}/${h.framesChecked} frames correct; ${h.counts.correct}/${h.counts.total} pixels correct, ${h.counts.stale} stale, ${h.counts.zero} zero, ${h.counts.foreign} foreign)`;
        if (c.protocolError) what += `; error ${esc(c.protocolError.error)}`;
      } else {
        const o = c.hostileOutcome;
        what =
          o?.kind === "disconnected"
            ? `disconnected: <b>${esc(o.error)}</b> on ${esc(o.interface)}@${o.objectId} “${esc(o.message)}”`
            : o?.kind === "tolerated"
              ? `tolerated: ${esc(o.how)}`
              : esc(o?.kind ?? "");
      }
      return `<tr><td>${esc(c.label)}</td><td>${what}</td><td>${esc(c.state)}${c.reason ? `: ${esc(c.reason)}` : ""}</td></tr>`;
    })
    .join("");
  const timeline = run.timeline
    .map(
      (e) =>
        `<tr><td>${e.frame}</td><td>${esc(e.who)}</td><td>${esc(e.what)}</td><td>${esc(e.detail ?? "")}</td></tr>`,
    )
    .join("");
  const d = run.compositor.death;
  const k = run.cost;
  const imgs = run.images
    ? `<div class="frames"><figure><img alt="output frame" width="${run.images.width * 2}" height="${run.images.height * 2}" src="data:image/png;base64,${run.images.output}"><figcaption>output (last frame)</figcaption></figure><figure><img alt="expected frame" width="${run.images.width * 2}" height="${run.images.height * 2}" src="data:image/png;base64,${run.images.expected}"><figcaption>expected (honest clients' committed frames)</figcaption></figure></div>`
    : "";
  return `<p>seed ${run.spec.seed} → <b class="t-${run.verdict}">${run.verdict}</b>: ${esc(run.cell)}. Compositor ${
    run.compositor.alive
      ? "alive"
      : `<b>died</b> of ${esc(d?.signal ?? "")} (${esc(d?.reason ?? "")}) at 0x${(d?.addr ?? 0).toString(16)}: ${esc(d?.cause ?? "")}`
  }; ${run.compositor.framesRun} frames; ${run.compositor.preemptions} client steps ran inside its reads.</p>
<p>cost: ${k.faults} faults, ${k.signals} signals, ${k.syscalls} syscalls, ${k.bytesCopied} bytes copied, ${k.anonPages} anonymous pages, ${k.zeroPages} zero pages, ${k.msPerFrame.toFixed(2)} ms/frame. Replay: <code>${esc(run.replay)}</code></p>
${imgs}
<table class="clients"><thead><tr><th>client</th><th>outcome</th><th>end</th></tr></thead><tbody>${clients}</tbody></table>
<details class="timeline"><summary>event timeline (${run.timeline.length} events)</summary><table><thead><tr><th>frame</th><th>who</th><th>what</th><th>detail</th></tr></thead><tbody>${timeline}</tbody></table></details>${traceDetails(run)}`;
}

/**
 * The run's wire traffic as WAYLAND_DEBUG lines (lab/wire-trace.ts): the client under test's
 * messages and every kernel comment. The bystanders' frames repeat and would make the
 * report several times larger; the whole trace is one replay away.
 */
function traceDetails(run: RunRecord): string {
  if (!run.trace) return "";
  const tested = `{${run.clients.at(-1)?.label}}`;
  const kept = run.trace.filter((l) => l.startsWith("#") || l.includes(tested));
  const shown = kept.slice(0, HTML_TRACE_LINES);
  const left = kept.length - shown.length;
  return `<details class="trace"><summary>wire trace, WAYLAND_DEBUG form (${esc(tested)} and kernel events: ${shown.length} of ${run.trace.length} lines)</summary><pre>${esc(shown.join("\n"))}${left > 0 ? `\n# … ${left} more` : ""}\n# the whole trace: ${esc(run.replay)} --trace -</pre></details>`;
}

function drilldowns(r: CompareResult): string {
  return r.cells
    .map((c) => {
      const runs = c.runs.map((i) => r.runs[i]);
      return `<details id="${cellId(c.policy, c.behaviour)}" class="cell"><summary><span class="swatch v-${c.verdict}"></span>${esc(c.policy)} × ${esc(c.behaviour)}: ${esc(c.text)}</summary>${runs.map(runDetails).join("<hr>")}</details>`;
    })
    .join("\n");
}

export const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table.matrix{border-collapse:collapse;font-size:12px}
.matrix th,.matrix td{border:1px solid #fff;padding:3px 6px;text-align:left;white-space:nowrap}
.matrix thead th{writing-mode:vertical-rl;transform:rotate(180deg);vertical-align:bottom;background:#eee}
.matrix tbody th{background:#f5f5f5;font-weight:normal}
.matrix td a{color:#fff;text-decoration:none;display:block}
.matrix td.na{background:#eee;color:#777}
${Object.entries(COLOURS)
  .map(([v, c]) => `.v-${v}{background:${c}}.t-${v}{color:${c}}`)
  .join("\n")}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.4em;vertical-align:-.1em;border-radius:2px}
ul.legend{list-style:none;padding:0}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}
.chart .lbl,.chart .val{font-size:11px;fill:#333}.chart .bar{fill:#5c6bc0}
.frames{display:flex;gap:1em}.frames img{image-rendering:pixelated;border:1px solid #ccc}
details.cell{margin:.3em 0;border-left:3px solid #ddd;padding-left:.6em}
details.cell>summary{cursor:pointer}
table.clients td,.timeline td{padding:1px 8px;vertical-align:top;font-size:12px}
code{background:#f3f3f3;padding:0 .3em}
details.trace pre{font-size:11px;line-height:1.3;background:#fafafa;padding:.4em;overflow-x:auto}
`;

export function renderHtmlReport(r: CompareResult): string {
  const o = r.options;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>shmlab compare: ${r.policies.length} policies × ${r.behaviours.length} behaviours</title>
<style>${CSS}</style></head>
<body>
<h1>shmlab compare</h1>
<p>${r.policies.length} policies × ${r.behaviours.length} behaviours × ${o.seeds} seed(s) from seed ${o.seed} = ${r.runs.length} runs; protocol variant <code>${esc(o.variant)}</code>${o.kernelFeatures.length ? `; kernel features ${esc(o.kernelFeatures.join(", "))}` : ""}; ${o.frames} frames per run, ${o.honest} honest bystanders. Every cell is what the simulation did; click a cell for its runs.</p>
<h2>Verdicts</h2>
${matrix(r)}
${legend()}
<h2>Cost per policy (summed over its runs)</h2>
<div class="charts">
${costChart(r, "faults", "page faults in the compositor", "count")}
${costChart(r, "signals", "signals delivered to the compositor", "count")}
${costChart(r, "syscalls", "compositor syscalls", "count")}
${costChart(r, "bytesCopied", "bytes read out of client pools", "bytes")}
${costChart(r, "anonPages", "anonymous pages", "count")}
${costChart(r, "msPerFrame", "time per frame, mean", "ms; wall clock, not deterministic")}
</div>
<h2>Cells</h2>
${drilldowns(r)}
<h2>Policies</h2>
<dl>${r.policies.map((p) => `<dt><b>${esc(p.name)}</b></dt><dd>${esc(p.summary)} Source: ${esc(p.source)}. A truncating client receives: ${esc(p.clientReceives)}.</dd>`).join("")}</dl>
<h2>Behaviours</h2>
<dl>${r.behaviours.map((b) => `<dt><b>${esc(b.name)}</b>${b.honest ? " (honest)" : ""}</dt><dd>${esc(b.description)}. ${esc(b.source)}</dd>`).join("")}</dl>
<script>
// Open the drill-down a matrix cell links to.
function openTarget(){const d=document.getElementById(decodeURIComponent(location.hash.slice(1)));if(d&&d.tagName==="DETAILS"){d.open=true;d.scrollIntoView();}}
window.addEventListener("hashchange",openTarget);openTarget();
</script>
</body></html>
`;
}
