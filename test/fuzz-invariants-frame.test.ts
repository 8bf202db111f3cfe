/**
 * The per-frame invariants (lab/fuzz/invariants.ts) on hand-made frames: exactly the
 * situations their rules name — a fault told or untold, a client's own disconnect versus
 * one the compositor made, a protocol error to the hostile client, faults and errors of an
 * earlier frame, pools of clients gone. The end-to-end fixtures (test/oracle-live.test.ts)
 * show each invariant fires in a real run; these pin where each rule's edges are.
 */
import { describe, expect, it } from "vitest";
import { libwayland } from "../compositor/policies/libwayland.ts";
import type { Policy } from "../compositor/policy.ts";
import type { ProtocolErrorRecord } from "../compositor/stats.ts";
import type { ExecState } from "../lab/fuzz/behaviour.ts";
import { Checker, InvariantViolation, promiseOf } from "../lab/fuzz/invariants.ts";
import type { RunView } from "../lab/run.ts";
import { SHM_ERROR } from "../protocol/schema.ts";

type Closed = "client" | "compositor" | null;
interface FakeClient {
  label: string;
  honest: boolean;
  lastPixels?: string;
  committed?: boolean;
  closedBy?: Closed;
  pools?: number;
}
interface Frame {
  sigbus?: number;
  errors?: Partial<ProtocolErrorRecord>[];
  clients: FakeClient[];
  poolCount?: number;
}

/** A frame as the run would show it, with nothing placed on the output. */
function view(f: Frame, frame = 1): RunView {
  const clients = f.clients.map((c, index) => ({
    index,
    label: c.label,
    honest: c.honest,
    lastPixels: c.lastPixels ?? (c.honest ? "correct" : "none"),
    committed: c.committed ?? c.honest,
    closedBy: c.closedBy ?? null,
    client: { pools: new Map(Array.from({ length: c.pools ?? 0 }, (_, i) => [i, {}])) },
  }));
  return {
    frame,
    kernel: { frames: { getStats: () => ({ inUse: 0 }) } },
    compositor: {
      alive: true,
      errors: (f.errors ?? []).map((e) => ({
        interface: "wl_buffer",
        code: 0,
        objectId: 9,
        message: "m",
        ...e,
      })),
      proc: { counters: { sigbus: f.sigbus ?? 0 } },
      server: { clients: clients.map((c) => ({ label: c.label, closed: c.closedBy !== null })) },
      placements: () => [],
      framebuffer: new Uint32Array(4),
      width: 2,
      poolCount: f.poolCount ?? 0,
    },
    clients,
  } as unknown as RunView;
}

const promising = (clientReceives: string) =>
  new Checker(promiseOf({ ...libwayland, clientReceives } as Policy), 1, new Map());
const tells = () => promising("wl_shm.invalid_fd on the wl_buffer");
const INVALID_FD = SHM_ERROR.invalid_fd;

function broken(c: Checker, ...frames: Frame[]): InvariantViolation | undefined {
  try {
    for (const [i, f] of frames.entries()) c.afterFrame(view(f, i + 1));
  } catch (e) {
    if (e instanceof InvariantViolation) return e;
    throw e;
  }
  return undefined;
}

const HONEST = { label: "honest#0", honest: true };
const HOSTILE = { label: "attack#1", honest: false };

describe("hostile-promise: a fault the compositor survived must be told, as promised", () => {
  it("told with the promised code on the wl_buffer: holds", () => {
    const f = {
      sigbus: 1,
      errors: [{ client: HOSTILE.label, code: INVALID_FD }],
      clients: [HONEST, HOSTILE],
    };
    expect(broken(tells(), f)).toBeUndefined();
  });

  it("no error at all: broken, at the stable place naming the promise", () => {
    const v = broken(tells(), { sigbus: 1, clients: [HONEST, HOSTILE] });
    expect([v?.invariant, v?.place]).toEqual([
      "hostile-promise",
      "fault tolerated silently (promised wl_shm.invalid_fd)",
    ]);
  });

  it("a wl_buffer error with another code to an honest client is not the promise", () => {
    const f = {
      sigbus: 1,
      errors: [{ client: HONEST.label, code: 0 }],
      clients: [HONEST, HOSTILE],
    };
    expect(broken(tells(), f)?.invariant).toBe("hostile-promise");
  });

  it("the hostile client's own disconnect excuses it; the compositor dropping it does not", () => {
    const own = { sigbus: 1, clients: [HONEST, { ...HOSTILE, closedBy: "client" as Closed }] };
    expect(broken(tells(), own)).toBeUndefined();
    const dropped = {
      sigbus: 1,
      clients: [HONEST, { ...HOSTILE, closedBy: "compositor" as Closed }],
    };
    expect(broken(tells(), dropped)?.invariant).toBe("hostile-promise");
  });

  it("another protocol error to the hostile client in that frame excuses it (it was told)", () => {
    const f = {
      sigbus: 1,
      errors: [{ client: HOSTILE.label, interface: "wl_display", code: 1 }],
      clients: [HONEST, HOSTILE],
    };
    expect(broken(tells(), f)).toBeUndefined();
  });

  it("a disconnect in an earlier frame excuses no later fault", () => {
    const gone = { ...HOSTILE, closedBy: "client" as Closed };
    const second = { ...HOSTILE, label: "attack#2" };
    const v = broken(
      tells(),
      { clients: [HONEST, gone, second] },
      { sigbus: 1, clients: [HONEST, gone, second] },
    );
    expect(v?.invariant).toBe("hostile-promise");
    expect(v?.frame).toBe(2);
  });

  it("faults and errors are counted per frame: an earlier frame's error tells no new fault", () => {
    const told = {
      sigbus: 1,
      errors: [{ client: HOSTILE.label, code: INVALID_FD }],
      clients: [HONEST, HOSTILE],
    };
    const quiet = { ...told, sigbus: 1 }; // same totals: no new fault, no new error
    expect(broken(tells(), told, quiet)).toBeUndefined();
    const again = { ...told, sigbus: 2 }; // a new fault, the old error only
    expect(broken(tells(), told, again)?.frame).toBe(2);
  });

  it("a policy that promises nothing may send no wl_buffer error; other errors are not its promise", () => {
    const silent = () => promising("nothing: the fault is hidden");
    const buf = {
      errors: [{ client: HOSTILE.label, code: INVALID_FD }],
      clients: [HONEST, HOSTILE],
    };
    const v = broken(silent(), buf);
    expect([v?.invariant, v?.place]).toEqual([
      "hostile-promise",
      "error sent where nothing is promised",
    ]);
    const display = {
      errors: [{ client: HOSTILE.label, interface: "wl_display" }],
      clients: [HONEST, HOSTILE],
    };
    expect(broken(silent(), display)).toBeUndefined();
  });
});

describe("honest-connected and honest-pixels", () => {
  it("an honest client refused (an error for it) versus dropped (an error for another only)", () => {
    const refused = broken(tells(), {
      errors: [{ client: HONEST.label, interface: "wl_shm", code: 1 }],
      clients: [{ ...HONEST, closedBy: "compositor" }, HOSTILE],
    });
    expect(refused?.place).toBe("honest client refused by the compositor");
    const dropped = broken(tells(), {
      errors: [{ client: HOSTILE.label, interface: "wl_shm", code: 1 }],
      clients: [{ ...HONEST, closedBy: "compositor" }, HOSTILE],
    });
    expect(dropped?.place).toBe("honest client disconnected by the compositor");
    const left = broken(tells(), { clients: [{ ...HONEST, closedBy: "client" }, HOSTILE] });
    expect(left?.place).toBe("honest client's connection ended on its side");
    expect(left?.invariant).toBe("honest-connected");
  });

  it("not shown before its first commit is fine; after it, harm; a wrong frame is named", () => {
    expect(
      broken(tells(), { clients: [{ ...HONEST, lastPixels: "none", committed: false }] }),
    ).toBeUndefined();
    const unseen = broken(tells(), {
      clients: [{ ...HONEST, lastPixels: "none", committed: true }],
    });
    expect([unseen?.invariant, unseen?.place]).toEqual([
      "honest-pixels",
      "honest client not shown",
    ]);
    const stale = broken(tells(), { clients: [{ ...HONEST, lastPixels: "stale" }] });
    expect(stale?.place).toBe("honest region shows stale");
    // A hostile client's window is not held to it.
    expect(
      broken(tells(), { clients: [HONEST, { ...HOSTILE, lastPixels: "zero", committed: true }] }),
    ).toBeUndefined();
  });
});

describe("pool-bound: pools held against pools asked for by clients still connected", () => {
  it("counts the pools of open clients only, from their fuzz state or their own count", () => {
    const states = new Map([["fuzz#1", { poolsRequested: 2 } as ExecState]]);
    const c = () => new Checker(promiseOf(libwayland), 1, states);
    const clients = [
      HONEST,
      { label: "fuzz#1", honest: false, pools: 9 },
      { ...HOSTILE, label: "gone#2", pools: 5, closedBy: "client" as Closed },
    ];
    // honest: 1 pool of its own, fuzz#1: 2 by its state (not its 9), gone#2: none counted.
    const honestPools = { ...HONEST, pools: 1 };
    const at = (poolCount: number) =>
      broken(c(), { clients: [honestPools, ...clients.slice(1)], poolCount });
    expect(at(3)).toBeUndefined();
    const v = at(4);
    expect([v?.invariant, v?.place]).toEqual(["pool-bound", "pools held"]);
  });
});

describe("InvariantViolation", () => {
  it("is an Error named for itself whose message says invariant, place and detail", () => {
    const v = new InvariantViolation("pool-bound", "pools held", "3 > 2", 7);
    expect(v).toBeInstanceOf(Error);
    expect(v.name).toBe("InvariantViolation");
    expect(v.message).toBe("pool-bound at pools held: 3 > 2");
  });
});
