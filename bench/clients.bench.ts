/**
 * Honest clients in worker threads through the libwayland compositor: client frames per
 * second that reached the output (buffers the compositor read) and pixels per second, with
 * 1, 4, 16 and 64 clients, each against the single-client figure measured in the same run.
 * Clients draw 128x128 XRGB8888 pattern frames straight into the kernel's physical memory;
 * the compositor composites on this thread every millisecond it can.
 */
import { createClientPool, mixedClients, runStress, warmClientPool } from "../lab/worker-stress.ts";
import type { BenchResult, BenchSuite } from "./harness.ts";

const COUNTS = [1, 4, 16, 64];
const MAX_THREADS = 16;
const DURATION_MS = 2500;

const suite: BenchSuite = {
  name: "clients: honest worker clients through the compositor (libwayland)",
  async run() {
    const threads = MAX_THREADS;
    const perThread = Math.ceil(Math.max(...COUNTS) / threads);
    const pool = await createClientPool(threads, perThread);
    await warmClientPool(pool, threads);
    const rows: { n: number; fps: number; pps: number; bad: number }[] = [];
    try {
      for (const n of COUNTS) {
        const rep = await runStress(
          {
            clients: mixedClients(n, [], { frames: 0, width: 128, height: 128 }),
            durationMs: DURATION_MS,
            threads,
            frameMs: 1,
            check: true,
            seed: n,
          },
          pool,
        );
        const s = rep.durationMs / 1000;
        rows.push({
          n,
          fps: rep.buffersRead / s,
          pps: rep.bytesCopied / 4 / s,
          bad: rep.clients.reduce((a, c) => a + c.badFrames, 0),
        });
        if (!rep.compositorAlive) throw new Error("the compositor died in the benchmark");
      }
    } finally {
      await pool.destroy();
    }
    const one = rows[0];
    const out: BenchResult[] = [];
    for (const r of rows) {
      const same = r.n === 1;
      out.push({
        name: `${r.n} client(s): client frames composited${r.bad ? ` (${r.bad} BAD frames)` : ""}`,
        value: r.fps,
        unit: "frames/s",
        ...(same ? {} : { baseline: { name: "1 client", value: one.fps } }),
      });
      out.push({
        name: `${r.n} client(s): pixels composited`,
        value: r.pps,
        unit: "pixels/s",
        ...(same ? {} : { baseline: { name: "1 client", value: one.pps } }),
      });
    }
    return out;
  },
};
export default suite;
