/**
 * The model policy xorg-mit-shm held against the real Xvfb it claims to follow: every
 * catalogue behaviour with an MIT-SHM form runs on both (model seeds 1-3, one real run),
 * and the facts must agree — the compositor survived, the hostile client was (not)
 * disconnected, the first X error it got, whether the server handled a SIGBUS on its
 * segment (model: a SIGBUS in the compositor; real: ShmBusfaultNotify's log line), and
 * whether the honest clients' pixels were all correct. The lab compares verdicts; this
 * suite pins the facts verdicts are made of, so a model change that reality refutes fails
 * here (docs/real-compositors.md, "Xvfb", has the table of what was settled and how).
 * Skipped with a note where Xvfb or a C compiler is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { behaviourNames } from "../client/behaviours/index.ts";
import { XORG_NOT_APPLICABLE } from "../compositor/policies/xorg-mit-shm.ts";
import { makeSpec, runOne } from "../lab/run.ts";
import { verdictOf } from "../lab/verdict.ts";
import type { RealInstance } from "../real/target.ts";
import { X11_SCRIPTS } from "../real/x11-behaviours.ts";
import { x11Driver } from "../real/x11-driver.ts";
import { x11RunFacts } from "../real/x11-facts.ts";
import { x11HelperAvailability } from "../real/x11-native.ts";
import { xvfb as xvfbServer } from "../real/xvfb.ts";

const helper = await x11HelperAvailability();
const probe = xvfbServer.probe();
const missing = !probe.available ? probe.why : !helper.available ? helper.why : null;
if (missing) console.log(`xorg-model-vs-xvfb: skipped (${missing})`);

interface Facts {
  alive: boolean;
  disconnected: boolean;
  firstXError: string | null;
  busfault: boolean;
  honestCorrect: boolean;
}

function modelFacts(behaviour: string, seed: number): Facts {
  const r = runOne(makeSpec({ policy: "xorg-mit-shm", behaviour, seed }));
  const hostile = r.clients[r.clients.length - 1];
  const mine = r.compositor.notices.filter((n) => n.client === hostile.label);
  const x = mine.map((n) => /^(Bad\w+):/.exec(n.what)?.[1]).find((e) => e !== undefined);
  return {
    alive: r.compositor.alive,
    disconnected: hostile.protocolError !== null,
    firstXError: x ?? null,
    busfault: mine.some((n) => /truncated by client/.test(n.what)),
    honestCorrect: r.clients
      .filter((c) => c.honest && c !== hostile)
      .every((c) => c.honestResult?.pixels === "correct"),
  };
}

describe.skipIf(missing !== null)("xorg-mit-shm against Xvfb: the same facts", () => {
  let xvfb: RealInstance;
  beforeAll(async () => {
    xvfb = await xvfbServer.start();
  });
  afterAll(async () => {
    await xvfb?.stop();
  });

  it("the model and the driver agree on which behaviours MIT-SHM cannot express", () => {
    for (const b of Object.keys(XORG_NOT_APPLICABLE)) expect(X11_SCRIPTS[b]).toBeUndefined();
    // And the reverse: every other catalogue behaviour has a script, so none silently drops
    // out of this comparison (worker-*: about the model's worker threads, no X11 form).
    const expressible = behaviourNames().filter(
      (b) => !(b in XORG_NOT_APPLICABLE) && !b.startsWith("worker-"),
    );
    expect(Object.keys(X11_SCRIPTS).sort()).toEqual(expressible.sort());
  });

  for (const behaviour of Object.keys(X11_SCRIPTS)) {
    it(behaviour, async () => {
      const o = await x11Driver.run(xvfb, {
        behaviour,
        honest: 2,
        seed: 1,
        frames: 4,
        params: {},
        timeoutMs: 20_000,
      });
      const h = o.clients[o.clients.length - 1];
      const real: Facts = {
        alive: o.compositor.alive,
        disconnected: h.connection === "closed-by-server",
        firstXError: h.errors[0]?.error ?? null,
        busfault: h.notes.some((n) => n.startsWith("busfault:")),
        honestCorrect: o.clients.filter((c) => c.honest).every((c) => c.pixels === "correct"),
      };
      // The same verdict rules on both: the real cell is the model's cell.
      const realCell = verdictOf(x11RunFacts(o));
      for (const seed of [1, 2, 3]) {
        const m = runOne(makeSpec({ policy: "xorg-mit-shm", behaviour, seed }));
        expect({ verdict: m.verdict, cell: m.cell }, `model seed ${seed}: ${m.replay}`).toEqual(
          realCell,
        );
      }
      for (const seed of [1, 2, 3])
        expect(
          modelFacts(behaviour, seed),
          `model seed ${seed} vs Xvfb ${o.target.version}`,
        ).toEqual(real);
    });
  }
});
