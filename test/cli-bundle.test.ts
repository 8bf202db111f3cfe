/**
 * bin/shmlab.js (the `shmlab` command and `npm start`) runs the command from one esbuild
 * bundle of cli/main.ts, without tsx's loader: the same output as the sources through tsx,
 * byte for byte; and through tsx wherever an argument names a TypeScript file the command
 * would import (only tsx loads .ts), or SHMLAB_CLI_BUNDLE=0 says so.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { cliEntry, MAIN } from "../bin/cli-entry.js";
import { namesTypeScript } from "../bin/names-typescript.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = mkdtempSync(join(tmpdir(), "shmlab-cli-bundle-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(argv: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, argv, {
    cwd: repo,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...env },
  });
}

/** A compare's JSON without its wall-clock fields. */
function verdicts(file: string): string {
  return JSON.stringify(JSON.parse(readFileSync(file, "utf8")), (k, v) =>
    k === "msPerFrame" || k === "elapsedMs" ? undefined : v,
  );
}

describe("which arguments name a TypeScript file", () => {
  it("a .ts/.mts/.cts path, alone, in a comma list, after = or as a proposal's rules", () => {
    for (const args of [
      ["--behaviours", "./test/fixtures/behaviours/own-attack.ts"],
      ["--policies", "none,./mine.mts"],
      ["--policy=/abs/p.cts"],
      ["--variant", "proposals/x.xml+rules.ts"],
      ["--behaviours", "file:///somewhere/b.ts"],
    ])
      expect(namesTypeScript(args, repo), args.join(" ")).toBe(true);
  });

  it("an extensionless path that tsx would resolve to a .ts file or a folder's index.ts", () => {
    mkdirSync(join(dir, "pkg"), { recursive: true });
    writeFileSync(join(dir, "mine.ts"), "export {};\n");
    writeFileSync(join(dir, "pkg", "index.ts"), "export {};\n");
    expect(namesTypeScript(["--policies", "./mine"], dir)).toBe(true);
    expect(namesTypeScript(["--policies", "./pkg"], dir)).toBe(true);
    expect(namesTypeScript(["--out", "./elsewhere"], dir)).toBe(false);
  });

  it("not names, output files or folders", () => {
    for (const args of [
      ["compare"],
      ["compare", "--policies", "libwayland,none", "--seed", "3"],
      ["compare", "--json", "/tmp/out.json", "--html", "reports/r.html"],
      ["fuzz", "--out", "findings/run1", "--workers", "2"],
    ])
      expect(namesTypeScript(args, repo), args.join(" ")).toBe(false);
  });
});

describe("bin/shmlab.js", () => {
  it("gives the same comparison as the sources through tsx, byte for byte", () => {
    const cell = [
      "--policies",
      "libwayland,wlroots",
      "--behaviours",
      "honest-renderer,truncate-during-read",
    ];
    const bundled = join(dir, "bundled.json");
    const viaTsx = join(dir, "tsx.json");
    const a = run([
      join(repo, "bin/shmlab.js"),
      "compare",
      ...cell,
      "--no-progress",
      "--json",
      bundled,
    ]);
    expect(a.stderr).toBe("");
    expect(a.status).toBe(0);
    const b = run([
      "--import",
      "tsx",
      join(repo, "cli/main.ts"),
      "compare",
      ...cell,
      "--no-progress",
      "--json",
      viaTsx,
    ]);
    expect(b.status).toBe(0);
    expect(verdicts(bundled)).toBe(verdicts(viaTsx));
    // The printout too, but for its first line (the wall time) and the file it names.
    const text = (out: string, file: string) =>
      out.split("\n").slice(1).join("\n").replace(file, "F");
    expect(text(a.stdout, bundled)).toBe(text(b.stdout, viaTsx));
  });

  it("runs from the bundle, or through tsx when told to or when a .ts file is named", async () => {
    const bundled = await cliEntry(["compare"], repo, {});
    expect(bundled.bundled).toBe(true);
    expect(bundled.file).toMatch(/[\\/]\.cache[\\/]cli[\\/]cli_main-[0-9a-f]{16}\.mjs$/);
    const told = await cliEntry(["compare"], repo, { SHMLAB_CLI_BUNDLE: "0" });
    expect(told).toEqual({ file: MAIN, bundled: false, note: "SHMLAB_CLI_BUNDLE=0" });
    const own = ["compare", "--behaviours", "./test/fixtures/behaviours/own-attack.ts"];
    expect((await cliEntry(own, repo, {})).bundled).toBe(false);
    // And the command then loads that file (through tsx) as before.
    const r = run([join(repo, "bin/shmlab.js"), ...own, "--policies", "none", "--no-progress"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/test-own-attack/);
  });
});
