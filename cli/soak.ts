/**
 * The soak test of `shmlab serve` (issue 18): a real `shmlab serve` child process on
 * loopback, honest clients drawing at a steady rate from 127.0.0.1, and, for the middle
 * phase, a mix of every attack the issue lists from their own loopback addresses
 * (127.0.0.2 and up: Linux routes all of 127/8 to lo) plus a garbage fuzzer. It samples the
 * server's RSS through GET /health, times every honest roundtrip (pwrite of the frame, then
 * commit until its frame callback), counts refusals by kind, and stops by itself.
 *
 * Verdict: no honest client failed or starved, and after the attackers left the server's
 * RSS stayed bounded (not above its peak under attack) — and whether it came back within
 * 10 % of its start, and honest p99 under 100 ms, the issue's figures, are reported.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { type Socket, connect as tcpConnect } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { WebSocket } from "ws";
import { Client } from "../client/client.ts";
import { Rng } from "../lab/rng.ts";
import { encodeMessage } from "../protocol/codec.ts";
import { encodeEnvelope } from "../protocol/transport.ts";
import { WebSocketTransport } from "../protocol/transports/websocket.ts";
import type { ReclaimStats } from "./memory-reclaim.ts";
import type { MemoryDetail } from "./serve-service.ts";
import type { AttackWorkerData, AttackWorkerResult } from "./soak-attack-worker.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const MiB = 1024 * 1024;

export interface SoakOptions {
  /** Honest clients only, before the attack (ms). */
  warmupMs: number;
  attackMs: number;
  /** Honest clients only, after the attackers left (ms). */
  cooldownMs: number;
  honest: number;
  /** Ms between an honest client's frames. */
  honestIntervalMs: number;
  policy: string;
  seed: number;
  sampleMs: number;
  log?: (line: string) => void;
  /** Extra `shmlab serve` arguments. */
  serveArgs?: string[];
  /** Extra node arguments of the server process (e.g. --cpu-prof to profile it). */
  serveNodeArgs?: string[];
  /** Extra environment of the server process (e.g. glibc's MALLOC_MMAP_THRESHOLD_). */
  serveEnv?: Record<string, string>;
  /**
   * After the cool-down, how much longer the run may wait for the server's reclaim (it
   * waits for calm) before the end figures are taken anyway (default 30 s).
   */
  settleMs?: number;
  /** How long `serve` may take to say where it listens (default 60 s). */
  startTimeoutMs?: number;
  /**
   * How many samples after a reclaim make the start and the end RSS figures (default 10 s
   * of samples, at least 3 and at most 10); see {@link SoakReport.rssStart}.
   */
  windowSamples?: number;
}

/** The soak's own failures; `pid`: the `serve` child concerned, if any (already stopped). */
export class SoakError extends Error {
  constructor(
    readonly code:
      | "SHMLAB_ERR_SOAK_HTTP"
      | "SHMLAB_ERR_SOAK_ATTACKERS"
      | "SHMLAB_ERR_SOAK_SERVE_START"
      | "SHMLAB_ERR_SOAK_SERVE_EXIT",
    message: string,
    readonly pid?: number,
  ) {
    super(message);
    this.name = "SoakError";
  }
}

export interface RssSample {
  t: number;
  phase: "warmup" | "attack" | "cooldown";
  rss: number;
  framesInUse: number;
  /** Bytes of physical memory the simulated kernel holds. */
  tableBytes: number;
  clients: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Where the RSS is (V8's spaces, resident memory by kind, glibc's heap). */
  detail: MemoryDetail;
  /** The server's longest event-loop delay since the previous sample (ms). */
  loopDelayMaxMs: number;
  /** Taken after a reclaim the server ran once the attackers had left. */
  afterReclaim?: boolean;
  /** Taken in the warm-up, after the reclaim that followed the warm-up probe's departure. */
  afterWarmupReclaim?: boolean;
}

export interface Retained {
  liveHeapBytes: number;
  /** -1 without the addon. */
  mallocInUseBytes: number;
}

export interface SoakReport {
  honest: {
    roundtrips: number;
    p50: number;
    p99: number;
    max: number;
    failures: string[];
    /** p50/p99 of the roundtrips that began in each phase. */
    byPhase: Record<string, { n: number; p50: number; p99: number }>;
    /** Honest clients that completed fewer than half the frames their rate allows. */
    starved: string[];
    perClient: number[];
  };
  refusals: Record<string, number>;
  attacks: Record<string, number>;
  rss: RssSample[];
  /** /health requests that failed (the sampler's, not an honest client's). */
  healthFailures: number;
  /**
   * The start and end figures are measured the same way, so that they compare like with
   * like (docs/soak.md): `"after-reclaim"`, the median of the first `windowSamples` samples
   * after a reclaim of the server — in the warm-up the one that follows a probe client's
   * departure, in the cool-down the one that follows the attackers' — both with the same
   * honest clients running and the same number of samples. V8's young generation, which
   * honest traffic grows back after every memory-reducing GC, is then at the same age in
   * both. `"last-third"` (when the warm-up saw no reclaim: too short a warm-up): the median
   * of the warm-up's last third, and of the last third of the samples after the reclaim
   * once the attackers left (of the cool-down's if none came within `settleMs`).
   */
  rssHow: "after-reclaim" | "last-third";
  rssStart: number;
  rssPeak: number;
  rssEnd: number;
  /** rssEnd / rssStart. */
  rssRatio: number;
  /** The samples each figure is the median of (for the per-phase breakdown). */
  startWindow: RssSample[];
  endWindow: RssSample[];
  /**
   * Where the honest-only phases settle with no reclaim near: the median of the last third
   * of the warm-up and of the cool-down (reported, not judged: see docs/soak.md).
   */
  rssSteadyStart: number;
  rssSteadyEnd: number;
  /**
   * What the server retained, as its reclaim measured it right after its full GC and
   * malloc_trim (cli/memory-reclaim.ts): after the warm-up probe's reclaim and after the
   * attackers' (null where that reclaim did not come).
   */
  retained: { start: Retained | null; end: Retained | null };
  /** Kernel frames in use: median of the late warm-up samples, and at the end. */
  framesStart: number;
  framesEnd: number;
  /** The most kernel frames ever in use. */
  framesPeak: number;
  /** Bytes of physical memory the kernel held at the end (after trims). */
  tableBytesEnd: number;
  /** The server's reclaims after clients left (cli/memory-reclaim.ts). */
  reclaim: ReclaimStats;
  serverDeaths: number;
}

/** The parts of the server's memory, in bytes, as /health reports them. */
export const MEMORY_PARTS = {
  rss: (s: RssSample) => s.rss,
  "rss anon": (s: RssSample) => s.detail.rssAnon,
  "rss file": (s: RssSample) => s.detail.rssFile,
  "V8 heap committed": (s: RssSample) => s.heapTotal,
  "  new space": (s: RssSample) => s.detail.spaces.new_space ?? 0,
  "  old space": (s: RssSample) => s.detail.spaces.old_space ?? 0,
  "  other spaces": (s: RssSample) =>
    Object.entries(s.detail.spaces)
      .filter(([k]) => k !== "new_space" && k !== "old_space")
      .reduce((a, [, v]) => a + v, 0),
  "V8 heap used": (s: RssSample) => s.heapUsed,
  "external (ArrayBuffers...)": (s: RssSample) => s.external,
  "malloc in use": (s: RssSample) => s.detail.malloc?.inUse ?? Number.NaN,
  "malloc free (kept)": (s: RssSample) => s.detail.malloc?.free ?? Number.NaN,
  "kernel memory": (s: RssSample) => s.tableBytes,
} as const;

/** The median of every part of {@link MEMORY_PARTS} over some samples. */
export function memoryBreakdown(samples: RssSample[]): Record<keyof typeof MEMORY_PARTS, number> {
  return Object.fromEntries(
    Object.entries(MEMORY_PARTS).map(([k, f]) => [k, median(samples.map(f))]),
  ) as Record<keyof typeof MEMORY_PARTS, number>;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `pred` holds or `ms` pass; false on timeout. */
async function waitFor(c: Client, pred: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!pred()) {
    const left = end - performance.now();
    if (left <= 0) return false;
    await Promise.race([c.nextActivity(), sleep(Math.min(left, 50))]);
  }
  return true;
}

function openWs(url: string, localAddress: string, headers?: Record<string, string>) {
  return new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress, headers, perMessageDeflate: false });
    ws.once("error", reject);
    ws.once("unexpected-response", (_q, res) =>
      reject(new SoakError("SHMLAB_ERR_SOAK_HTTP", `HTTP ${res.statusCode}`)),
    );
    ws.once("open", () => resolve(ws));
  });
}

async function clientFrom(url: string, localAddress: string, label: string): Promise<Client> {
  const ws = await openWs(url, localAddress);
  const c = new Client(new WebSocketTransport(ws), undefined, { label, inboxLimit: 64 });
  const ready = c.setup();
  await waitFor(c, () => ready.ready() || c.closed, 5000);
  return c;
}

/** The `shmlab serve` child: started with a free port, stopped by whoever started it. */
async function startServer(opts: SoakOptions): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      ...(opts.serveNodeArgs ?? []),
      "--import",
      "tsx",
      join(repo, "cli/main.ts"),
      "serve",
      "--policy",
      opts.policy,
      "--port",
      "0",
      ...(opts.serveArgs ?? []),
    ],
    {
      cwd: repo,
      env: { ...process.env, NO_COLOR: "1", ...opts.serveEnv },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout!.on("data", (d: Buffer) => {
    // Connection lines are many; keep only the head, where the URL is.
    if (out.length < 4096) out += d.toString();
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 65536) err = err.slice(-32768);
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(
        () =>
          reject(
            new SoakError(
              "SHMLAB_ERR_SOAK_SERVE_START",
              `serve did not start:\n${out}${err}`,
              child.pid,
            ),
          ),
        opts.startTimeoutMs ?? 60_000,
      );
      const check = () => {
        const m = /listening on (ws:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1]);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          clearTimeout(t);
          reject(
            new SoakError("SHMLAB_ERR_SOAK_SERVE_EXIT", `serve exited:\n${out}${err}`, child.pid),
          );
        } else setTimeout(check, 50);
      };
      check();
    });
    return { child, url };
  } catch (e) {
    // a server that never said where it listens is still ours to stop
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGKILL");
      await gone;
    }
    throw e;
  }
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGINT");
  const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(t);
}

export interface Ctx {
  url: string;
  /** performance.now() at the soak's start. */
  t0: number;
  stop: () => boolean;
  refused: (kind: string) => void;
  attacked: (kind: string) => void;
  rand: () => number;
  seed: number;
}

/** One honest client: a 64x64 window redrawn and committed every interval. */
async function honestClient(
  ctx: Ctx,
  i: number,
  intervalMs: number,
  times: number[],
  failures: string[],
  onRoundtrip: (ms: number, startedAt: number) => void,
  onConnected: () => void = () => {},
): Promise<number> {
  const label = `honest-${i}`;
  let done = 0;
  const c = await clientFrom(ctx.url, "127.0.0.1", label).catch((e: Error) => {
    failures.push(`${label}: connect: ${e.message}`);
    return null;
  });
  onConnected();
  if (!c) return 0;
  try {
    const w = 64;
    const m = await c.remoteMemfd(w * w * 4).promise;
    const surface = c.createSurface();
    const pool = c.createPool(m.fd, m.size);
    const b = c.createBuffer(pool, 0, w, w, w * 4);
    for (let frame = 0; !ctx.stop(); frame++) {
      const t0 = performance.now();
      await c.remoteDraw(m, b, ctx.seed, i, frame).promise;
      c.attach(surface, b);
      c.damage(surface, 0, 0, w, w);
      const cb = c.frame(surface);
      c.commit(surface, b);
      const ok = await waitFor(c, () => cb.done || c.closed, 5000);
      if (!ok || c.closed) {
        failures.push(
          `${label}: frame ${frame} ${c.closed ? `closed: ${c.error?.message ?? "no error"}` : "no frame callback in 5 s"}`,
        );
        return done;
      }
      const rt = performance.now() - t0;
      times.push(rt);
      onRoundtrip(rt, t0 - ctx.t0);
      done++;
      await sleep(Math.max(0, intervalMs - rt));
    }
  } catch (e) {
    failures.push(`${label}: ${(e as Error).message}`);
  } finally {
    c.disconnect();
  }
  return done;
}

/**
 * Runs `fn` over and over until stop, counting each round; errors are refusals. Every
 * client a round opened (through `open`) is disconnected when the round ends, however it
 * ended, so an attacker never holds a slot by accident.
 */
async function loop(
  ctx: Ctx,
  kind: string,
  fn: (open: (addr: string, label: string) => Promise<Client>) => Promise<void>,
  pauseMs = 50,
) {
  while (!ctx.stop()) {
    ctx.attacked(kind);
    const opened: Client[] = [];
    const open = async (addr: string, label: string) => {
      const c = await clientFrom(ctx.url, addr, label);
      opened.push(c);
      return c;
    };
    try {
      await fn(open);
    } catch (e) {
      ctx.refused(`${kind}: ${(e as Error).message.slice(0, 60)}`);
    } finally {
      for (const c of opened) c.disconnect();
    }
    await sleep(pauseMs);
  }
}

/** Ends a client and records why it was ended, as a refusal. */
async function finish(ctx: Ctx, kind: string, c: Client, ms = 3000): Promise<void> {
  await waitFor(c, () => c.closed, ms);
  ctx.refused(`${kind}: ${c.error ? `error ${c.error.code}` : c.closed ? "closed" : "left"}`);
  c.disconnect();
}

/** The attack mix: each from its own loopback address. */
export function attackers(ctx: Ctx): Promise<void>[] {
  const from = (n: number) => `127.0.0.${2 + n}`;
  return [
    // Finding 1: write up to the quota, leave; the memory must come back.
    loop(ctx, "memory-hog", async (open) => {
      const c = await open(from(0), "hog");
      const m = await c.remoteMemfd(64 * MiB).promise;
      for (let off = 0; off < 64 * MiB && !c.closed; off += MiB) {
        const r = c.remoteSyscall("pwrite", [m.fd, new Uint8Array(MiB).fill(0xaa), off]);
        await waitFor(c, () => r.done || c.closed, 5000);
        if (r.error) {
          ctx.refused(`memory-hog: ${(r.error as { errno?: string }).errno ?? "error"}`);
          break;
        }
      }
      c.disconnect();
    }),
    // Finding 2: a sparse 2 GiB pool and a 16384x16384 buffer.
    loop(ctx, "sparse-huge-buffer", async (open) => {
      const c = await open(from(1), "sparse");
      // The largest size wl_shm.create_pool takes (an int32), page aligned.
      const m = await c.remoteMemfd(2 * 1024 * MiB - 4096).promise;
      const s = c.createSurface();
      const pool = c.createPool(m.fd, m.size);
      const b = c.createBuffer(pool, 0, 16384, 16384, 16384 * 4);
      c.attach(s, b);
      c.commit(s, b);
      await finish(ctx, "sparse-huge-buffer", c);
    }),
    // Finding 3: a 1 GiB pread.
    loop(ctx, "huge-pread", async (open) => {
      const c = await open(from(2), "pread");
      const m = await c.remoteMemfd(1024 * MiB).promise;
      for (let k = 0; k < 4 && !c.closed; k++) {
        const r = c.remoteSyscall("pread", [m.fd, 1024 * MiB, 0]);
        await waitFor(c, () => r.done || c.closed, 5000);
        const v = r.value as Uint8Array | undefined;
        if (v) ctx.refused(`huge-pread: short count ${v.length}`);
      }
      c.disconnect();
    }),
    // Finding 4: raw sockets that never speak, as many as one address may open.
    loop(
      ctx,
      "idle-sockets",
      async () => {
        const socks: Socket[] = [];
        for (let k = 0; k < 20; k++) {
          const s = tcpConnect({
            host: "127.0.0.1",
            port: Number(new URL(ctx.url).port),
            localAddress: from(3),
          });
          s.on("error", () => {});
          s.on("close", () => ctx.refused("idle-sockets: closed by server"));
          socks.push(s);
        }
        await sleep(1500);
        for (const s of socks) s.destroy();
      },
      10,
    ),
    // Findings 5 and 6: pools until the fd quota (each pool passes one fd).
    loop(ctx, "many-pools", async (open) => {
      const c = await open(from(4), "pools");
      const m = await c.remoteMemfd(4096).promise;
      for (let k = 0; k < 200 && !c.closed; k++) {
        const d = c.remoteSyscall("memfd_create", [`p${k}`, 0]);
        await waitFor(c, () => d.done || c.closed, 5000);
        if (typeof d.value === "number") {
          c.remoteSyscall("ftruncate", [d.value, 4096]);
          c.createPool(d.value, 4096);
        }
      }
      c.createPool(m.fd, 4096);
      await finish(ctx, "many-pools", c);
    }),
    // Finding 7's trigger under a mapping policy: truncate after commit.
    loop(ctx, "truncate-after-commit", async (open) => {
      const c = await open(from(5), "truncate");
      const w = 64;
      const m = await c.remoteMemfd(w * w * 4).promise;
      const s = c.createSurface();
      const pool = c.createPool(m.fd, m.size);
      const b = c.createBuffer(pool, 0, w, w, w * 4);
      c.attach(s, b);
      c.commit(s, b);
      await c.remoteSyscall("ftruncate", [m.fd, 12]).promise;
      c.attach(s, b);
      c.damage(s, 0, 0, w, w);
      c.commit(s, b);
      await finish(ctx, "truncate-after-commit", c);
    }),
    // Finding 8: a foreign Origin, and an invalid UTF-8 text frame.
    loop(ctx, "origin-and-text", async () => {
      await openWs(ctx.url, from(6), { Origin: "https://evil.example" }).then(
        (ws) => ws.terminate(),
        (e: Error) => ctx.refused(`origin: ${e.message}`),
      );
      const ws = await openWs(ctx.url, from(6));
      const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
      ws.send(Buffer.from([0xff, 0xfe, 0xc0]), { binary: false });
      ctx.refused(`text-frame: close ${await closed}`);
    }),
    // The garbage fuzzer: random binary messages.
    loop(ctx, "garbage", async () => {
      const ws = await openWs(ctx.url, from(7));
      const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
      for (let k = 0; k < 20 && ws.readyState === WebSocket.OPEN; k++) {
        const n = Math.floor(ctx.rand() * 64);
        const bytes = new Uint8Array(n);
        for (let j = 0; j < n; j++) bytes[j] = Math.floor(ctx.rand() * 256);
        // Half of them well-formed envelopes around random frames, half raw noise.
        ws.send(ctx.rand() < 0.5 ? encodeEnvelope(bytes) : bytes, { binary: true });
      }
      ws.send(encodeEnvelope(encodeMessage(1, 0, [2])), { binary: true });
      const t = setTimeout(() => ws.terminate(), 2000);
      ctx.refused(`garbage: close ${await closed}`);
      clearTimeout(t);
    }),
    // Finding 3 (textures): one buffer on many surfaces, then many distinct buffers.
    loop(ctx, "textures", async (open) => {
      const c = await open(from(8), "textures");
      const side = 1024;
      const m = await c.remoteMemfd(side * side * 4 * 8).promise;
      const pool = c.createPool(m.fd, m.size);
      for (let k = 0; k < 8 && !c.closed; k++) {
        const b = c.createBuffer(pool, k * side * side * 4, side, side, side * 4);
        for (let j = 0; j < 8; j++) {
          const s = c.createSurface();
          c.attach(s, b);
          c.commit(s, b);
        }
        await sleep(40);
      }
      await finish(ctx, "textures", c);
    }),
  ];
}

interface Health {
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  heapTotalBytes: number;
  arrayBuffersBytes: number;
  memoryDetail: MemoryDetail;
  memory: { framesInUse: number; framesPeak: number; tableBytes: number };
  clients: number;
  deaths: number;
  reclaim: SoakReport["reclaim"];
  eventLoopDelay: { maxMs: number };
}

async function health(url: string): Promise<Health> {
  const res = await fetch(`${url.replace("ws:", "http:")}/health`);
  return (await res.json()) as Health;
}

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? (() => {});
  const { child, url } = await startServer(opts);
  // As real/registry.ts: a signal stops the server, then (nobody else listening) kills us
  // with the same signal, so `kill <soak pid>` leaves no `serve` child behind.
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  const onSignal = (sig: (typeof signals)[number]) => () => {
    for (const [s, h] of handlers) process.off(s, h);
    void stopServer(child).finally(() => {
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  };
  const handlers = signals.map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) process.once(s, h);
  let attackWorker: Worker | undefined;
  const t0 = performance.now();
  const elapsed = () => performance.now() - t0;
  const attackStart = opts.warmupMs;
  const attackEnd = attackStart + opts.attackMs;
  const end = attackEnd + opts.cooldownMs;
  const phase = (): RssSample["phase"] =>
    elapsed() < attackStart ? "warmup" : elapsed() < attackEnd ? "attack" : "cooldown";
  // The attackers' worker is started now, to be loaded by the time the attack begins.
  // The worker registers tsx's loader itself before it loads TypeScript.
  const entry = new URL("./soak-attack-worker.ts", import.meta.url).href;
  const tsxApi = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  const w = new Worker(boot, {
    eval: true,
    workerData: {
      url,
      seed: opts.seed,
      startAt: Date.now() + attackStart,
      endAt: Date.now() + attackEnd,
    } satisfies AttackWorkerData,
  });
  attackWorker = w;
  const attacked = new Promise<AttackWorkerResult>((resolve, reject) => {
    w.once("message", (m: AttackWorkerResult) => resolve(m));
    w.once("error", reject);
    w.once("exit", (code) =>
      reject(new SoakError("SHMLAB_ERR_SOAK_ATTACKERS", `the attackers' worker exited (${code})`)),
    );
  });
  // Observed now, settled when the attack phase is over.
  attacked.catch(() => {});
  const refusals: Record<string, number> = {};
  const attacks: Record<string, number> = {};
  const gen = new Rng(opts.seed);
  const rng = () => gen.u32() / 2 ** 32;
  const rss: RssSample[] = [];
  const times: number[] = [];
  const failures: string[] = [];
  let deaths = 0;
  let healthFailures = 0;
  let framesPeak = 0;
  let reclaim: SoakReport["reclaim"] = {
    runs: 0,
    trimmedBytes: 0,
    gcMs: 0,
    how: "?",
    liveHeapBytes: -1,
    mallocInUseBytes: -1,
    measuredRun: 0,
  };
  const retained: SoakReport["retained"] = { start: null, end: null };
  const retainedOf = (h: Health): Retained => ({
    liveHeapBytes: h.reclaim.liveHeapBytes,
    mallocInUseBytes: h.reclaim.mallocInUseBytes,
  });
  /** Reclaims the server had run when the attackers left (-1: not yet left). */
  let runsAtLeave = -1;
  /** ...and when the warm-up's probe client left (-1: not yet). */
  let runsAtProbe = -1;
  let settled = 0;
  const windowSamples =
    opts.windowSamples ?? Math.max(3, Math.min(10, Math.round(10_000 / opts.sampleMs)));
  let done = false;
  const settleMs = opts.settleMs ?? 30_000;
  const phased: { phase: RssSample["phase"]; ms: number }[] = [];
  try {
    const honestCtx: Ctx = {
      url,
      t0,
      stop: () => done,
      refused: () => {},
      attacked: () => {},
      rand: rng,
      seed: opts.seed,
    };
    let connected = 0;
    const honest = Array.from({ length: opts.honest }, (_, i) =>
      honestClient(
        honestCtx,
        i,
        opts.honestIntervalMs,
        times,
        failures,
        (ms, at) =>
          phased.push({
            phase: at < attackStart ? "warmup" : at < attackEnd ? "attack" : "cooldown",
            ms,
          }),
        () => connected++,
      ),
    );
    // The warm-up's probe: once every honest client is in, one more client connects and
    // leaves, so the server runs the reclaim it runs after any departure (cli/memory-
    // reclaim.ts) while the honest clients keep drawing; the start figure is taken after
    // it, as the end figure is taken after the reclaim that follows the attackers.
    const probe = (async () => {
      while (connected < opts.honest && !done) await sleep(20);
      if (done || elapsed() >= attackStart) return;
      try {
        const c = await clientFrom(url, "127.0.0.1", "probe");
        runsAtProbe = (await health(url)).reclaim.runs;
        c.disconnect();
      } catch (e) {
        // Refused (SoakError), a socket error, or /health unreachable (fetch's TypeError):
        // no reclaim to measure after, so the figures fall back to "last-third".
        if (!(e instanceof SoakError || e instanceof TypeError || "code" in (e as object))) throw e;
        log(`warm-up probe failed: ${(e as Error).message}`);
      }
    })();
    const sampler = (async () => {
      // Past `end`, the run goes on (honest clients included) until the server has given
      // memory back after the attackers left and three samples were taken since, or
      // `settleMs` more pass: the end figure is then what the server holds once its
      // reclaim ran, however late a loaded machine let the attackers leave.
      while (!(elapsed() >= end && (settled >= windowSamples || elapsed() >= end + settleMs))) {
        try {
          const h = await health(url);
          deaths = h.deaths;
          framesPeak = h.memory.framesPeak;
          const s: RssSample = {
            t: Math.round(elapsed()),
            phase: phase(),
            rss: h.rssBytes,
            framesInUse: h.memory.framesInUse,
            tableBytes: h.memory.tableBytes,
            clients: h.clients,
            heapUsed: h.heapUsedBytes,
            heapTotal: h.heapTotalBytes,
            external: h.externalBytes,
            arrayBuffers: h.arrayBuffersBytes,
            detail: h.memoryDetail,
            loopDelayMaxMs: h.eventLoopDelay.maxMs,
          };
          rss.push(s);
          if (s.phase === "warmup" && runsAtProbe >= 0 && h.reclaim.runs > runsAtProbe) {
            s.afterWarmupReclaim = true;
          }
          if (s.phase === "warmup" && runsAtProbe >= 0 && h.reclaim.measuredRun > runsAtProbe)
            retained.start ??= retainedOf(h);
          if (runsAtLeave >= 0 && h.reclaim.measuredRun > runsAtLeave)
            retained.end ??= retainedOf(h);
          if (runsAtLeave >= 0 && h.reclaim.runs > runsAtLeave) {
            s.afterReclaim = true;
            settled++;
          }
          reclaim = h.reclaim;
          const d = s.detail;
          const mb = (x: number) => (x / MiB).toFixed(1);
          log(
            `${(s.t / 1000).toFixed(1).padStart(6)} s  ${s.phase.padEnd(8)} rss ${mb(s.rss)} MiB (anon ${mb(d.rssAnon)}, file ${mb(d.rssFile)}; heap ${mb(s.heapUsed)} of ${mb(s.heapTotal)}: new ${mb(d.spaces.new_space ?? 0)}, old ${mb(d.spaces.old_space ?? 0)}; external ${mb(s.external)}; malloc ${d.malloc ? `${mb(d.malloc.arena + d.malloc.mmapped)}, free ${mb(d.malloc.free)}` : "?"}; kernel ${(s.tableBytes / MiB).toFixed(0)})  frames ${s.framesInUse}  clients ${s.clients}  loop delay max ${s.loopDelayMaxMs.toFixed(0)} ms`,
          );
        } catch (e) {
          if (!(e instanceof TypeError)) throw e; // fetch failed: counted, not an honest failure
          healthFailures++;
        }
        await sleep(opts.sampleMs);
      }
      done = true;
    })();
    await sleep(attackStart);
    log(`attack phase: ${opts.attackMs / 1000} s`);
    const result = await attacked;
    Object.assign(refusals, result.refusals);
    Object.assign(attacks, result.attacks);
    log("attackers left");
    runsAtLeave = reclaim.runs;
    const perClient = await Promise.all(honest);
    await sampler;
    await probe;
    const sorted = [...times].sort((a, b) => a - b);
    const expected = end / Math.max(opts.honestIntervalMs, 1);
    const starved = perClient
      .map((n, i) => [n, i] as const)
      .filter(([n]) => n < expected / 2)
      .map(([n, i]) => `honest-${i}: ${n} frames of ~${Math.round(expected)}`);
    const lastThird = <T>(xs: T[]) => xs.slice(-Math.max(1, Math.ceil(xs.length / 3)));
    const warmAll = rss.filter((s) => s.phase === "warmup");
    const coolAll = rss.filter((s) => s.phase === "cooldown");
    const warmAfter = rss.filter((s) => s.afterWarmupReclaim);
    const coolAfter = rss.filter((s) => s.afterReclaim);
    // The same number of samples on both sides, however few the warm-up had left.
    const k = Math.min(windowSamples, warmAfter.length, coolAfter.length);
    const rssHow: SoakReport["rssHow"] = k >= 3 ? "after-reclaim" : "last-third";
    const startWindow = rssHow === "after-reclaim" ? warmAfter.slice(0, k) : lastThird(warmAll);
    const endWindow =
      rssHow === "after-reclaim"
        ? coolAfter.slice(0, k)
        : lastThird(coolAfter.length ? coolAfter : coolAll);
    const rssStart = median(startWindow.map((s) => s.rss));
    const rssEnd = median(endWindow.map((s) => s.rss));
    return {
      honest: {
        roundtrips: times.length,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        max: sorted[sorted.length - 1] ?? Number.NaN,
        failures,
        byPhase: Object.fromEntries(
          (["warmup", "attack", "cooldown"] as const).map((ph) => {
            const xs = phased
              .filter((x) => x.phase === ph)
              .map((x) => x.ms)
              .sort((a, b) => a - b);
            return [ph, { n: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99) }];
          }),
        ),
        starved,
        perClient,
      },
      healthFailures,
      framesPeak,
      refusals,
      attacks,
      rss,
      rssHow,
      rssStart,
      rssPeak: Math.max(...rss.map((s) => s.rss)),
      rssEnd,
      rssRatio: rssEnd / rssStart,
      startWindow,
      endWindow,
      rssSteadyStart: median(lastThird(warmAll).map((s) => s.rss)),
      rssSteadyEnd: median(lastThird(coolAll).map((s) => s.rss)),
      retained,
      framesStart: median(
        rss
          .filter((x) => x.phase === "warmup")
          .map((x) => x.framesInUse)
          .slice(-3),
      ),
      framesEnd: rss.filter((x) => x.phase === "cooldown").at(-1)?.framesInUse ?? Number.NaN,
      tableBytesEnd: rss.at(-1)?.tableBytes ?? Number.NaN,
      reclaim,
      serverDeaths: deaths,
    };
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
    await attackWorker?.terminate();
    await stopServer(child);
  }
}
