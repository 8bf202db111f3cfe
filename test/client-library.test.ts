import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import type { Behaviour } from "../client/behaviour.ts";
import { until } from "../client/behaviour.ts";
import { behaviourNames, getBehaviour, loadBehaviour } from "../client/behaviours/index.ts";
import { Client } from "../client/client.ts";
import {
  allCorrect,
  classifyPixel,
  classifyRegion,
  frameBytes,
  pixelAt,
  renderFrame,
  worsePixel,
} from "../client/pattern.ts";
import { ClientRuntime, makeContext, seededRandom } from "../client/runtime.ts";
import { LocalSys } from "../client/sys.ts";
import { serverFdBridge } from "../protocol/kernel-gateway.ts";
import { DISPLAY_ERROR, SHM_ERROR } from "../protocol/schema.ts";
import { createTestServer } from "../protocol/testing/test-server.ts";
import { createPair } from "../protocol/transports/pair.ts";
import { connectWebSocket } from "../protocol/transports/websocket.ts";
import { ProcessKilled } from "../shm/errors.ts";

async function drive(rts: ClientRuntime[], maxTicks = 5000): Promise<void> {
  for (let i = 0; i < maxTicks; i++) {
    for (const rt of rts) rt.step();
    if (rts.every((r) => r.finished)) return;
    await new Promise((r) => setImmediate(r));
  }
}

function setup(seed = 7) {
  const ts = createTestServer();
  const mk = (index: number, b: Behaviour, params = {}) => {
    const proc = ts.kernel.spawn(`client-${index}`);
    const [ct, st] = createPair();
    ts.server.connect(st, { fds: serverBridge(ts), label: `client-${index}` });
    const c = new Client(ct, new LocalSys(ts.kernel, proc), { label: `client-${index}` });
    return new ClientRuntime(b, c, makeContext(seed, index, params));
  };
  return { ts, mk };
}

const serverBridge = (ts: ReturnType<typeof createTestServer>) =>
  serverFdBridge(ts.kernel, ts.compositor);

describe("pattern", () => {
  it("worsePixel: the one severity order, none < correct < stale < other < zero < foreign", () => {
    const order = ["none", "correct", "stale", "other", "zero", "foreign"] as const;
    for (const [i, a] of order.entries())
      for (const [j, b] of order.entries()) {
        expect(worsePixel(a, b)).toBe(order[Math.max(i, j)]);
      }
  });

  it("derives every pixel from (seed, client, frame, x, y), never zero", () => {
    const a = renderFrame(1, 0, 0, 8, 8);
    expect(a[3 * 8 + 5]).toBe(pixelAt(1, 0, 0, 5, 3));
    expect(renderFrame(1, 0, 0, 8, 8)).toEqual(a);
    expect(renderFrame(2, 0, 0, 8, 8)).not.toEqual(a);
    expect(renderFrame(1, 1, 0, 8, 8)).not.toEqual(a);
    expect(renderFrame(1, 0, 1, 8, 8)).not.toEqual(a);
    for (const v of a) expect(v).not.toBe(0);
  });

  it("classifies correct, stale, zero, foreign and other pixels of a region", () => {
    const w = 16;
    const h = 16;
    const out = new Uint8Array(w * h * 4);
    const mine = frameBytes(3, 2, 5, w, h);
    const old = frameBytes(3, 2, 4, w, h);
    const theirs = frameBytes(3, 7, 9, w, h);
    out.set(mine);
    // Row 1 from the stale frame, row 2 zero, row 3 another client's, one byte of garbage.
    out.set(old.subarray(w * 4, 2 * w * 4), w * 4);
    out.fill(0, 2 * w * 4, 3 * w * 4);
    out.set(theirs.subarray(0, w * 4), 3 * w * 4);
    out[4 * w * 4] = 0x12;
    const c = classifyRegion({
      seed: 3,
      pixels: out,
      stride: w * 4,
      x: 0,
      y: 0,
      width: w,
      height: h,
      expected: { client: 2, frame: 5 },
      stale: [4],
      foreign: [{ client: 7 }],
    });
    expect(c).toEqual({
      correct: w * h - 3 * w - 1,
      stale: w,
      zero: w,
      foreign: w,
      other: 1,
      total: w * h,
    });
    expect(allCorrect(c)).toBe(false);
    expect(classifyPixel(3, pixelAt(3, 2, 5, 1, 1), { client: 2, frame: 5 }, 1, 1)).toBe("correct");
    expect(classifyPixel(3, pixelAt(3, 2, 5, 1, 1), { client: 2, frame: 5 }, 2, 1)).toBe("other");
  });

  it("seeded random is deterministic per (seed, index)", () => {
    const a = seededRandom(5, 1);
    const b = seededRandom(5, 1);
    const c = seededRandom(5, 2);
    const xs = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(xs);
    expect([c(), c(), c()]).not.toEqual(xs);
  });
});

describe("Client + ClientRuntime against the protocol test server", () => {
  it("the honest renderer commits every frame with exactly its pattern", async () => {
    const { ts, mk } = setup(11);
    const rt = mk(0, getBehaviour("honest-renderer"), { frames: 5, width: 32, height: 16 });
    await drive([rt]);
    expect(rt.report()).toMatchObject({ state: "done", reason: "finished", protocolError: null });
    expect(ts.commits).toHaveLength(5);
    for (const [f, cm] of ts.commits.entries())
      expect(cm.bytes).toEqual(frameBytes(11, 0, f, 32, 16));
    expect(rt.client.commitCount).toBe(5);
  });

  it("sealed honest renderer: the memfd carries F_SEAL_SHRINK", async () => {
    const { mk } = setup();
    const rt = mk(0, getBehaviour("honest-renderer"), { frames: 2, seal: true });
    const seen: number[] = [];
    const sys = rt.client.process;
    const oc = rt.client.createPool.bind(rt.client);
    rt.client.createPool = (fd, size) => {
      seen.push(sys.getSeals(fd));
      return oc(fd, size);
    };
    await drive([rt]);
    expect(rt.state).toBe("done");
    expect(seen[0] & 2).toBe(2);
  });

  it("raw requests bypass the client's schema checks (unknown format → invalid_format)", async () => {
    const { mk } = setup();
    const rt = mk(0, getBehaviour("unknown-format"));
    await drive([rt]);
    const r = rt.report();
    expect(r.state).toBe("done");
    expect(r.protocolError).toMatchObject({ code: SHM_ERROR.invalid_format, fromServer: true });
  });

  it("a behaviour that throws ends dead with the reason, its process gone, never escaping", async () => {
    const { ts, mk } = setup();
    const rt = mk(0, getBehaviour("worker-throws"), { after: 1 });
    await drive([rt]);
    expect(rt.state).toBe("dead");
    expect(rt.reason).toContain("deliberate crash");
    expect(rt.client.closed).toBe(true);
    expect(ts.kernel.processes.get(rt.client.process.pid)?.alive).toBe(false);
  });

  it("a ProcessKilled in a step ends the client dead with the signal recorded", async () => {
    const { mk } = setup();
    const suicide: Behaviour = {
      name: "touch-beyond-eof",
      description: "stores past EOF of its own mapping",
      honest: false,
      source: "test",
      *run(c) {
        const m = c.createMemfd(4096);
        const a = c.mapShared(m, 8192);
        c.process.ftruncate(m.fd, 0);
        yield;
        c.process.store(a + 4096, new Uint8Array([1]));
      },
    };
    const rt = mk(0, suicide);
    expect(() => rt.step()).not.toThrow();
    expect(rt.step()).toBe("dead");
    expect(rt.killed).toBeInstanceOf(ProcessKilled);
    expect(rt.report().killed).toMatchObject({ signal: "SIGBUS", reason: "unhandled" });
  });

  it("a client whose connection ends while it waits is done, with the error recorded", async () => {
    const { mk } = setup();
    const rude: Behaviour = {
      name: "rude",
      description: "garbage, then a roundtrip that never comes back",
      honest: false,
      source: "test",
      *run(c) {
        yield c.setup();
        c.raw(5000, 0, []);
        yield c.roundtrip();
      },
    };
    const rt = mk(0, rude);
    await drive([rt]);
    expect(rt.report()).toMatchObject({
      state: "done",
      protocolError: { code: DISPLAY_ERROR.invalid_object },
    });
    expect(rt.reason).toMatch(/disconnected while waiting/);
  });

  it("the async driver runs a behaviour freely, sleeping on events", async () => {
    const { ts, mk } = setup(3);
    const rt = mk(0, getBehaviour("honest-renderer"), { frames: 4 });
    const rep = await rt.drive();
    expect(rep.state).toBe("done");
    expect(ts.commits.at(-1)?.bytes).toEqual(frameBytes(3, 0, 3, 64, 64));
  });
});

describe("behaviour registry", () => {
  it("every built-in has a kebab-case unique name, a description and a source", () => {
    const names = new Set<string>();
    for (const b of behaviourNames().map(getBehaviour)) {
      expect(b.name).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(names.has(b.name)).toBe(false);
      names.add(b.name);
      expect(b.source.length).toBeGreaterThan(10);
    }
    expect(behaviourNames().filter((n) => getBehaviour(n).honest)).toEqual(["honest-renderer"]);
    expect(() => getBehaviour("nope")).toThrow(/unknown behaviour/);
  });

  it("loads a user's behaviour from a file and refuses a malformed one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shmlab-beh-"));
    const good = join(dir, "my-wave.ts");
    const behaviourUrl = pathToFileURL(join(process.cwd(), "client/behaviour.ts")).href;
    writeFileSync(
      good,
      `import { until } from ${JSON.stringify(behaviourUrl)};
export default {
  name: "my-wave", description: "waves", honest: false, source: "a user's idea",
  *run(c) { yield c.setup(); yield until("never mind", () => true); c.notes.push("waved"); },
};`,
    );
    const b = await loadBehaviour(good);
    expect(b.name).toBe("my-wave");
    expect(getBehaviour("my-wave")).toBe(b);
    const { mk } = setup();
    const rt = mk(0, b);
    await drive([rt]);
    expect(rt.report()).toMatchObject({ state: "done", notes: ["waved"] });
    const bad = join(dir, "bad.ts");
    writeFileSync(bad, `export default { name: "Bad Name" };`);
    await expect(loadBehaviour(bad)).rejects.toThrow(/not a Behaviour/);
    void until;
  });
});

describe("remote client over WebSocket (syscall channel)", () => {
  it("makes its memfd and pixels through syscalls and commits a correct frame", async () => {
    const ts = createTestServer();
    const l = await ts.listen();
    try {
      const c = new Client(await connectWebSocket(l.url), undefined, { label: "ws" });
      const setupWait = c.setup();
      while (!setupWait.ready()) await c.nextActivity();
      const w = 16;
      const h = 8;
      const m = c.remoteMemfd(w * h * 4, { seal: 2 });
      const memfd = await m.promise;
      const surface = c.createSurface();
      const pool = c.createPool(memfd.fd, memfd.size);
      const b = c.createBuffer(pool, 0, w, h, w * 4);
      await c.remoteDraw(memfd, b, 9, 4, 2).promise;
      c.attach(surface, b);
      c.commit(surface, b);
      const rt = c.roundtrip();
      while (!rt.ready()) await c.nextActivity();
      expect(ts.commits).toHaveLength(1);
      expect(ts.commits[0].bytes).toEqual(frameBytes(9, 4, 2, w, h));
      expect(c.buffers.get(b.id)?.released).toBe(true);
      c.disconnect();
    } finally {
      await l.close();
    }
  });
});
