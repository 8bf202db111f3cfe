/**
 * The `shmlab compare` command as a user meets it: unknown names are errors that list the
 * valid ones; a one-cell compare prints the run with its timeline; --json writes records
 * with the documented schema.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const shmlab = (...args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", join(repo, "cli/main.ts"), ...args], {
    cwd: repo,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });

describe("shmlab compare", () => {
  it("loads a user's behaviour file given as --behaviours ./file.ts, as a policy file loads", () => {
    const r = shmlab(
      "compare",
      "--policies",
      "libwayland,none",
      "--behaviours",
      "./test/fixtures/behaviours/own-attack.ts",
      "--no-progress",
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/test-own-attack\s+│ inv_fd\s+│ DIED\(BUS\)/);
  });

  it("loads it in every worker thread of the comparison too (--workers)", () => {
    const r = shmlab(
      "compare",
      "--workers",
      "3",
      "--policies",
      "libwayland,none,wlroots,kwin,smithay,copy-pread",
      "--behaviours",
      "./test/fixtures/behaviours/own-attack.ts,truncate-after-commit,shown-then-truncated,honest-renderer",
      "--no-progress",
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("24 runs");
    expect(r.stdout).toMatch(/on 3 thread\(s\)/);
    expect(r.stdout).toMatch(/test-own-attack\s+│ inv_fd\s+│ DIED\(BUS\)\s+│ zeros/);
  });

  it("refuses an unknown policy, listing the valid ones, with exit code 2", () => {
    const r = shmlab("compare", "--policies", "libwaylnd");
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown policy libwaylnd; valid: .*libwayland/);
    expect(r.stderr).toContain("SHMLAB_ERR_UNKNOWN_NAME");
  });

  it("refuses unknown behaviours, variants and kernel features the same way", () => {
    expect(shmlab("compare", "--behaviours", "nope").stderr).toMatch(
      /unknown behaviour nope; valid: .*truncate-after-commit/,
    );
    expect(shmlab("compare", "--variant", "nope").stderr).toMatch(
      /unknown variant nope; valid: .*standard/,
    );
    expect(shmlab("compare", "--kernel-feature", "nope").stderr).toMatch(
      /valid: map-nofault, zero-beyond-eof/,
    );
    expect(shmlab("compare", "--seeds", "0").stderr).toMatch(/--seeds must be an integer >= 1/);
    expect(shmlab("compare", "--workers", "0").stderr).toMatch(
      /--workers must be an integer >= 1 or auto, not 0/,
    );
  });

  it("a one-cell compare prints the run, its timeline and the replay line", () => {
    const r = shmlab(
      "compare",
      "--policies",
      "none",
      "--behaviours",
      "truncate-after-commit",
      "--seed",
      "3",
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("none × truncate-after-commit  seed 3  → died");
    expect(r.stdout).toMatch(/compositor: SIGBUS code=BUS_ADRERR/);
    expect(r.stdout).toContain(
      "replay: npx shmlab compare --policies none --behaviours truncate-after-commit --seed 3",
    );
  });

  it("--json writes every run's record with the documented schema", () => {
    const out = join(mkdtempSync(join(tmpdir(), "shmlab-cli-")), "r.json");
    const r = shmlab(
      "compare",
      "--policies",
      "libwayland,wlroots",
      "--behaviours",
      "honest-renderer,pipe-fd",
      "--json",
      out,
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("libwayland");
    const j = JSON.parse(readFileSync(out, "utf8"));
    expect(j.schema).toBe("shmlab.compare/1");
    expect(j.runs).toHaveLength(4);
    expect(j.runs[0].schema).toBe("shmlab.run/1");
    expect(j.cells.map((c: { verdict: string }) => c.verdict)).toEqual([
      "ok",
      "error-to-client",
      "ok",
      "error-to-client",
    ]);
  });
});
