/**
 * Seal the memfd against shrinking, then do what the rules still allow, in one of several
 * orders (params.order, default all of them one after another):
 *
 *   seal-create-truncate   seal, create_pool, ftruncate smaller  → EPERM, frames stay good
 *   create-seal-truncate   create_pool, seal, ftruncate smaller  → EPERM, frames stay good
 *   seal-grow-resize       seal, grow the file, resize the pool bigger, a buffer in the
 *                          new part                              → allowed, frames good
 *   seal-resize-smaller    seal, resize the pool smaller         → a protocol error
 *                          (wayland.xml: resize "can only be used to make the pool bigger")
 *
 * Each ftruncate's errno is noted in the client's notes (`ftruncate:EPERM`).
 */
import { SEAL } from "../../shm/uapi.ts";
import type { Behaviour, BehaviourContext } from "../behaviour.ts";
import type { Client } from "../client.ts";
import { FORMAT_XRGB8888 } from "../client.ts";
import { commitOnce, num, type Sub, settle, str } from "./common.ts";

export const SEAL_ORDERS = [
  "seal-create-truncate",
  "create-seal-truncate",
  "seal-grow-resize",
  "seal-resize-smaller",
] as const;

function tryTruncate(c: Client, fd: number, size: number): void {
  try {
    c.process.ftruncate(fd, size);
    c.notes.push("ftruncate:ok");
  } catch (e) {
    c.notes.push(`ftruncate:${(e as { code?: string }).code ?? "error"}`);
  }
}

function* order(c: Client, ctx: BehaviourContext, name: string, frame: number): Sub<void> {
  const w = num(ctx, "width", 64);
  const h = num(ctx, "height", 64);
  const size = w * h * 4;
  const sys = c.process;
  const m = c.createMemfd(size, { allowSealing: true, name: name });
  const base = c.mapShared(m, 2 * size);
  const surface = c.createSurface();
  const sealFirst = name !== "create-seal-truncate";
  if (sealFirst) sys.addSeals(m.fd, SEAL.F_SEAL_SHRINK);
  const pool = c.createPool(m.fd, size);
  if (!sealFirst) sys.addSeals(m.fd, SEAL.F_SEAL_SHRINK);
  let b = c.createBuffer(pool, 0, w, h, w * 4, FORMAT_XRGB8888);
  yield;
  if (name === "seal-create-truncate" || name === "create-seal-truncate") tryTruncate(c, m.fd, 12);
  if (name === "seal-grow-resize") {
    tryTruncate(c, m.fd, 2 * size);
    c.resizePool(pool, 2 * size);
    b = c.createBuffer(pool, size, w, h, w * 4, FORMAT_XRGB8888);
  }
  if (name === "seal-resize-smaller") c.resizePool(pool, size / 2);
  c.drawPattern(base, b, ctx.seed, ctx.index, frame);
  sys.close(m.fd); // the compositor holds its own reference since create_pool
  yield* commitOnce(c, surface, b, `${name} frame or disconnect`);
}

const behaviour: Behaviour = {
  name: "seal-then-play",
  description: "F_SEAL_SHRINK, then truncate/grow/resize in every order the rules allow",
  honest: false,
  source:
    "memfd sealing as the proposed cure (Simon Ser, 'Sealed memfd & no-fault mmap', LKML 2021-04-27: no compositor enforces sealing); LINUX.md rules 8-9; wayland.xml wl_shm_pool.resize",
  *run(c, ctx) {
    yield c.setup();
    const which = str(ctx, "order", "all");
    const orders = which === "all" ? [...SEAL_ORDERS] : [which];
    for (let i = 0; i < orders.length && !c.closed; i++) yield* order(c, ctx, orders[i], i);
    yield* settle(c);
  },
};
export default behaviour;
