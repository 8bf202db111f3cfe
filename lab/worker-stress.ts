/**
 * Clients in worker threads against one compositor, with real concurrency: N sessions
 * (honest and hostile mixed) on a piscina pool of an explicit size, the compositor and the
 * kernel on this thread composing frames on a timer, every honest client's region checked
 * at every frame, and a supervisor that detects crashed, exited and hung workers,
 * disconnects their clients and frees their resources while the rest go on.
 *
 * The honest check at each frame: the region must be exactly one frame the client has
 * committed (every pixel correct for that frame), and that frame may never go backwards.
 */
import { performance } from "node:perf_hooks";
import { MessageChannel } from "node:worker_threads";
import { Piscina } from "piscina";
import { getBehaviour } from "../client/behaviours/index.ts";
import { classifyRegion, frameKey, pixelHash } from "../client/pattern.ts";
import {
  CTL_HEARTBEAT,
  CTL_LATEST_FRAME,
  CTL_STOP,
  CTL_WORDS,
  type SessionReport,
  type SessionTask,
} from "../client/worker.ts";
import { Compositor } from "../compositor/compositor.ts";
import type { ServerClient } from "../protocol/server.ts";
import { MessagePortTransport } from "../protocol/transports/message-port.ts";
import { Kernel } from "../shm/kernel.ts";
import { RemoteKernelHost, ServingScheduler } from "../shm/remote-kernel.ts";
import { workerEntry } from "./worker-bundle.ts";

export interface StressClientSpec {
  behaviour: string;
  params?: Record<string, number | string | boolean>;
}

export interface StressOptions {
  clients: readonly StressClientSpec[];
  durationMs: number;
  /** Worker threads in the pool (default: one per client, at most 64). */
  threads?: number;
  policy?: string;
  seed?: number;
  /** Compositor frame interval (ms). */
  frameMs?: number;
  /** A worker whose heartbeat does not move for this long is hung (ms). */
  hangMs?: number;
  /** A worker that has not started its session after this long is hung (ms; loading TS takes a while). */
  startMs?: number;
  /** How long stopped sessions get to report before they are terminated (ms). */
  graceMs?: number;
  width?: number;
  height?: number;
  /** Check honest regions at every frame (default true; the bench turns it off). */
  check?: boolean;
  memoryLimit?: number;
}

export type SessionOutcome = "finished" | "stopped" | "dead" | "crashed" | "hung" | "disconnected";

export interface StressClientReport {
  index: number;
  label: string;
  behaviour: string;
  honest: boolean;
  outcome: SessionOutcome;
  reason: string | undefined;
  protocolError: SessionReport["protocolError"];
  commits: number;
  /** Honest only: frames at which the region was checked, and those that were wrong. */
  framesChecked: number;
  badFrames: number;
  firstBad: string | undefined;
  latestFrameShown: number;
  /** The server side closed the connection (after a crash, a hang, an error or the end). */
  serverClosed: boolean;
  channel: SessionReport["channel"] | undefined;
}

export interface StressReport {
  policy: string;
  durationMs: number;
  threads: number;
  frames: number;
  compositorAlive: boolean;
  compositorDeath: string | null;
  pixelsComposited: number;
  /** Client buffers the compositor read during the measured `durationMs` (client frames that reached the output). */
  buffersRead: number;
  bytesCopied: number;
  /** Pools held by the compositor after every client left (0 = nothing leaked). */
  poolsLeft: number;
  /** Client processes (and their children) still alive in the kernel after the run. */
  processesLeft: number;
  clients: StressClientReport[];
}

interface Session {
  spec: StressClientSpec;
  index: number;
  label: string;
  honest: boolean;
  host: RemoteKernelHost;
  remote: ServerClient;
  ctl: Int32Array;
  abort: AbortController;
  lastBeat: number;
  lastBeatAt: number;
  outcome: SessionOutcome | undefined;
  report: SessionReport | undefined;
  error: string | undefined;
  framesChecked: number;
  badFrames: number;
  firstBad: string | undefined;
  shown: number;
  done: Promise<void>;
}

const WORKER = new URL("../client/worker.ts", import.meta.url);

/**
 * The pool, sized explicitly: `threads` worker threads, each running up to `perThread`
 * sessions at once (a session is long-lived and mostly waits on the compositor). The
 * threads load client/worker.ts bundled (lab/worker-bundle.ts).
 */
export async function createClientPool(threads: number, perThread = 1): Promise<Piscina> {
  const entry = await workerEntry(WORKER);
  return new Piscina({
    filename: entry.filename,
    minThreads: threads,
    maxThreads: threads,
    concurrentTasksPerWorker: perThread,
    idleTimeout: 60_000,
    execArgv: entry.execArgv,
  });
}

/** Loads the session module in every thread of the pool, so sessions start at once. */
export async function warmClientPool(pool: Piscina, threads: number): Promise<void> {
  await Promise.all(Array.from({ length: threads }, () => pool.run({ warm: true })));
}

/** Committed frames in [from, to] whose pixel (0, 0) is `first`, newest first. */
function candidateFrames(
  seed: number,
  index: number,
  first: number,
  from: number,
  to: number,
): number[] {
  const out: number[] = [];
  const h = first & 0xffff;
  for (let f = to; f >= from; f--) if (pixelHash(frameKey(seed, index, f), 0, 0) === h) out.push(f);
  return out;
}

export async function runStress(opts: StressOptions, pool?: Piscina): Promise<StressReport> {
  const seed = opts.seed ?? 1;
  const policy = opts.policy ?? "libwayland";
  const threads = opts.threads ?? Math.min(64, opts.clients.length);
  const check = opts.check ?? true;
  const kernel = new Kernel({ memoryLimit: opts.memoryLimit ?? 1024 * 1024 * 1024 });
  // Workers' syscalls are served at the kernel's preemption points too, not only between
  // event-loop turns: a truncation can land inside the compositor's read of a buffer.
  kernel.scheduler = new ServingScheduler(kernel);
  const comp = new Compositor({
    kernel,
    policy,
    width: opts.width ?? 1024,
    height: opts.height ?? 1024,
  });
  const piscina = pool ?? (await createClientPool(threads));
  const hangMs = opts.hangMs ?? 1500;
  const startMs = opts.startMs ?? 30_000;
  const sessions: Session[] = [];

  const finish = (s: Session, outcome: SessionOutcome, error?: string) => {
    if (s.outcome) return;
    s.outcome = outcome;
    if (error) s.error = error;
    // The thread is gone or done: its client is disconnected and its processes exit, which
    // frees everything the compositor held for it.
    s.remote.close(outcome); // a no-op once closed
    s.host.close();
  };

  opts.clients.forEach((spec, index) => {
    const b = getBehaviour(spec.behaviour);
    const label = `${spec.behaviour}#${index}`;
    const proc = kernel.spawn(label);
    const host = new RemoteKernelHost(kernel, proc);
    const { port1, port2 } = new MessageChannel();
    const remote = comp.connect(new MessagePortTransport(port1), { label, rethrowDeath: false });
    const control = new SharedArrayBuffer(4 * CTL_WORDS);
    const ctl = new Int32Array(control);
    const abort = new AbortController();
    const setup = host.setup();
    const task: SessionTask = {
      behaviour: spec.behaviour,
      seed,
      index,
      params: spec.params ?? {},
      label,
      protoPort: port2,
      kernel: setup,
      control,
    };
    const s: Session = {
      spec,
      index,
      label,
      honest: b.honest,
      host,
      remote,
      ctl,
      abort,
      lastBeat: 0,
      lastBeatAt: performance.now(),
      outcome: undefined,
      report: undefined,
      error: undefined,
      framesChecked: 0,
      badFrames: 0,
      firstBad: undefined,
      shown: -1,
      done: Promise.resolve(),
    };
    s.done = piscina.run(task, { transferList: [port2, setup.port], signal: abort.signal }).then(
      (r: SessionReport) => {
        s.report = r;
        finish(
          s,
          r.state === "dead" ? "dead" : r.reason === "session over" ? "stopped" : "finished",
        );
      },
      (e: Error) => {
        if (!s.outcome) finish(s, "crashed", e?.message ?? String(e));
      },
    );
    sessions.push(s);
  });

  const checkFrame = () => {
    const fb8 = new Uint8Array(comp.framebuffer.buffer);
    for (const p of comp.placements()) {
      const s = sessions.find((x) => x.remote.id === p.clientId);
      if (!s?.honest || s.outcome) continue;
      const latest = Atomics.load(s.ctl, CTL_LATEST_FRAME);
      if (latest < 0) continue;
      const first = comp.framebuffer[p.y * comp.width + p.x];
      s.framesChecked++;
      let ok = false;
      let detail = `region starts with 0x${first.toString(16)}: no committed frame in [${s.shown}, ${latest + 1}]`;
      for (const f of candidateFrames(seed, s.index, first, Math.max(0, s.shown), latest + 1)) {
        const counts = classifyRegion({
          seed,
          pixels: fb8,
          stride: comp.width * 4,
          x: p.x,
          y: p.y,
          width: p.width,
          height: p.height,
          expected: { client: s.index, frame: f },
        });
        if (counts.correct === counts.total) {
          s.shown = f;
          ok = true;
          break;
        }
        detail = `pattern frame ${f}: ${JSON.stringify(counts)}`;
      }
      if (!ok) {
        s.badFrames++;
        s.firstBad ??= `check ${s.framesChecked}: ${detail}`;
      }
    }
  };

  let frames = 0;
  let pixels = 0;
  let compositorDeath: string | null = null;
  // The run's T seconds start once every session is up (has beaten once, or ended): a thread
  // that is still loading its modules is not part of the measurement.
  let t0 = performance.now();
  let started = false;
  let buffersRead0 = 0;
  let bytesCopied0 = 0;
  let measured = { ms: 0, buffersRead: 0, bytesCopied: 0 };
  const frameMs = opts.frameMs ?? 4;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      if (comp.alive) {
        try {
          const st = comp.frame();
          frames++;
          for (const p of st.surfaces) pixels += p.width * p.height;
          if (check) checkFrame();
        } catch (e) {
          compositorDeath = (e as Error).message;
        }
      }
      // The supervisor: a thread whose heartbeat stopped is hung; terminate it.
      for (const s of sessions) {
        if (s.outcome) continue;
        const beat = Atomics.load(s.ctl, CTL_HEARTBEAT);
        if (beat !== s.lastBeat) {
          s.lastBeat = beat;
          s.lastBeatAt = now;
        } else if (beat === 0 ? now - s.lastBeatAt > startMs : now - s.lastBeatAt > hangMs) {
          finish(s, "hung", `no heartbeat for ${Math.round(now - s.lastBeatAt)} ms`);
          s.abort.abort();
        }
      }
      if (!started) {
        started = sessions.every((s) => s.outcome || Atomics.load(s.ctl, CTL_HEARTBEAT) > 0);
        if (started) {
          t0 = now;
          frames = 0;
          pixels = 0;
          buffersRead0 = comp.stats().buffersRead;
          bytesCopied0 = comp.stats().bytesCopied;
        }
      }
      if (started && now - t0 >= opts.durationMs) {
        const st = comp.stats();
        measured = {
          ms: now - t0,
          buffersRead: st.buffersRead - buffersRead0,
          bytesCopied: st.bytesCopied - bytesCopied0,
        };
        resolve();
        return;
      }
      setTimeout(tick, frameMs);
    };
    setTimeout(tick, 0);
  });
  for (const s of sessions) Atomics.store(s.ctl, CTL_STOP, 1);
  const grace = opts.graceMs ?? 3000;
  const timer = setTimeout(() => {
    for (const s of sessions)
      if (!s.outcome) {
        finish(s, "hung", "did not stop within the grace period");
        s.abort.abort();
      }
  }, grace);
  // Keep serving the kernel channel and messages while sessions wind down.
  await Promise.all(sessions.map((s) => s.done));
  clearTimeout(timer);
  if (!pool) await piscina.destroy();
  await new Promise((r) => setTimeout(r, 10));

  return {
    policy,
    durationMs: measured.ms,
    threads,
    frames,
    compositorAlive: comp.alive,
    compositorDeath,
    pixelsComposited: pixels,
    buffersRead: measured.buffersRead,
    bytesCopied: measured.bytesCopied,
    poolsLeft: comp.poolCount,
    processesLeft: [...kernel.processes.values()].filter((p) => p.alive && p !== comp.proc).length,
    clients: sessions.map((s) => ({
      index: s.index,
      label: s.label,
      behaviour: s.spec.behaviour,
      honest: s.honest,
      outcome: s.outcome ?? "hung",
      reason: s.error ?? s.report?.reason,
      protocolError: s.report?.protocolError ?? null,
      commits: s.report?.commits ?? 0,
      framesChecked: s.framesChecked,
      badFrames: s.badFrames,
      firstBad: s.firstBad,
      latestFrameShown: s.shown,
      serverClosed: s.remote.closed,
      channel: s.report?.channel,
    })),
  };
}

/** A mix for `n` clients: every other one honest, the rest cycling through `hostile`. */
export function mixedClients(
  n: number,
  hostile: readonly string[],
  honestParams: Record<string, number | string | boolean> = { frames: 0 },
): StressClientSpec[] {
  const out: StressClientSpec[] = [];
  let h = 0;
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0 || hostile.length === 0)
      out.push({ behaviour: "honest-renderer", params: honestParams });
    else out.push({ behaviour: hostile[h++ % hostile.length] });
  }
  return out;
}
