/**
 * Partially damaged frames: one client alternates two 1920x1080 XRGB8888 buffers and
 * damages a 256x256 rectangle per frame (a cursor, a clock, a text caret). Every policy's
 * frames per second on those frames is reported against the same policy on fully damaged
 * frames, measured in the same run; and each policy's partial-damage rate against
 * libwayland's (which reads whole buffers whatever the damage). Damage-only policies
 * (`reads.damage: "damage"`: wlroots, kwin) upload only the damaged rows after the first
 * full upload (256 KiB instead of 8 MiB here), so they must come out ahead of full reads.
 *
 * The output is 320x240 (the buffer's top-left corner is shown), so compositing, the same
 * for every policy, does not drown the read. Measured in ROUNDS short slices, the order
 * rotating each round; the median is reported.
 */
import { Compositor } from "../compositor/compositor.ts";
import { BUILTIN_POLICIES, featuresOf, getPolicy } from "../compositor/policies/index.ts";
import { readRules } from "../compositor/policy.ts";
import { TestClient } from "../compositor/testing.ts";
import { Kernel } from "../shm/kernel.ts";
import { type BenchResult, type BenchSuite, measureRateAsync } from "./harness.ts";

const W = 1920;
const H = 1080;
const BYTES = W * H * 4;
const RECT = 256;
const OUT_W = 320;
const OUT_H = 240;
const POLICIES = ["none", "libwayland", "wlroots", "kwin", "smithay", "xorg-mit-shm"];
const ROUNDS = 5;
const SLICE_MS = 200;
const tick = () => new Promise<void>((r) => setImmediate(r));

interface Rig {
  name: string;
  frame(): Promise<void>;
  rates: number[];
}

async function rig(policy: string, partial: boolean): Promise<Rig> {
  const kernel = new Kernel({ features: featuresOf(BUILTIN_POLICIES), memoryLimit: 96 << 20 });
  // A small output: compositing copies only the visible 320x240 corner, so a frame's cost
  // is mostly the read of the client's buffer, which is what damage changes.
  const comp = new Compositor({ kernel, policy, width: OUT_W, height: OUT_H });
  const c = await TestClient.connect(comp);
  const fd = c.memfd(2 * BYTES, { width: W });
  const pool = c.createPool(fd, 2 * BYTES);
  const bufs = [c.createBuffer(pool, 0, W, H, W * 4), c.createBuffer(pool, BYTES, W, H, W * 4)];
  const surf = c.surface();
  let n = 0;
  const commit = (x: number, y: number, w: number, h: number) => {
    c.client.request(surf, "attach", [bufs[n++ & 1], 0, 0]);
    c.client.request(surf, "damage_buffer", [x, y, w, h]);
    c.client.request(surf, "commit");
  };
  // The first upload is whole under every policy.
  commit(0, 0, W, H);
  await tick();
  comp.frame();
  return {
    name: `${policy} ${partial ? "partial" : "full"}`,
    rates: [],
    async frame() {
      const k = n % 8;
      if (partial) commit(k * 200, (k * 97) % (H - RECT), RECT, RECT);
      else commit(0, 0, W, H);
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

const suite: BenchSuite = {
  name: "damage: 1920x1080 buffers with a 256x256 damaged rectangle per frame, per policy (320x240 output)",
  async run() {
    const rigs: Rig[] = [];
    for (const p of POLICIES) {
      rigs.push(await rig(p, true));
      rigs.push(await rig(p, false));
    }
    for (let r = 0; r < ROUNDS; r++)
      for (let i = 0; i < rigs.length; i++) {
        const g = rigs[(i + r) % rigs.length];
        g.rates.push(await measureRateAsync(() => g.frame(), 1, SLICE_MS));
      }
    const rate = (name: string) => median(rigs.find((g) => g.name === name)!.rates);
    const lwPartial = rate("libwayland partial");
    const results: BenchResult[] = [];
    for (const p of POLICIES) {
      const damageOnly = readRules(getPolicy(p)).damage === "damage";
      results.push({
        name: `${p}: partially damaged frames vs its own fully damaged ones${damageOnly ? " (damage-only uploads)" : ""}`,
        value: rate(`${p} partial`),
        unit: "frames/s",
        baseline: { name: `${p} full`, value: rate(`${p} full`) },
      });
    }
    for (const p of POLICIES) {
      if (p === "libwayland" || readRules(getPolicy(p)).damage !== "damage") continue;
      results.push({
        name: `${p} vs libwayland (whole reads), both on partially damaged frames`,
        value: rate(`${p} partial`),
        unit: "frames/s",
        baseline: { name: "libwayland partial", value: lwPartial },
        goal: { minRatio: 1.5, text: "ahead of libwayland's whole reads (>= 1.5x)" },
      });
    }
    return results;
  },
};
export default suite;
