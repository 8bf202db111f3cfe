/**
 * Clients on the compositor's own thread: each gets a process in the compositor's kernel, a
 * PairTransport to the compositor, a Client and a ClientRuntime. `runLocal` is the simplest
 * driver (step every client, deliver messages, one compositor frame, repeat); the lab's
 * seeded scheduler replaces it with its own interleaving, using the same pieces.
 *
 * `checkHonest` classifies an honest client's region of the output against what it
 * committed (pattern.ts).
 */
import type { ServerClient } from "../protocol/server.ts";
import { createPair } from "../protocol/transports/pair.ts";
import { ProcessKilled } from "../shm/errors.ts";
import type { Behaviour } from "./behaviour.ts";
import { Client } from "./client.ts";
import { classifyRegion, type RegionCounts } from "./pattern.ts";
import { ClientRuntime, makeContext } from "./runtime.ts";
import { LocalSys } from "./sys.ts";

/** The part of the compositor the client side needs (compositor/compositor.ts). */
export interface CompositorLike {
  readonly kernel: import("../shm/kernel.ts").Kernel;
  readonly alive: boolean;
  readonly width: number;
  readonly framebuffer: Uint32Array;
  readonly server: { readonly schema: import("../protocol/schema.ts").Schema };
  connect(
    transport: import("../protocol/transport.ts").Transport,
    opts?: { label?: string; rethrowDeath?: boolean },
  ): ServerClient;
  frame(): unknown;
  placements(): readonly {
    clientId: number;
    surface: number;
    x: number;
    y: number;
    width: number;
    height: number;
  }[];
}

export interface LocalClient {
  runtime: ClientRuntime;
  client: Client;
  remote: ServerClient;
}

export function connectLocalClient(
  comp: CompositorLike,
  behaviour: Behaviour,
  opts: { seed: number; index: number; params?: Record<string, number | string | boolean> },
): LocalClient {
  const label = `${behaviour.name}#${opts.index}`;
  const proc = comp.kernel.spawn(label);
  const [ct, st] = createPair();
  const remote = comp.connect(st, { label, rethrowDeath: false });
  const client = new Client(ct, new LocalSys(comp.kernel, proc), {
    label,
    schema: comp.server.schema,
  });
  const runtime = new ClientRuntime(
    behaviour,
    client,
    makeContext(opts.seed, opts.index, opts.params ?? {}),
  );
  return { runtime, client, remote };
}

export interface LocalRunResult {
  ticks: number;
  frames: number;
  /** The compositor's death, if it died. */
  compositorDeath: ProcessKilled | null;
}

/**
 * Steps every client (up to `stepsPerTick` steps each while it makes progress), lets the
 * transports deliver, runs one compositor frame, and repeats until every client has
 * finished or `maxTicks` pass. The compositor's death ends the run (recorded, not thrown).
 */
export async function runLocal(
  comp: CompositorLike,
  clients: readonly LocalClient[],
  opts: { maxTicks?: number; stepsPerTick?: number; afterFrame?: (tick: number) => void } = {},
): Promise<LocalRunResult> {
  const maxTicks = opts.maxTicks ?? 400;
  const per = opts.stepsPerTick ?? 16;
  let frames = 0;
  let tick = 0;
  let death: ProcessKilled | null = null;
  const flush = () => new Promise<void>((r) => setImmediate(r));
  for (; tick < maxTicks; tick++) {
    for (const c of clients) {
      for (let i = 0; i < per; i++) if (c.runtime.step() !== "progress") break;
    }
    await flush();
    if (comp.alive) {
      try {
        comp.frame();
        frames++;
        opts.afterFrame?.(tick);
      } catch (e) {
        if (e instanceof ProcessKilled) death = e;
        else throw e;
      }
    }
    await flush();
    if (clients.every((c) => c.runtime.finished)) break;
  }
  return { ticks: tick, frames, compositorDeath: death };
}

export interface HonestCheck {
  label: string;
  /** The frame the region should hold (the latest committed), or -1 when none. */
  frame: number;
  counts: RegionCounts | null;
  /** Why there is nothing to check (no placement, no commit). */
  missing?: string;
}

/**
 * Classifies a client's region of the output against its latest committed frame, with its
 * earlier frames as stale candidates and the given other clients as foreign candidates.
 */
export function checkHonest(
  comp: CompositorLike,
  c: LocalClient | { client: Client; remote: { id: number }; runtime: ClientRuntime },
  others: readonly number[] = [],
): HonestCheck {
  const label = c.client.label;
  const place = comp.placements().find((p) => p.clientId === c.remote.id);
  const surface = place?.surface ?? -1;
  const frame = c.client.latestFrame.get(surface) ?? -1;
  if (!place) return { label, frame, counts: null, missing: "no placement on the output" };
  if (frame < 0) return { label, frame, counts: null, missing: "no pattern frame committed" };
  const stale: number[] = [];
  for (let f = Math.max(0, frame - 8); f < frame; f++) stale.push(f);
  const counts = classifyRegion({
    seed: c.runtime.ctx.seed,
    pixels: new Uint8Array(
      comp.framebuffer.buffer,
      comp.framebuffer.byteOffset,
      comp.framebuffer.byteLength,
    ),
    stride: comp.width * 4,
    x: place.x,
    y: place.y,
    width: place.width,
    height: place.height,
    expected: { client: c.runtime.ctx.index, frame },
    stale,
    foreign: others.map((client) => ({ client })),
  });
  return { label, frame, counts };
}
