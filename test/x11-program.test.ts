/**
 * Fuzz programs on X11 (real/x11-program.ts): the static MIT-SHM form of a program (what is
 * dropped, and why), held to the generator's vocabulary; and, on a real Xvfb (skipped with a
 * note where Xvfb or a C compiler is missing), programs whose outcome follows from
 * xserver's Xext/shm.c and from fork(2)'s copied fd table.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { behaviourNames, registerBehaviour } from "../client/behaviours/index.ts";
import { ACTION_KINDS, type Action, generateProgram } from "../lab/fuzz/actions.ts";
import { actionBehaviour, FUZZ_BEHAVIOUR_NAME } from "../lab/fuzz/behaviour.ts";
import { verdictOf } from "../lab/verdict.ts";
import type { RealInstance, RealRunPlan } from "../real/target.ts";
import { x11Driver } from "../real/x11-driver.ts";
import { x11RunFacts } from "../real/x11-facts.ts";
import { x11HelperAvailability } from "../real/x11-native.ts";
import { X11_ACTION_FORM, X11_PROGRAM_BEHAVIOUR, x11ProgramForm } from "../real/x11-program.ts";
import { xvfb as xvfbServer } from "../real/xvfb.ts";

describe("a fuzz program's MIT-SHM form", () => {
  it("names the model fuzzer's client and knows every action kind the generator draws", () => {
    expect(X11_PROGRAM_BEHAVIOUR).toBe(FUZZ_BEHAVIOUR_NAME);
    expect(Object.keys(X11_ACTION_FORM).sort()).toEqual([...ACTION_KINDS].sort());
  });

  it("drops resize and raw, each with its reason, and keeps the rest in order", () => {
    const prog = [
      { k: "memfd", size: 8192, sealing: false },
      { k: "create-pool", f: 0, size: "file" },
      { k: "resize", p: 0, size: 16384 },
      { k: "raw", what: "garbage-bytes", n: 3 },
      { k: "truncate", f: 0, size: 0 },
    ] as Action[];
    const f = x11ProgramForm(prog);
    expect(f.actions.map((a) => a.k)).toEqual(["memfd", "create-pool", "truncate"]);
    expect(f.dropped.map((d) => [d.i, d.k])).toEqual([
      [2, "resize"],
      [3, "raw"],
    ]);
    expect(f.dropped[0].why).toMatch(/no pool resize/);
  });

  it("drops an attach of a destroyed buffer, not one of a live buffer in another slot", () => {
    const prog = [
      { k: "memfd", size: 8192, sealing: false },
      { k: "surface" },
      { k: "create-pool", f: 0, size: "file" },
      { k: "create-buffer", p: 0, offset: 0, width: 8, height: 8, stride: 32, format: 1 },
      { k: "create-buffer", p: 0, offset: 256, width: 8, height: 8, stride: 32, format: 1 },
      { k: "destroy-buffer", b: 0 },
      { k: "attach", s: 0, b: 2, commit: true }, // slot 2 mod 2 = 0: destroyed
      { k: "attach", s: 0, b: 1, commit: true },
      { k: "attach", s: 0, b: -1, commit: true }, // a null attach names no buffer
    ] as Action[];
    const f = x11ProgramForm(prog);
    expect(f.dropped.map((d) => d.i)).toEqual([6]);
    expect(f.actions).toHaveLength(prog.length - 1);
  });

  it("a buffer on a destroyed pool is never made, and a closed fd makes no pool", () => {
    const prog = [
      { k: "memfd", size: 8192, sealing: false },
      { k: "surface" },
      { k: "create-pool", f: 0, size: "file" },
      { k: "destroy-pool", p: 0 },
      { k: "create-buffer", p: 0, offset: 0, width: 8, height: 8, stride: 32, format: 1 },
      { k: "close", f: 0 },
      { k: "create-pool", f: 0, size: "file" },
      { k: "create-buffer", p: 1, offset: 0, width: 8, height: 8, stride: 32, format: 1 },
      { k: "destroy-buffer", b: 0 },
      // No buffer exists, so nothing is destroyed and this attach names nothing: kept.
      { k: "attach", s: 0, b: 0, commit: true },
    ] as Action[];
    expect(x11ProgramForm(prog).dropped).toEqual([]);
  });

  it("is idempotent on generated programs", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const p = generateProgram(seed, { maxClients: 1, length: 16 }).clients[0];
      const once = x11ProgramForm(p).actions;
      const twice = x11ProgramForm(once);
      expect(twice.actions).toEqual(once);
      expect(twice.dropped).toEqual([]);
    }
  });
});

const helper = await x11HelperAvailability();
const probe = xvfbServer.probe();
const missing = !probe.available ? probe.why : !helper.available ? helper.why : null;
if (missing) console.log(`x11-program on Xvfb: skipped (${missing})`);

const plan = (actions: readonly object[]): RealRunPlan => ({
  behaviour: X11_PROGRAM_BEHAVIOUR,
  honest: 1,
  seed: 5,
  frames: 4,
  params: { actions: JSON.stringify(actions) },
  timeoutMs: 20_000,
});

/**
 * A 32×32 buffer drawn on a 16 KiB segment, two surfaces. The round trip after create-pool
 * lets Xvfb fstat() the file before anything cuts it (ProcShmAttachFd runs when the server
 * reads the request, not when it is sent: without it, a truncation can come first).
 */
const SHOWN = [
  { k: "memfd", size: 16384, sealing: false },
  { k: "surface" },
  { k: "surface" },
  { k: "create-pool", f: 0, size: "file" },
  { k: "roundtrip" },
  { k: "create-buffer", p: 0, offset: 4096, width: 32, height: 32, stride: 128, format: 1 },
  { k: "draw", f: 0, b: 0, frame: 3 },
];

describe.skipIf(missing !== null)("fuzz programs on a real Xvfb", () => {
  let xvfb: RealInstance;
  beforeAll(async () => {
    if (!behaviourNames().includes(FUZZ_BEHAVIOUR_NAME))
      registerBehaviour(actionBehaviour(undefined));
    xvfb = await xvfbServer.start();
  });
  afterAll(async () => {
    await xvfb?.stop();
  });

  it("a drawn buffer put on the second window is judged there, at its own geometry: correct", async () => {
    const o = await x11Driver.run(
      xvfb,
      plan([...SHOWN, { k: "attach", s: 1, b: 0, commit: true }]),
    );
    const h = o.clients[1];
    expect(h.errors).toEqual([]);
    expect(h.commits).toBe(1);
    expect(h.pixels).toBe("correct");
    expect(o.clients[0].pixels).toBe("correct");
    expect(verdictOf(x11RunFacts(o)).cell).toBe("no effect seen");
  });

  it("a null attach clears the window: nothing shown", async () => {
    const o = await x11Driver.run(
      xvfb,
      plan([
        ...SHOWN,
        { k: "attach", s: 1, b: 0, commit: true },
        { k: "attach", s: 1, b: -1, commit: true },
      ]),
    );
    expect(o.clients[1].pixels).toBe("none");
  });

  it("the forked child truncates through its copy of an fd the parent has closed: zeros, no error", async () => {
    // fork(2): "The child inherits copies of the parent's set of open file descriptors." The
    // put then reads beyond EOF; busfault maps zeros and the server logs the freed segment.
    const o = await x11Driver.run(
      xvfb,
      plan([
        ...SHOWN,
        { k: "fork" },
        { k: "close", f: 0 },
        { k: "child-truncate", f: 0, size: 0 },
        { k: "attach", s: 0, b: 0, commit: true },
        { k: "roundtrip" },
      ]),
    );
    const h = o.clients[1];
    expect(o.compositor.alive).toBe(true);
    expect(h.notes.join("\n")).toMatch(/close: ok; .*child-truncate: ok/);
    expect(h.pixels).toBe("zero");
    expect(verdictOf(x11RunFacts(o)).cell).toBe("zeros, no error");
  });

  it("a pool destroyed while its buffer lives stays attached (no BadShmSeg); detached with it", async () => {
    const o = await x11Driver.run(
      xvfb,
      plan([
        ...SHOWN,
        { k: "destroy-pool", p: 0 },
        { k: "attach", s: 0, b: 0, commit: true },
        { k: "destroy-buffer", b: 0 },
        { k: "roundtrip" },
      ]),
    );
    const h = o.clients[1];
    expect(h.errors).toEqual([]);
    expect(h.pixels).toBe("correct");
    expect(h.notes.join("\n")).toMatch(/destroy-pool: ok; .*destroy-buffer: ok/);
  });
});
