/**
 * real/x11-facts.ts: an X11 observation turned into the verdict rules' facts. Plain data in,
 * plain data out, so no X server is needed.
 */
import { describe, expect, it } from "vitest";
import { verdictOf } from "../lab/verdict.ts";
import type { RealClientObservation, RealRunObservation } from "../real/target.ts";
import { x11RunFacts } from "../real/x11-facts.ts";

function client(over: Partial<RealClientObservation> = {}): RealClientObservation {
  return {
    index: 0,
    behaviour: "honest-renderer",
    honest: true,
    protocolError: null,
    errors: [],
    connection: "open",
    killed: null,
    framesDone: 4,
    releases: 4,
    commits: 4,
    pixels: "correct",
    waitingFor: null,
    notes: [],
    ...over,
  };
}

function run(
  compositor: RealRunObservation["compositor"],
  clients: RealClientObservation[],
): RealRunObservation {
  return {
    target: { kind: "xvfb", version: "Xvfb test" },
    plan: { behaviour: "x", honest: 1, seed: 1, frames: 4, params: {}, timeoutMs: 1000 },
    compositor,
    clients,
    ms: 1,
  };
}

describe("x11RunFacts: the compositor's death", () => {
  const hostile = client({ index: 1, behaviour: "truncate-after-attach", honest: false });

  it("takes its cause from the fault the server logged, not from a fixed word", () => {
    const f = x11RunFacts(
      run(
        {
          alive: false,
          exit: { code: null, signal: "SIGABRT" },
          faultNoted: "Caught signal 7 (Bus error)",
        },
        [client(), hostile],
      ),
    );
    expect(f.compositor.death).toEqual({
      signal: "SIGABRT",
      reason: "fault logged",
      cause: "Caught signal 7 (Bus error)",
    });
  });

  it("says no fault was logged when the log had none", () => {
    const f = x11RunFacts(
      run({ alive: false, exit: { code: 1, signal: null }, faultNoted: null }, [client(), hostile]),
    );
    expect(f.compositor.death).toEqual({ signal: "exit 1", reason: "no fault logged", cause: "" });
  });

  it("has no death while the server lives", () => {
    const f = x11RunFacts(run({ alive: true, exit: null }, [client(), hostile]));
    expect(f.compositor.death).toBeNull();
    expect(verdictOf(f).verdict).not.toBe("died");
  });
});

describe("x11RunFacts: pixels nobody checked", () => {
  it("stay unchecked: not 'never shown' harm, and the cell says so", () => {
    const o = run({ alive: true, exit: null }, [
      client({ pixels: "unchecked" }),
      client({ index: 1, behaviour: "truncate-after-attach", honest: false, pixels: "none" }),
    ]);
    const f = x11RunFacts(o);
    expect(f.clients[0].pixels).toBe("unchecked");
    expect(verdictOf(f)).toEqual({ verdict: "undetected", cell: "no effect seen (unchecked)" });
  });
});
