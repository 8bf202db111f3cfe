/**
 * One thread composites for every client (issue 18): a client committing many large
 * buffers gets at most Output.maxClientReadBytesPerFrame of them read per frame (at least
 * one buffer), the rest wait for the next frame with their frame callbacks, and another
 * client's commit is read in the same frame as ever. Counted in frames and bytes, never in
 * milliseconds.
 */
import { describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import { settle, TestClient } from "../compositor/testing.ts";

const SIDE = 128;
const BYTES = SIDE * SIDE * 4; // 64 KiB per buffer

async function greedyAndHonest(budget: number | undefined) {
  const comp = new Compositor({ policy: "libwayland", maxClientReadBytesPerFrame: budget });
  const greedy = await TestClient.connect(comp, 1);
  const fd = greedy.memfd(4 * BYTES);
  const pool = greedy.createPool(fd, 4 * BYTES);
  for (let i = 0; i < 4; i++)
    greedy.show(greedy.surface(), greedy.createBuffer(pool, i * BYTES, SIDE, SIDE, SIDE * 4));
  const honest = await TestClient.connect(comp, 2);
  await honest.window(SIDE, SIDE);
  await settle();
  return { comp, greedy, honest };
}

describe("per-client read budget per frame", () => {
  it("reads at most the budget of one client's buffers per frame; the rest and their callbacks wait", async () => {
    const { comp, greedy, honest } = await greedyAndHonest(2 * BYTES);
    const f1 = comp.frame();
    await settle();
    // Two of the greedy client's four buffers, and the honest client's one.
    expect(f1.buffersRead).toBe(3);
    expect(f1.bytesCopied).toBe(3 * BYTES);
    expect(greedy.framesDone).toBe(2);
    expect(honest.framesDone).toBe(1);
    const f2 = comp.frame();
    await settle();
    expect(f2.buffersRead).toBe(2);
    expect(greedy.framesDone).toBe(4);
    expect(comp.frame().buffersRead).toBe(0);
  });

  it("always reads one buffer per client per frame, however large", async () => {
    const { comp, greedy, honest } = await greedyAndHonest(1);
    for (let i = 1; i <= 4; i++) {
      expect(comp.frame().buffersRead).toBe(i === 1 ? 2 : 1);
      await settle();
      expect(greedy.framesDone).toBe(i);
    }
    expect(honest.framesDone).toBe(1);
  });

  it("without a budget every committed buffer is read in the next frame", async () => {
    const { comp, greedy } = await greedyAndHonest(undefined);
    expect(comp.frame().buffersRead).toBe(5);
    await settle();
    expect(greedy.framesDone).toBe(4);
  });
});
