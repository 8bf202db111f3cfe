/**
 * Pieces every behaviour starts from: a bound client with a surface and a pool of
 * pattern buffers, and the honest way of showing one frame. Hostile behaviours start like
 * an honest client and then do their one wrong thing, so that what the compositor gets
 * wrong is the wrong thing and nothing else.
 */
import type { BehaviourContext, Wait } from "../behaviour.ts";
import type { BufferRef, CallbackRef, Client, Memfd, PoolRef } from "../client.ts";
import { FORMAT_XRGB8888 } from "../client.ts";

export type Sub<T> = Generator<Wait | undefined, T, void>;

export interface Scene {
  surface: number;
  memfd: Memfd;
  pool: PoolRef;
  buffers: BufferRef[];
  /** Address of the client's own mapping of the pool. */
  base: number;
  width: number;
  height: number;
  stride: number;
  /** Bytes of one buffer. */
  bufferSize: number;
}

export function num(ctx: BehaviourContext, key: string, dflt: number): number {
  const v = ctx.params[key];
  return typeof v === "number" ? v : dflt;
}

export function flag(ctx: BehaviourContext, key: string, dflt: boolean): boolean {
  const v = ctx.params[key];
  return typeof v === "boolean" ? v : dflt;
}

export function str(ctx: BehaviourContext, key: string, dflt: string): string {
  const v = ctx.params[key];
  return typeof v === "string" ? v : dflt;
}

export interface SceneOptions {
  buffers?: number;
  /** F_SEAL_* bits added to the memfd before create_pool. */
  seal?: number;
  /** Keep the fd open after create_pool (hostile behaviours truncate through it). */
  keepFd?: boolean;
}

/**
 * setup → surface → memfd sized for `buffers` buffers of width×height XRGB8888 → mapped →
 * create_pool → create_buffer for each. Width and height come from params (default 64).
 */
export function* scene(c: Client, ctx: BehaviourContext, o: SceneOptions = {}): Sub<Scene> {
  yield c.setup();
  const width = num(ctx, "width", 64);
  const height = num(ctx, "height", 64);
  const stride = width * 4;
  const bufferSize = stride * height;
  const n = o.buffers ?? 2;
  const surface = c.createSurface();
  const memfd = c.createMemfd(bufferSize * n, { seal: o.seal, allowSealing: o.seal !== undefined });
  const base = c.mapShared(memfd);
  const pool = c.createPool(memfd.fd, memfd.size);
  const buffers: BufferRef[] = [];
  for (let i = 0; i < n; i++)
    buffers.push(c.createBuffer(pool, i * bufferSize, width, height, stride, FORMAT_XRGB8888));
  if (!o.keepFd) {
    c.process.close(memfd.fd);
    memfd.fd = -1;
  }
  // A roundtrip: the pool and buffers are accepted before the behaviour goes on, as a
  // client that syncs after setup does. Where the compositor checks the file at create_pool
  // (Xorg's ProcShmAttachFd fstat()s it), an attack then meets the mapped pool, not a
  // validation of an already-truncated file (real Xvfb, docs/real-compositors.md).
  yield* settle(c);
  return { surface, memfd, pool, buffers, base, width, height, stride, bufferSize };
}

/** Draws pattern frame `frame` into `b`, attaches, damages, asks a frame callback, commits. */
export function show(
  c: Client,
  ctx: BehaviourContext,
  s: Scene,
  b: BufferRef,
  frame: number,
): CallbackRef {
  c.drawPattern(s.base, b, ctx.seed, ctx.index, frame);
  c.attach(s.surface, b);
  c.damageBuffer(s.surface, 0, 0, s.width, s.height);
  const cb = c.frame(s.surface);
  c.commit(s.surface, b);
  return cb;
}

/** Waits until the connection ends or a roundtrip completes, whichever first. */
export function* settle(c: Client): Sub<void> {
  const rt = c.roundtrip();
  yield { what: `${rt.what} or disconnect`, ready: () => rt.ready() || c.closed };
}

/** Waits until the connection ends or `n` roundtrips pass (a few compositor frames). */
export function* settleFrames(c: Client, surface: number, n: number): Sub<void> {
  for (let i = 0; i < n && !c.closed; i++) {
    const cb = c.frame(surface);
    c.commit(surface);
    yield { what: `frame ${i} or disconnect`, ready: () => cb.done || c.closed };
  }
}

/**
 * Attaches, damages and commits `b` once with a frame callback, then waits until the
 * compositor has composited (and so read) it, or dropped the client. A one-shot attack that
 * left after a mere roundtrip would race the compositor's next frame (weston's bad-buffer
 * test waits for the frame the same way).
 */
export function* commitOnce(
  c: Client,
  surface: number,
  b: BufferRef,
  what = "frame done or disconnect",
): Sub<void> {
  c.attach(surface, b);
  c.damageBuffer(surface, 0, 0, b.width, b.height);
  const cb = c.frame(surface);
  c.commit(surface, b);
  yield { what, ready: () => cb.done || c.closed };
}
