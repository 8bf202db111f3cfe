/**
 * The HTML report in a real headless browser (Debian's chromium driven by playwright-core):
 * it loads with no console errors, shows the matrix with one cell per (policy, behaviour),
 * and a matrix cell opens that cell's drill-down with its timeline and frame images.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { describe, expect, it } from "vitest";
import { compare } from "../lab/compare.ts";
import { renderHtmlReport } from "../lab/report-html.ts";

const CHROMIUM = process.env.SHMLAB_CHROMIUM ?? "/usr/bin/chromium";
const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser)
  console.log(`report browser test skipped: no chromium at ${CHROMIUM} (apt-get install chromium)`);

describe("the HTML report", () => {
  it.skipIf(!haveBrowser)(
    "loads without console errors, shows the matrix, and opens a cell's drill-down",
    async () => {
      const result = compare({
        policies: ["none", "libwayland", "wlroots"],
        behaviours: ["honest-renderer", "truncate-after-commit"],
        seed: 1,
        seeds: 1,
        variant: "standard",
        kernelFeatures: [],
        frames: 6,
        honest: 2,
        images: true,
      });
      const dir = mkdtempSync(join(tmpdir(), "shmlab-report-"));
      const file = join(dir, "report.html");
      writeFileSync(file, renderHtmlReport(result));

      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      try {
        const page = await browser.newPage();
        const problems: string[] = [];
        page.on("console", (m) => {
          if (m.type() === "error") problems.push(m.text());
        });
        page.on("pageerror", (e) => problems.push(e.message));
        await page.goto(`file://${file}`);
        const cells = page.locator("#matrix tbody td");
        expect(await cells.count()).toBe(3 * 2);
        const heads = await page.locator("#matrix thead th").allTextContents();
        expect(heads.slice(1)).toEqual(["none", "libwayland", "wlroots"]);
        // The verdicts shown are the simulation's: none dies, libwayland answers invalid_fd.
        const died = page.locator("#matrix td.v-died");
        expect(await died.count()).toBe(1);
        expect(await page.locator("#matrix td.v-error-to-client").first().textContent()).toBe(
          "inv_fd",
        );
        await died.locator("a").click();
        const open = page.locator("details.cell[open]");
        await expect.poll(() => open.count()).toBe(1);
        expect(await open.locator(":scope > summary").textContent()).toContain(
          "none × truncate-after-commit",
        );
        expect(await open.locator("img").count()).toBe(2);
        expect(await page.locator("svg.bar, svg rect.bar").count()).toBeGreaterThan(0);
        expect(problems).toEqual([]);
      } finally {
        await browser.close();
      }
    },
  );
});
