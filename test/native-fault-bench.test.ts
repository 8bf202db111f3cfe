/**
 * native/fault-bench.c, the host-kernel baseline of `npm run bench kernel`: it runs the
 * SIGBUS + handler mmap + retry pattern and refuses to report unless every page faulted
 * exactly once and read zero. No time is asserted, only that it measured what it says.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { buildNative } from "../native/build.ts";

const b = await buildNative("fault-bench");
if (!b.available) console.log(`native fault-bench test skipped: ${b.reason}`);

describe.skipIf(!b.available)("native fault-bench", () => {
  it("faults once per page beyond EOF and reports one figure per repetition", () => {
    const r = spawnSync(b.available ? b.binary : "", ["64", "3"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { pages: number; reps: number; nsPerFault: number[] };
    expect(out.pages).toBe(64);
    expect(out.nsPerFault).toHaveLength(3);
    for (const ns of out.nsPerFault) expect(ns).toBeGreaterThan(0);
  });

  it("refuses bad arguments with a usage error", () => {
    const r = spawnSync(b.available ? b.binary : "", ["0", "1"], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/PAGES in 1\.\.1048576/);
  });
});
