/**
 * The short soak (issue 18): a real `shmlab serve` child on loopback, honest clients beside
 * every attack of cli/soak.ts and the garbage fuzzer for a few seconds. The full run is
 * `npm run soak` (10 minutes, not in CI). No wall-clock figure is asserted here: the
 * honest clients must all keep drawing without a failure, the attacks must have been met
 * with refusals, and the kernel memory the attackers took must be back when they leave.
 */

import { execFileSync, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runSoak, SoakError } from "../cli/soak.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");

describe("soak (short)", () => {
  it("honest clients are served through every attack, and the memory comes back", async () => {
    const r = await runSoak({
      // Long enough for the warm-up probe's reclaim (2 s of calm after it leaves), so the
      // start figure is taken after a reclaim, as the end figure is (cli/soak.ts rssHow).
      warmupMs: 5000,
      attackMs: 4000,
      // The run waits past it for the server's reclaim (runSoak's settleMs).
      cooldownMs: 2500,
      honest: 2,
      honestIntervalMs: 100,
      policy: "libwayland",
      seed: 1,
      sampleMs: 250,
    });
    const replay = "npx vitest run test/soak.test.ts (seed 1); npm run soak -- --minutes 1";
    expect(r.honest.failures, replay).toEqual([]);
    expect(r.honest.starved, replay).toEqual([]);
    expect(r.serverDeaths).toBe(0);
    // Every attack ran, and the server refused something of each kind.
    for (const kind of [
      "memory-hog",
      "sparse-huge-buffer",
      "huge-pread",
      "idle-sockets",
      "truncate-after-commit",
      "origin-and-text",
      "garbage",
      "textures",
    ])
      expect(r.attacks[kind], kind).toBeGreaterThan(0);
    const refusalKinds = new Set(Object.keys(r.refusals).map((k) => k.split(":")[0]));
    for (const k of ["sparse-huge-buffer", "huge-pread", "idle-sockets", "origin", "text-frame"])
      expect(refusalKinds.has(k), `${k} in ${[...refusalKinds].join(", ")}`).toBe(true);
    expect(r.framesEnd).toBeLessThanOrEqual(r.framesStart + 64);
    expect(r.rssEnd).toBeLessThanOrEqual(r.rssPeak);
    // Memory, not time: the kernel's physical memory is back to its first 4 MiB chunk or
    // two, and the server's RSS within a generous bound of its start (the 10 % of the
    // issue is `npm run soak`'s figure).
    expect(r.reclaim.runs, JSON.stringify(r.reclaim)).toBeGreaterThan(0);
    expect(r.tableBytesEnd).toBeLessThanOrEqual(8 * 1024 * 1024);
    console.log(
      `short soak: RSS start ${r.rssStart}, peak ${r.rssPeak}, end ${r.rssEnd} (${r.rssHow}, ${r.startWindow.length} samples each); ${JSON.stringify(r.reclaim)}`,
    );
    // Start and end are medians of as many samples, taken the same way.
    if (r.rssHow === "after-reclaim") {
      expect(r.endWindow.length).toBe(r.startWindow.length);
      expect(r.startWindow.every((s) => s.phase === "warmup" && s.afterWarmupReclaim)).toBe(true);
      expect(r.endWindow.every((s) => s.afterReclaim)).toBe(true);
    }
    // What the server retains, measured right after its own full GC and malloc_trim, after
    // the warm-up probe and after the attackers: a leak (a per-connection map, a kept
    // buffer) grows it. RSS itself is not asserted here: seconds after a reclaim it is
    // mostly V8's young generation regrowing under the honest traffic, by an amount that
    // depends on the machine's load (1.47x and 1.53x at 02:40 UTC, in a full `npm test` and alone;
    // docs/soak.md) — the 10-minute `npm run soak` holds RSS to 10 %.
    if (r.reclaim.how === "addon") {
      const { start, end } = r.retained;
      expect(start && end, JSON.stringify(r.retained)).toBeTruthy();
      const total = (x: { liveHeapBytes: number; mallocInUseBytes: number }) =>
        x.liveHeapBytes + x.mallocInUseBytes;
      expect(total(end!), JSON.stringify(r.retained)).toBeLessThan(total(start!) * 1.35);
    } else console.log(`short soak: retained memory not checked (${r.reclaim.how})`);
  }, 120_000);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
    return false;
  }
}

async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  return pred();
}

describe("soak cleanup", () => {
  it("a serve that does not start in time is killed before the soak gives up", async () => {
    const opts = { warmupMs: 1, attackMs: 1, cooldownMs: 1, honest: 1, honestIntervalMs: 100 };
    const err = await runSoak({
      ...opts,
      policy: "libwayland",
      seed: 1,
      sampleMs: 250,
      startTimeoutMs: 1,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SoakError);
    expect((err as SoakError).code).toBe("SHMLAB_ERR_SOAK_SERVE_START");
    const pid = (err as SoakError).pid!;
    expect(pid).toBeGreaterThan(0);
    // already reaped when runSoak rejected: no such process any more
    expect(alive(pid)).toBe(false);
  });

  it("`kill <soak pid>` (SIGTERM) stops its serve child too", async () => {
    const soak = spawn(
      process.execPath,
      ["--import", "tsx", join(repo, "scripts/soak.ts"), "--minutes", "1"],
      { cwd: repo, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    soak.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<void>((r) => soak.once("exit", () => r()));
    let servePid = 0;
    try {
      // a first RSS sample: the serve child answers /health
      expect(await until(() => / rss /.test(out), 60_000), out).toBe(true);
      // The serve child by its command line: tsx's esbuild service is a child of the soak
      // too, and it may outlive a SIGTERMed parent for a moment on a loaded machine.
      const kids = execFileSync("pgrep", ["-P", String(soak.pid), "-f", "cli/main.ts serve"], {
        encoding: "utf8",
      });
      servePid = Number(kids.trim().split("\n")[0]);
      expect(alive(servePid)).toBe(true);
      soak.kill("SIGTERM");
      await exited;
      expect(soak.signalCode).toBe("SIGTERM");
      // stopped (and reaped) by the soak before it died, not left to die by chance later
      // (an orphaned serve only dies once a write to its closed stdout fails)
      expect(alive(servePid)).toBe(false);
    } finally {
      if (soak.exitCode === null && soak.signalCode === null) soak.kill("SIGKILL");
      if (servePid && alive(servePid)) process.kill(servePid, "SIGKILL");
    }
  }, 90_000);
});
