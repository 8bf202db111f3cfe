/**
 * The short soak (issue 18): a real `shmlab serve` child on loopback, honest clients beside
 * every attack of cli/soak.ts and the garbage fuzzer for a few seconds. The full run is
 * `npm run soak` (10 minutes, not in CI). No wall-clock figure is asserted here: the
 * honest clients must all keep drawing without a failure, the attacks must have been met
 * with refusals, and the kernel memory the attackers took must be back when they leave.
 */
import { describe, expect, it } from "vitest";
import { runSoak } from "../cli/soak.ts";

describe("soak (short)", () => {
  it("honest clients are served through every attack, and the memory comes back", async () => {
    const r = await runSoak({
      warmupMs: 1500,
      attackMs: 4000,
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
  }, 120_000);
});
