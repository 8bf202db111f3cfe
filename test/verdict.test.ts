/**
 * The verdict rules (lab/verdict.ts) from plain facts, as a run on a real compositor would
 * give them, and the stricter harm rules end to end: a policy that refuses every pool gets
 * honest-harmed in every cell of the comparison and a finding in the fuzzer.
 */
import { describe, expect, it } from "vitest";
import { policyNames, registerPolicy } from "../compositor/policies/index.ts";
import { compare, defaultBehaviours } from "../lab/compare.ts";
import { fuzz } from "../lab/fuzz/fuzz.ts";
import { makeSpec, runOne } from "../lab/run.ts";
import {
  type ClientFacts,
  type CompositorFacts,
  honestHarm,
  hostileOutcomeOf,
  type RunFacts,
  verdictOf,
} from "../lab/verdict.ts";
import { refuseEveryPool } from "./fixtures/policies/refuse-every-pool.ts";

const alive: CompositorFacts = { alive: true, death: null, faultsHandled: 0, zeroPages: 0 };
const honest = (over: Partial<ClientFacts> = {}): ClientFacts => ({
  label: "honest-renderer#0",
  honest: true,
  closedBy: null,
  protocolError: null,
  pixels: "correct",
  committed: true,
  killed: null,
  notices: [],
  ...over,
});
const hostile = (over: Partial<ClientFacts> = {}): ClientFacts =>
  honest({ label: "attack#1", honest: false, pixels: "none", ...over });
const facts = (clients: ClientFacts[], compositor: CompositorFacts = alive): RunFacts => ({
  compositor,
  clients,
});

describe("verdictOf: the rules, in order", () => {
  it("a dead compositor is `died`, whatever else happened", () => {
    const v = verdictOf(
      facts([honest({ pixels: "zero" }), hostile({ protocolError: "wl_shm.invalid_fd" })], {
        ...alive,
        alive: false,
        death: { signal: "SIGBUS", reason: "unhandled", cause: "" },
      }),
    );
    expect(v).toEqual({ verdict: "died", cell: "DIED SIGBUS" });
  });

  it("an honest client's wrong pixels are harm, worded as before", () => {
    expect(verdictOf(facts([honest({ pixels: "stale" }), hostile()]))).toEqual({
      verdict: "honest-harmed",
      cell: "harmed: stale",
    });
  });

  it("an honest bystander refused with a protocol error is harm (it was never shown)", () => {
    const v = verdictOf(
      facts([
        honest({ pixels: "none", protocolError: "wl_shm.invalid_fd", closedBy: "compositor" }),
        hostile({ protocolError: "wl_shm.invalid_fd", closedBy: "compositor" }),
      ]),
    );
    expect(v).toEqual({ verdict: "honest-harmed", cell: "refused: invalid_fd" });
  });

  it("an honest client dropped by the compositor without an error is harm", () => {
    const v = verdictOf(facts([honest({ closedBy: "compositor" }), hostile()]));
    expect(v).toEqual({ verdict: "honest-harmed", cell: "honest disconnected" });
  });

  it("an honest client that committed and was never shown is harm", () => {
    const v = verdictOf(facts([honest({ pixels: "none" }), hostile()]));
    expect(v).toEqual({ verdict: "honest-harmed", cell: "never shown" });
    // Not yet having committed anything is not harm: there was nothing to show.
    expect(
      verdictOf(facts([honest({ pixels: "none", committed: false }), hostile()])).verdict,
    ).toBe("undetected");
  });

  it("an honest client nobody could look at is neither harm nor proof of none", () => {
    // Committed but unchecked (a real run without a capture): not "never shown" ...
    const v = verdictOf(facts([honest({ pixels: "unchecked" }), hostile()]));
    expect(v).toEqual({ verdict: "undetected", cell: "no effect seen (unchecked)" });
    expect(honestHarm(honest({ pixels: "unchecked" }))).toBeNull();
    // ... and an honest client under test unchecked is not a plain "ok".
    expect(verdictOf(facts([honest({ pixels: "unchecked" })]))).toEqual({
      verdict: "ok",
      cell: "ok (unchecked)",
    });
    // Harm seen elsewhere stays harm.
    expect(
      verdictOf(facts([honest({ pixels: "unchecked" }), honest({ pixels: "stale" })])),
    ).toEqual({ verdict: "honest-harmed", cell: "harmed: stale" });
  });

  it("an honest client whose process was killed is harm", () => {
    const v = verdictOf(
      facts([
        honest({ closedBy: "client", killed: { signal: "SIGKILL", reason: "oom" } }),
        hostile(),
      ]),
    );
    expect(v).toEqual({ verdict: "honest-harmed", cell: "honest killed (SIGKILL)" });
  });

  it("an honest client that left by itself, having been shown correctly, is not harmed", () => {
    expect(honestHarm(honest({ closedBy: "client" }))).toBeNull();
  });

  it("an honest client under test refused is harm; shown correctly it is ok", () => {
    expect(
      verdictOf(facts([honest(), honest({ protocolError: "wl_shm.invalid_stride" })])),
    ).toEqual({ verdict: "honest-harmed", cell: "refused: invalid_stride" });
    expect(verdictOf(facts([honest(), honest()]))).toEqual({ verdict: "ok", cell: "ok" });
  });

  it("a hostile client told with a protocol error: error-to-client", () => {
    expect(
      verdictOf(
        facts([honest(), hostile({ protocolError: "wl_shm.invalid_fd", closedBy: "compositor" })]),
      ),
    ).toEqual({ verdict: "error-to-client", cell: "invalid_fd" });
  });

  it("faults survived without telling: tolerated, worded by what its window showed", () => {
    const comp = { ...alive, faultsHandled: 2 };
    expect(verdictOf(facts([honest(), hostile({ pixels: "zero" })], comp))).toEqual({
      verdict: "tolerated",
      cell: "zeros, no error",
    });
    expect(verdictOf(facts([honest(), hostile({ pixels: "stale" })], comp)).cell).toBe(
      "last frame kept, no error",
    );
    expect(verdictOf(facts([honest(), hostile({ notices: ["segment freed"] })])).verdict).toBe(
      "tolerated",
    );
  });

  it("an X11 error with the client kept (Xorg): error-to-client, `BadValue (kept)`; a survived fault still wins", () => {
    expect(verdictOf(facts([honest(), hostile({ xErrors: ["BadValue"] })]))).toEqual({
      verdict: "error-to-client",
      cell: "BadValue (kept)",
    });
    // After a busfault the later puts are BadShmSeg: the fault it was never told of decides.
    const comp = { ...alive, faultsHandled: 1 };
    expect(
      verdictOf(facts([honest(), hostile({ pixels: "zero", xErrors: ["BadShmSeg"] })], comp)),
    ).toEqual({ verdict: "tolerated", cell: "zeros, no error" });
  });

  it("a hostile client dropped without a word was not told: tolerated, not error-to-client", () => {
    expect(verdictOf(facts([honest(), hostile({ closedBy: "compositor" })]))).toEqual({
      verdict: "tolerated",
      cell: "disconnected, no error",
    });
  });

  it("nothing seen: undetected; the client's own death: undetected, worded so", () => {
    expect(verdictOf(facts([honest(), hostile()]))).toEqual({
      verdict: "undetected",
      cell: "no effect seen",
    });
    expect(
      verdictOf(
        facts([
          honest(),
          hostile({ closedBy: "client", killed: { signal: "SIGBUS", reason: "unhandled" } }),
        ]),
      ),
    ).toEqual({ verdict: "undetected", cell: "client died" });
  });
});

describe("a policy that refuses every pool is caught", () => {
  if (!policyNames().includes(refuseEveryPool.name)) registerPolicy(refuseEveryPool);

  it("gets honest-harmed in every cell of the comparison", () => {
    const r = compare({
      policies: [refuseEveryPool.name],
      behaviours: defaultBehaviours(),
      seed: 1,
      seeds: 1,
      variant: "standard",
      kernelFeatures: [],
      frames: 4,
      honest: 2,
    });
    expect(r.cells.length).toBe(defaultBehaviours().length);
    for (const c of r.cells) expect(c.verdict, `${c.behaviour}: ${c.text}`).toBe("honest-harmed");
    // The honest bystanders were refused, and the record says who closed the connection.
    const run = r.runs[r.cells[0].runs[0]];
    const bystander = run.clients[0];
    expect(bystander.protocolError?.error).toBe("wl_shm.invalid_fd");
    expect(bystander.closedBy).toBe("compositor");
  });

  it("the run's verdict names the refusal", () => {
    const rec = runOne(
      makeSpec({ policy: refuseEveryPool.name, behaviour: "honest-renderer", frames: 4 }),
      { policy: refuseEveryPool },
    );
    expect(rec.verdict).toBe("honest-harmed");
    expect(rec.cell).toBe("refused: invalid_fd");
  });

  it("gets a finding from the fuzzer: honest-connected", () => {
    const r = fuzz({
      policy: refuseEveryPool,
      policyArg: "test/fixtures/policies/refuse-every-pool.ts",
      seed: 1,
      runs: 3,
      maxFindings: 1,
      shrinkRuns: 20,
    });
    expect(r.findings.length).toBeGreaterThan(0);
    expect(r.findings[0].finding.invariant).toBe("honest-connected");
    expect(r.findings[0].finding.place).toBe("honest client refused by the compositor");
  });
});

describe("verdictOf: the words of each cell (docs/real-compositors.md's vocabulary)", () => {
  const faulted: CompositorFacts = { ...alive, faultsHandled: 2 };

  it("a dead compositor without a known signal is plain DIED", () => {
    const v = verdictOf(facts([honest(), hostile()], { ...alive, alive: false }));
    expect(v).toEqual({ verdict: "died", cell: "DIED" });
  });

  it("every honest client's wrong pixels are named, in client order", () => {
    const v = verdictOf(
      facts([honest({ pixels: "stale" }), honest({ pixels: "zero" }), hostile()]),
    );
    expect(v).toEqual({ verdict: "honest-harmed", cell: "harmed: stale/zero" });
  });

  it("pixel harm is named before a refusal of another honest client", () => {
    const v = verdictOf(
      facts([honest({ protocolError: "wl_shm.invalid_fd" }), honest({ pixels: "foreign" })]),
    );
    expect(v.cell).toBe("harmed: foreign");
  });

  it("a refusal keeps wl_display errors short too", () => {
    const v = verdictOf(facts([honest({ protocolError: "wl_display.invalid_object" })]));
    expect(v.cell).toBe("refused: invalid_object");
  });

  it("a hostile client's own harm is no honest harm", () => {
    expect(honestHarm(hostile({ pixels: "zero", killed: { signal: "SIGBUS", reason: "x" } }))).toBe(
      null,
    );
  });

  it("an honest client under test that was shown but not checked correct: ok with its class", () => {
    expect(verdictOf(facts([honest({ pixels: "none", committed: false })]))).toEqual({
      verdict: "ok",
      cell: "ok (none)",
    });
  });

  it("no client at all: ok", () => {
    expect(verdictOf(facts([]))).toEqual({ verdict: "ok", cell: "ok" });
  });

  it("an honest bystander nobody could look at marks a hostile cell (unchecked), once", () => {
    const v = verdictOf(
      facts([honest({ pixels: "unchecked" }), hostile({ protocolError: "wl_shm.invalid_fd" })]),
    );
    expect(v).toEqual({ verdict: "error-to-client", cell: "invalid_fd (unchecked)" });
    // A hostile client's own unchecked window is not an honest client's.
    expect(verdictOf(facts([honest(), hostile({ pixels: "unchecked" })])).cell).toBe(
      "no effect seen",
    );
  });

  it("tolerated, by what the hostile client's window showed at the end", () => {
    const cell = (pixels: ClientFacts["pixels"]) =>
      verdictOf(facts([honest(), hostile({ pixels })], faulted)).cell;
    expect(cell("none")).toBe("survived, not shown, no error");
    expect(cell("correct")).toBe("survived (correct), no error");
    expect(cell("stale")).toBe("last frame kept, no error");
    expect(verdictOf(facts([honest(), hostile()], faulted)).verdict).toBe("tolerated");
  });

  it("zero pages mapped beyond EOF, or a notice from the policy, without a fault: tolerated", () => {
    expect(
      verdictOf(facts([honest(), hostile({ pixels: "zero" })], { ...alive, zeroPages: 1 })),
    ).toEqual({
      verdict: "tolerated",
      cell: "zeros, no error",
    });
    expect(verdictOf(facts([honest(), hostile({ notices: ["segment freed"] })])).verdict).toBe(
      "tolerated",
    );
  });
});

describe("hostileOutcomeOf: what happened to the hostile client, in the record's words", () => {
  const h = hostile();
  it("a protocol error passes through as it is", () => {
    const e = { kind: "disconnected", error: "wl_shm.invalid_fd", message: "m" } as const;
    expect(hostileOutcomeOf(h, alive, e as never)).toBe(e);
  });

  it("a dead compositor: killed-compositor, with signal, reason and cause", () => {
    const comp = {
      ...alive,
      alive: false,
      death: { signal: "SIGBUS", reason: "unhandled", cause: "read pool" },
    };
    expect(hostileOutcomeOf(h, comp, null)).toEqual({
      kind: "killed-compositor",
      how: "SIGBUS (unhandled): read pool",
    });
    expect(hostileOutcomeOf(h, { ...alive, alive: false }, null)).toEqual({
      kind: "killed-compositor",
      how: "? (?): ",
    });
  });

  it("faults handled: tolerated, worded by the policy's notice, else by the count", () => {
    const comp = { ...alive, faultsHandled: 3 };
    expect(hostileOutcomeOf(h, comp, null)).toEqual({
      kind: "tolerated",
      how: "3 SIGBUS handled",
      screen: "none",
    });
    expect(hostileOutcomeOf(hostile({ notices: ["copied"] }), comp, null)).toMatchObject({
      how: "copied",
    });
  });

  it("dropped by the compositor: tolerated, even when faults were handled", () => {
    expect(
      hostileOutcomeOf(hostile({ closedBy: "compositor" }), { ...alive, faultsHandled: 1 }, null),
    ).toEqual({
      kind: "tolerated",
      how: "disconnected without an error",
      screen: "none",
    });
  });

  it("an X error: x-error with the policy's notice as its message, else the error", () => {
    expect(hostileOutcomeOf(hostile({ xErrors: ["BadShmSeg", "BadValue"] }), alive, null)).toEqual({
      kind: "x-error",
      error: "BadShmSeg",
      message: "BadShmSeg",
    });
    expect(
      hostileOutcomeOf(hostile({ xErrors: ["BadValue"], notices: ["size check"] }), alive, null),
    ).toMatchObject({ message: "size check" });
  });

  it("zero pages beyond EOF: tolerated, so worded; the client's own death: self-destructed", () => {
    expect(hostileOutcomeOf(h, { ...alive, zeroPages: 2 }, null)).toMatchObject({
      kind: "tolerated",
      how: "zero pages mapped beyond EOF",
    });
    expect(
      hostileOutcomeOf(
        hostile({ killed: { signal: "SIGSEGV", reason: "unhandled" } }),
        alive,
        null,
      ),
    ).toEqual({ kind: "self-destructed", how: "SIGSEGV (unhandled)" });
    expect(hostileOutcomeOf(h, alive, null)).toEqual({ kind: "undetected" });
  });
});
