/** The self-contained HTML report of a comparison (see renderHtmlReport). */
import type { CompareResult } from "./compare.ts";

/** A first version: the matrix as a heat map; charts and drill-downs follow. */
export function renderHtmlReport(r: CompareResult): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = r.behaviours
    .map(
      (b) =>
        `<tr><th>${esc(b.name)}</th>${r.policies
          .map((p) => {
            const c = r.cells.find((x) => x.policy === p.name && x.behaviour === b.name);
            return `<td class="${c?.verdict ?? ""}">${esc(c?.text ?? "")}</td>`;
          })
          .join("")}</tr>`,
    )
    .join("\n");
  return `<!doctype html><html><head><meta charset="utf-8"><title>shmlab compare</title></head><body><table id="matrix"><tr><th></th>${r.policies.map((p) => `<th>${esc(p.name)}</th>`).join("")}</tr>${rows}</table></body></html>`;
}
