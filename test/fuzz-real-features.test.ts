/**
 * The feedback of `fuzz --real`: features from what the real client observed — the same
 * observation gives the same features, and a different outcome (a death, a protocol error,
 * a screen that showed zeros) is a different feature.
 */
import { describe, expect, it } from "vitest";
import { realFeatures } from "../lab/fuzz/real-features.ts";
import type { VerdictResult } from "../lab/verdict.ts";
import type { RealClientObservation, RealRunObservation } from "../real/target.ts";

const client = (
  honest: boolean,
  over: Partial<RealClientObservation> = {},
): RealClientObservation => ({
  index: honest ? 0 : 1,
  behaviour: honest ? "honest-renderer" : "fuzz-actions",
  honest,
  protocolError: null,
  errors: [],
  connection: "open",
  killed: null,
  framesDone: 5,
  releases: 4,
  commits: 5,
  pixels: "correct",
  waitingFor: null,
  notes: [],
  ...over,
});

const obs = (
  over: Partial<RealRunObservation> = {},
  hostile: Partial<RealClientObservation> = {},
) =>
  ({
    target: { kind: "sway", version: "sway 1.7" },
    plan: {} as RealRunObservation["plan"],
    compositor: { alive: true, exit: null },
    clients: [client(true), client(false, hostile)],
    ms: 100,
    ...over,
  }) as RealRunObservation;

const ok: VerdictResult = { verdict: "undetected", cell: "no effect seen" };

describe("fuzz --real features", () => {
  it("are a function of the observation, and tell outcomes apart", () => {
    const base = realFeatures(obs(), ok, ok);
    expect(realFeatures(obs(), ok, ok)).toEqual(base);
    expect(base).toContain("comp:alive");
    expect(base).toContain("frames:honest:4-7");
    const died = realFeatures(
      obs({ compositor: { alive: false, exit: { code: null, signal: "SIGBUS" } } }),
      { verdict: "died", cell: "DIED SIGBUS" },
      ok,
    );
    expect(died).toContain("comp:died:SIGBUS");
    expect(died).toContain("cells:DIED SIGBUS|no effect seen");
    const refused = realFeatures(
      obs(
        {},
        {
          protocolError: {
            interface: "wl_shm",
            error: "invalid_stride",
            code: 2,
            objectId: 9,
            message: "invalid stride 12",
          },
          connection: "closed-by-server",
          pixels: "zero",
        },
      ),
      ok,
      ok,
    );
    expect(refused).toContain("err:hostile:wl_shm:invalid_stride:invalid stride #");
    expect(refused).toContain("conn:hostile:closed-by-server");
    expect(refused).toContain("pixels:hostile:zero");
    expect(base.has("pixels:hostile:zero")).toBe(false);
  });
});
