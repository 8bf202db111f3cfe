/**
 * Honest frames: one client commits a 1920x1080 XRGB8888 buffer every frame and the
 * compositor reads it through the policy and composites it into a 1920x1080 output. Each
 * policy's frames per second is reported against the `none` policy measured in the same
 * run; the ceiling is a plain Uint8Array.set of the same 8 MiB out of a SharedArrayBuffer
 * (what one frame's copy costs with no kernel model, no protocol and no compositing).
 *
 * A frame here is: the client's attach + damage_buffer + commit delivered over the pair
 * transport, then Compositor.frame() (policy read of the whole buffer, composite, release,
 * frame callback). No goal is set: the figures are for comparing policies.
 */
import { Compositor } from "../compositor/compositor.ts";
import { BUILTIN_POLICIES, featuresOf } from "../compositor/policies/index.ts";
import { TestClient } from "../compositor/testing.ts";
import { Kernel } from "../shm/kernel.ts";
import { type BenchResult, type BenchSuite, measureRateAsync } from "./harness.ts";

const W = 1920;
const H = 1080;
const BYTES = W * H * 4;
const tick = () => new Promise<void>((r) => setImmediate(r));

interface Rig {
  policy: string;
  frame(): Promise<void>;
  rates: number[];
}

async function rig(policy: string): Promise<Rig> {
  const kernel = new Kernel({
    features: featuresOf(BUILTIN_POLICIES),
    memoryLimit: 64 * 1024 * 1024,
  });
  const comp = new Compositor({ kernel, policy, width: W, height: H });
  const c = await TestClient.connect(comp);
  // Unsealed, so libwayland and KWin take their handler path (sealed, they skip it);
  // seals-required refuses unsealed files, so its client seals.
  const fd = c.memfd(BYTES, { width: W, seal: policy === "seals-required" });
  const pool = c.createPool(fd, BYTES);
  const buf = c.createBuffer(pool, 0, W, H, W * 4);
  const surf = c.surface();
  return {
    policy,
    rates: [],
    async frame() {
      c.client.request(surf, "attach", [buf, 0, 0]);
      c.client.request(surf, "damage_buffer", [0, 0, W, H]);
      c.client.request(surf, "commit");
      await tick();
      const s = comp.frame();
      if (s.buffersRead !== 1 || !comp.alive || c.error)
        throw new Error(`${policy}: frame read ${s.buffersRead} buffers`);
    },
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
};

/**
 * Every policy is measured in ROUNDS short slices, the order rotating each round, and its
 * median slice is reported: policies doing the same work then agree to within the noise
 * of garbage collection and JIT warm-up instead of inheriting whoever ran first.
 */
const ROUNDS = 9;
const SLICE_MS = 250;

const suite: BenchSuite = {
  name: "compositor: honest 1920x1080 XRGB8888 frames per policy",
  async run() {
    const src = new Uint8Array(new SharedArrayBuffer(BYTES)).fill(0x5a);
    const dst = new Uint8Array(BYTES);
    const rigs: Rig[] = [
      // The ceiling runs in the same rotation, so machine load hits it like the others.
      {
        policy: "ceiling",
        rates: [],
        frame: async () => {
          dst.set(src);
          await tick();
        },
      },
    ];
    for (const p of BUILTIN_POLICIES) rigs.push(await rig(p.name));
    // copy-pread allocates a frame's worth per read (pread returns a new array): its
    // garbage collections would land on whichever policy runs next, so it is measured
    // after the rotation, alone.
    const rotating = rigs.filter((g) => g.policy !== "copy-pread");
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < rotating.length; i++) {
        const g = rotating[(i + r) % rotating.length];
        g.rates.push(await measureRateAsync(() => g.frame(), 1, SLICE_MS));
      }
    }
    const cp = rigs.find((g) => g.policy === "copy-pread")!;
    for (let r = 0; r < ROUNDS; r++)
      cp.rates.push(await measureRateAsync(() => cp.frame(), 1, SLICE_MS));
    const copyFps = median(rigs[0].rates);
    const results: BenchResult[] = [
      {
        name: "ceiling: Uint8Array.set of one frame's 8 MiB (+ one event-loop turn, as a frame has)",
        value: copyFps,
        unit: "frames/s",
      },
      {
        name: "ceiling: that copy's bandwidth",
        value: (copyFps * BYTES) / (1024 * 1024),
        unit: "MiB/s",
      },
    ];
    const none = median(rigs.find((g) => g.policy === "none")!.rates);
    results.push({
      name: "none",
      value: none,
      unit: "frames/s",
      baseline: { name: "plain copy ceiling", value: copyFps },
    });
    for (const g of rigs.slice(1)) {
      if (g.policy === "none") continue;
      results.push({
        name: g.policy,
        value: median(g.rates),
        unit: "frames/s",
        baseline: { name: "none", value: none },
      });
    }
    return results;
  },
};
export default suite;
