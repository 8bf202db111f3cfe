/**
 * lab/worker-bundle.ts: a worker entry bundled into one file, found again by the hash of
 * its sources, each module keeping its own import.meta.url; and a worker started from the
 * bundle without tsx runs the project's code.
 */
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Piscina } from "piscina";
import { afterAll, describe, expect, it } from "vitest";
import { bundleWorker, workerEntry } from "../lab/worker-bundle.ts";

const dir = mkdtempSync(join(tmpdir(), "shmlab-bundle-"));
const cache = join(dir, ".cache");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const entry = write(
  "entry.ts",
  `import { where, n } from "./dep.ts";\nexport const here: string = import.meta.url;\nexport default { here, where, n };\n`,
);
write("dep.ts", `export const where: string = import.meta.url;\nexport const n: number = 1;\n`);

describe("a worker entry bundled into one file", () => {
  it("keeps each module's own import.meta.url (the source file's, not the bundle's)", async () => {
    const file = await bundleWorker(entry, dir, cache);
    expect(file.startsWith(cache)).toBe(true);
    const m = (await import(pathToFileURL(file).href)) as {
      default: { here: string; where: string; n: number };
    };
    expect(m.default.here).toBe(pathToFileURL(entry).href);
    expect(m.default.where).toBe(pathToFileURL(join(dir, "dep.ts")).href);
    expect(m.default.n).toBe(1);
  });

  it("leaves the expression's name alone where a string holds it (the CLI bundles this file)", async () => {
    const named = write(
      "named.ts",
      `export const name = "import.meta.url";\nexport const url: string = import.meta.url;\n`,
    );
    const file = await bundleWorker(named, dir, join(dir, ".cache-named"));
    const m = (await import(pathToFileURL(file).href)) as { name: string; url: string };
    expect(m.name).toBe("import.meta.url");
    expect(m.url).toBe(pathToFileURL(named).href);
  });

  it("is found again while its sources are unchanged, and rebuilt when one changes", async () => {
    const first = await bundleWorker(entry, dir, cache);
    const mtime = statSync(first).mtimeMs;
    expect(await bundleWorker(entry, dir, cache)).toBe(first);
    expect(statSync(first).mtimeMs).toBe(mtime);
    // An imported file (not the entry) changes: the hash covers every input.
    write("dep.ts", `export const where: string = import.meta.url;\nexport const n: number = 2;\n`);
    const second = await bundleWorker(entry, dir, cache);
    expect(second).not.toBe(first);
    const m = (await import(pathToFileURL(second).href)) as { default: { n: number } };
    expect(m.default.n).toBe(2);
    expect(readdirSync(cache).filter((f) => f.endsWith(".json"))).toEqual(["entry.json"]);
  });

  it("removes the entry's earlier bundles once they are old, and keeps recent ones", async () => {
    const old = join(cache, "entry-0000000000000000.mjs");
    const recent = join(cache, "entry-1111111111111111.mjs");
    const other = join(cache, "other-0000000000000000.mjs");
    for (const f of [old, recent, other]) writeFileSync(f, "export {};\n");
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(old, twoHoursAgo, twoHoursAgo);
    utimesSync(other, twoHoursAgo, twoHoursAgo);
    write("dep.ts", `export const where: string = import.meta.url;\nexport const n: number = 3;\n`);
    const now = await bundleWorker(entry, dir, cache);
    const left = readdirSync(cache);
    expect(left).not.toContain("entry-0000000000000000.mjs");
    expect(left).toContain("entry-1111111111111111.mjs");
    expect(left).toContain("other-0000000000000000.mjs");
    expect(left).toContain(basename(now));
  });

  it("a source that cannot be bundled falls back to tsx with a note saying why", async () => {
    const bad = write("bad.ts", `import "./missing.ts";\n`);
    const e = await workerEntry(bad);
    expect(e.bundled).toBe(false);
    expect(e.execArgv[0]).toBe("--import");
    expect(e.note).toMatch(/unavailable .*missing\.ts.*through tsx/);
  });

  it("a worker that must import a user's .ts file goes through tsx", async () => {
    const e = await workerEntry(entry, { needsTsx: "a user's policy file" });
    expect(e).toMatchObject({ bundled: false, note: "a user's policy file" });
  });

  it("a piscina worker started from the project's bundle, without tsx, runs a comparison task", async () => {
    const e = await workerEntry(new URL("../lab/compare-worker.ts", import.meta.url));
    expect(e.bundled).toBe(true);
    expect(e.execArgv).toEqual([]);
    const { planCompare } = await import("../lab/compare.ts");
    const settings = {
      seed: 1,
      variant: "standard",
      kernelFeatures: [],
      frames: 4,
      honest: 1,
    };
    const plan = planCompare({
      ...settings,
      policies: ["none"],
      behaviours: ["honest-renderer"],
      seeds: 1,
    });
    const pool = new Piscina({ filename: e.filename, execArgv: e.execArgv, maxThreads: 1 });
    try {
      const out = (await pool.run({
        tasks: plan.tasks,
        settings,
        counter: new Int32Array(new SharedArrayBuffer(8)),
      })) as [number, { digest: string }][];
      expect(out.map(([i]) => i)).toEqual([0]);
      expect(out[0][1].digest).toMatch(/^[0-9a-f]+$/);
    } finally {
      await pool.destroy();
    }
  }, 60_000);
});
