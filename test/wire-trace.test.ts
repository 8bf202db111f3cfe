/**
 * Every run's wire traffic as a WAYLAND_DEBUG=server trace with the kernel's events as
 * comments: the same for a seed every time, in libwayland's format, in the order things
 * happened, and carried to `compare --trace`, the HTML drill-down and fuzz findings.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import { compare } from "../lab/compare.ts";
import { fuzz } from "../lab/fuzz/fuzz.ts";
import { renderHtmlReport } from "../lab/report-html.ts";
import { makeSpec, runOne } from "../lab/run.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const shmlab = (...args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", join(repo, "cli/main.ts"), ...args], {
    cwd: repo,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });

/** libwayland 1.23's wl_closure_print line, with a {queue} name, or a shmlab comment. */
const MESSAGE = /^\[ *\d+\.\d{3}\] \{[^}]+\} ( -> )?[a-z_]+#\d+\.[a-z_]+\((.*)\)$/;
const COMMENT = /^# \[ *\d+\.\d{3}\] /;

function traced(policy: string, behaviour: string) {
  const trace: string[] = [];
  const record = runOne(makeSpec({ policy, behaviour, seed: 1 }), { trace });
  return { trace, record };
}

describe("wire traces", () => {
  it("a seed-1 trace is the same every time, and tracing does not change the run", () => {
    const a = traced("libwayland", "truncate-during-read");
    const b = traced("libwayland", "truncate-during-read");
    expect(a.trace.length).toBeGreaterThan(100);
    expect(b.trace).toEqual(a.trace);
    const untraced = runOne(
      makeSpec({ policy: "libwayland", behaviour: "truncate-during-read", seed: 1 }),
    );
    expect(untraced.digest).toBe(a.record.digest);
    expect(a.record.trace).toBe(a.trace);
  });

  it("reads as WAYLAND_DEBUG: every line a libwayland message or a # comment, times from the virtual clock", () => {
    const { trace } = traced("libwayland", "truncate-during-read");
    for (const l of trace) expect(l, l).toMatch(new RegExp(`${MESSAGE.source}|${COMMENT.source}`));
    // Frame 2 starts at 1/60 s of virtual time.
    expect(trace.some((l) => l.startsWith("[     16.6"))).toBe(true);
    const times = trace.map((l) => Number(/\[ *(\d+\.\d+)\]/.exec(l)?.[1]));
    expect(times).toEqual([...times].sort((x, y) => x - y));
  });

  it("shows the attack in the order it happened: pool, buffer, commit, truncate, SIGBUS at its address, error", () => {
    const { trace, record } = traced("libwayland", "truncate-during-read");
    const me = "{truncate-during-read#2}";
    const at = (re: RegExp) => trace.findIndex((l) => re.test(l));
    const pool = at(
      /\{truncate-during-read#2\} wl_shm#\d+\.create_pool\(new id wl_shm_pool#\d+, fd \d+, 9216\)$/,
    );
    const buffer = at(
      /\{truncate-during-read#2\} wl_shm_pool#\d+\.create_buffer\(new id wl_buffer#\d+, 0, 48, 48, 192, 1\)$/,
    );
    const commit = at(/\{truncate-during-read#2\} wl_surface#\d+\.commit\(\)$/);
    const shrink = at(/^# .* truncate-during-read#2: ftruncate ino=\d+ from=9216 to=0$/);
    const sigbus = at(/^# .* compositor: SIGBUS code=BUS_ADRERR addr=0x[0-9a-f]+$/);
    const error = at(
      /\{truncate-during-read#2\} {2}-> wl_display#1\.error\(wl_buffer#\d+, 2, "error accessing SHM buffer"\)$/,
    );
    expect([pool, buffer, commit, shrink, sigbus, error].every((i) => i >= 0)).toBe(true);
    expect([pool, buffer, commit, shrink, sigbus, error]).toEqual(
      [pool, buffer, commit, shrink, sigbus, error].sort((x, y) => x - y),
    );
    // The address is the one the record's timeline names.
    const addr = /addr=(0x[0-9a-f]+)/.exec(trace[sigbus])?.[1];
    expect(
      record.timeline.some((e) => e.what === "SIGBUS" && e.detail?.includes(`addr=${addr}`)),
    ).toBe(true);
    // The handler's anonymous mapping over the pool comes between the fault and the error.
    expect(trace.slice(sigbus, error).some((l) => /compositor: mmap .*shared=false/.test(l))).toBe(
      true,
    );
    expect(trace.filter((l) => l.includes(me)).length).toBeGreaterThan(5);
  });

  it("compare --trace writes the same file twice, and the HTML drill-down shows it", () => {
    const dir = mkdtempSync(join(tmpdir(), "shmlab-trace-"));
    const args = [
      "compare",
      "--policies",
      "none",
      "--behaviours",
      "truncate-after-commit",
      "--seed",
      "1",
    ];
    const one = shmlab(...args, "--trace", join(dir, "a.log"));
    const two = shmlab(...args, "--trace", join(dir, "b.log"));
    expect(one.status).toBe(0);
    expect(two.status).toBe(0);
    const a = readFileSync(join(dir, "a.log"), "utf8");
    expect(a).toBe(readFileSync(join(dir, "b.log"), "utf8"));
    expect(a.split("\n")[0]).toBe(
      "# shmlab run: none × truncate-after-commit, seed 1, variant standard: DIED SIGBUS",
    );
    expect(a).toMatch(/# \[ *\d+\.\d{3}\] compositor: killed signal=SIGBUS reason=unhandled/);
    const result = compare({
      policies: ["none"],
      behaviours: ["truncate-after-commit"],
      seed: 1,
      seeds: 1,
      variant: "standard",
      kernelFeatures: [],
      frames: 16,
      honest: 2,
      trace: true,
    });
    const html = renderHtmlReport(result);
    expect(html).toContain("wire trace, WAYLAND_DEBUG form");
    expect(html).toContain("wl_surface#");
  }, 60_000);

  it("a fuzz finding carries its minimal case's trace", () => {
    const r = fuzz({
      policy: getPolicy("none"),
      policyArg: "none",
      seed: 1,
      timeMs: 10_000,
      maxFindings: 1,
    });
    const f = r.findings.find((x) => x.finding.invariant === "compositor-alive")?.finding;
    expect(f?.trace?.length).toBeGreaterThan(10);
    expect(f?.trace?.some((l) => /wl_shm#\d+\.create_pool\(/.test(l))).toBe(true);
    expect(f?.trace?.some((l) => /^# .* compositor: SIGBUS /.test(l))).toBe(true);
  }, 60_000);
});
