/**
 * The real judge end to end (needs weston, sway and a C compiler; each part skips with a
 * note without them): a few behaviours on the installed compositors agree with the policies
 * that follow them — including the two cells where a real compositor once proved the model
 * wrong — and `shmlab conformance --compositors` interrupted by Ctrl-C leaves no compositor
 * running. Bounded: a handful of runs, each on a fresh instance.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compare } from "../lab/compare.ts";
import { renderMatrix } from "../lab/matrix-text.ts";
import { compareReal, withRealColumns } from "../lab/real-compare.ts";
import { runRealConformance } from "../lab/real-conformance.ts";
import { wlClientAvailability } from "../native/wl-client.ts";
import { getReal } from "../real/index.ts";
import { isRunning } from "../real/instance.ts";

const REPO = join(import.meta.dirname, "..");
const client = await wlClientAvailability();
const why = (kind: string): string | null => {
  const a = getReal(kind).probe();
  if (!a.available) return a.why;
  if (!client.available) return client.reason;
  return null;
};
for (const k of ["weston", "sway"])
  if (why(k)) console.log(`real ${k} conformance skipped: ${why(k)}`);

/**
 * Real runs are not seeded: under load a racing cell (which of a repaint and a truncation
 * comes first) can flip. A disagreeing cell is run once more, and the second run must agree;
 * the first one's disagreement is printed, so a flip is seen, not hidden.
 */
async function agreeing(
  kind: "weston" | "sway",
  behaviours: string[],
): Promise<Awaited<ReturnType<typeof runRealConformance>>> {
  const opts = { compositors: [kind] as ["weston" | "sway"], seed: 1, frames: 8, honest: 1 };
  const r = await runRealConformance({ ...opts, behaviours });
  const flipped = r.cells.filter((c) => !c.agree).map((c) => c.behaviour);
  if (!flipped.length) return r;
  console.log(`${kind}: ${flipped.join(", ")} disagreed once (a race?); run again`);
  const again = await runRealConformance({ ...opts, behaviours: flipped });
  return { ...r, cells: [...r.cells.filter((c) => c.agree), ...again.cells] };
}

describe("model policies against the installed compositors (seed 1)", () => {
  it.skipIf(why("weston") !== null)(
    "weston-10 agrees with weston, including its SIGSEGV on resize-during-read",
    async () => {
      const r = await agreeing("weston", [
        "truncate-after-commit",
        "resize-pool-smaller",
        "resize-during-read",
      ]);
      expect(r.targets[0].policies).toEqual(["weston-10"]);
      expect(r.targets[0].version).toMatch(/^weston 10\./);
      const died = r.cells.find((c) => c.behaviour === "resize-during-read")!;
      expect(died.real).toEqual({ verdict: "died", cell: "DIED SIGSEGV" });
      expect(r.cells.filter((c) => !c.agree).map((c) => [c.behaviour, c.model, c.real])).toEqual(
        [],
      );
    },
  );

  it.skipIf(why("sway") !== null)(
    "wlroots-0.15 agrees with sway, including its SIGBUS on destroy-buffer-then-shrink",
    async () => {
      const r = await agreeing("sway", ["truncate-after-commit", "destroy-buffer-then-shrink"]);
      expect(r.targets[0].policies).toEqual(["wlroots-0.15"]);
      const died = r.cells.find((c) => c.behaviour === "destroy-buffer-then-shrink")!;
      expect(died.real).toEqual({ verdict: "died", cell: "DIED SIGBUS" });
      expect(r.cells.filter((c) => !c.agree).map((c) => [c.behaviour, c.model, c.real])).toEqual(
        [],
      );
    },
  );
});

describe("compare --real", () => {
  it.skipIf(why("weston") !== null)(
    "adds a column for weston, labelled with its version, beside the policies",
    async () => {
      const behaviours = ["negative-size", "resize-during-read"];
      const base = { behaviours, seed: 1, seeds: 1, frames: 8, honest: 1 };
      const cols = await compareReal({ compositors: ["weston", "mutter"], ...base });
      expect(cols[0].label).toMatch(/^weston 10\.\d+\.\d+$/);
      expect(cols[0].cells.map((c) => [c.behaviour, c.verdict, c.text])).toEqual([
        ["negative-size", "error-to-client", "invalid_stride"],
        ["resize-during-read", "died", "DIED SIGSEGV"],
      ]);
      // mutter is not installed here: one line, no column.
      if (!getReal("mutter").probe().available) expect(cols[1].skipped).toMatch(/not installed/);
      const model = compare({
        ...base,
        policies: ["weston-10"],
        variant: "standard",
        kernelFeatures: [],
      });
      const text = renderMatrix(withRealColumns(model, cols), 200);
      expect(text).toContain(cols[0].label);
      expect(text).not.toContain("mutter");
    },
  );
});

/** Processes whose working directory is under `dir` (our compositors run in their runtime dir). */
function processesUnder(dir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${e}/cwd`);
    } catch (err) {
      if (["ENOENT", "EACCES", "ESRCH"].includes((err as NodeJS.ErrnoException).code ?? ""))
        continue;
      throw err;
    }
    if (cwd.startsWith(dir) && isRunning(Number(e))) out.push(Number(e));
  }
  return out;
}

/** Running strace processes attached to one of `pids` (`strace -f -p PID ...`). */
function tracersOf(pids: number[]): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
    } catch (err) {
      if (["ENOENT", "EACCES", "ESRCH"].includes((err as NodeJS.ErrnoException).code ?? ""))
        continue;
      throw err;
    }
    const p = argv.indexOf("-p");
    if (
      argv[0].endsWith("strace") &&
      p > 0 &&
      pids.includes(Number(argv[p + 1])) &&
      isRunning(Number(e))
    )
      out.push(Number(e));
  }
  return out;
}

const CTRL_C: { name: string; args: string[]; env: Record<string, string>; needs: string[] }[] = [
  {
    name: "`shmlab conformance --compositors weston,sway`",
    args: ["conformance", "--compositors", "weston,sway"],
    env: {},
    needs: ["weston", "sway"],
  },
  {
    // strace counting on: its tracer, and the probe children strace forks while it starts,
    // must go too (real/signal-watch.ts stop()).
    name: "`shmlab conformance --compositors weston` with SHMLAB_REAL_STRACE=1",
    args: ["conformance", "--compositors", "weston"],
    env: { SHMLAB_REAL_STRACE: "1" },
    needs: ["weston"],
  },
  {
    name: "`shmlab fuzz --real xvfb`",
    args: ["fuzz", "--real", "xvfb", "--runs", "50", "--out", "OUT"],
    env: {},
    needs: ["xvfb"],
  },
];

describe("Ctrl-C", () => {
  for (const c of CTRL_C) {
    const missing = c.needs.map(why).find((w) => w !== null) ?? null;
    it.skipIf(missing !== null)(
      `interrupting ${c.name} leaves nothing running${missing ? ` (skipped: ${missing})` : ""}`,
      async () => {
        const tmp = mkdtempSync(join(tmpdir(), "shmlab-ctrlc-"));
        try {
          const args = c.args.map((a) => (a === "OUT" ? join(tmp, "findings") : a));
          const child = spawn(process.execPath, ["--import", "tsx", "cli/main.ts", ...args], {
            cwd: REPO,
            env: { ...process.env, ...c.env, TMPDIR: tmp },
            stdio: ["ignore", "ignore", "pipe"],
          });
          // Wait until a compositor of its is running, then press Ctrl-C.
          let seen: number[] = [];
          for (let i = 0; i < 300 && !seen.length; i++) {
            await new Promise((f) => setTimeout(f, 50));
            seen = processesUnder(tmp);
          }
          expect(seen.length).toBeGreaterThan(0);
          const exit = new Promise<string | null>((r) => child.on("exit", (_c, s) => r(s)));
          child.kill("SIGINT");
          expect(await exit).toBe("SIGINT");
          // SIGKILL is delivered at once but a process exits when it is next scheduled, and
          // its helpers (weston's desktop-shell) when they see their compositor gone: up to
          // 5 s on a loaded machine (one run in ~20 at load 10 still ran after 2 s).
          const left = () => [...seen.filter(isRunning), ...processesUnder(tmp)];
          for (let i = 0; i < 250 && left().length; i++)
            await new Promise((f) => setTimeout(f, 20));
          expect(seen.filter(isRunning)).toEqual([]);
          expect(processesUnder(tmp)).toEqual([]);
          // Nor the strace that counted their signals (its cwd is ours, its target theirs).
          expect(tracersOf(seen)).toEqual([]);
          // Nor a native client helper of the interrupted command (they die with it).
          for (let i = 0; i < 50 && helpersOf(child.pid!).length; i++)
            await new Promise((f) => setTimeout(f, 20));
          expect(helpersOf(child.pid!)).toEqual([]);
          // The compositors' runtime dirs are gone too. (The native client's FIFO dirs,
          // shmlab-wlc-*, are native/wl-client.ts's to clean; not asserted here.)
          expect(readdirSync(tmp).filter((n) => /^shmlab-(weston|sway|xvfb)-/.test(n))).toEqual([]);
        } finally {
          rmSync(tmp, { recursive: true, force: true });
        }
      },
    );
  }
});

/**
 * Native client helpers (native/x11-client.c, wl-client.c) of the Node process `pid`: they
 * take their parent's pid as their last argument (to check PR_SET_PDEATHSIG's parent).
 */
function helpersOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0").filter(Boolean);
    } catch (err) {
      if (["ENOENT", "EACCES", "ESRCH"].includes((err as NodeJS.ErrnoException).code ?? ""))
        continue;
      throw err;
    }
    if (
      /\/\.cache\/native\/(x11-client|wl-client)-/.test(argv[0] ?? "") &&
      argv[argv.length - 1] === String(pid) &&
      isRunning(Number(e))
    )
      out.push(Number(e));
  }
  return out;
}
