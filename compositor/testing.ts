/**
 * A minimal in-thread client for compositor tests and benchmarks: a kernel process of its
 * own that creates memfds and passes them through the fd bridge, a ProtocolClient over a
 * PairTransport, and helpers for the requests the attacks need. Deliberately small and
 * independent of client/ (the full client library).
 */

import { NEW_ID, type ProtocolClient } from "../protocol/client.ts";
import { encodeMessage } from "../protocol/codec.ts";
import { requestOpcode } from "../protocol/schema.ts";
import type { ServerClient } from "../protocol/server.ts";
import type { Process } from "../shm/process.ts";
import { MFD, SEAL } from "../shm/uapi.ts";
import type { Compositor } from "./compositor.ts";

/** Lets every queued microtask and timer of the pair transports run. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 0));
}

/** The pixel a test client writes at (x, y): opaque, distinct per client and position. */
export function patternPixel(client: number, x: number, y: number): number {
  return (0xff000000 | ((client * 0x3b) << 16) | ((x * 7 + y * 13) & 0xffff)) >>> 0;
}

export class TestClient {
  readonly client: ProtocolClient;
  readonly proc: Process;
  readonly remote: ServerClient;
  compositorId = 0;
  shmId = 0;
  readonly formats: number[] = [];
  readonly released = new Set<number>();
  framesDone = 0;

  constructor(
    readonly comp: Compositor,
    readonly index: number,
    name = `client-${index}`,
  ) {
    const c = comp.connectLocal(name);
    this.client = c.client;
    this.proc = c.proc;
    this.remote = c.remote;
  }

  static async connect(comp: Compositor, index = 1): Promise<TestClient> {
    const t = new TestClient(comp, index);
    await t.init();
    return t;
  }

  async init(): Promise<void> {
    const c = this.client;
    const reg = c.request(1, "get_registry", [NEW_ID]);
    const globals: [number, string, number][] = [];
    c.listen(reg, (e, args) => {
      if (e === "global") globals.push(args as [number, string, number]);
    });
    await c.roundtrip();
    const g = (iface: string) => globals.find((x) => x[1] === iface)!;
    const [cn, , cv] = g("wl_compositor");
    this.compositorId = c.request(reg, "bind", [cn, "wl_compositor", cv, NEW_ID]);
    const [sn] = g("wl_shm");
    this.shmId = c.request(reg, "bind", [sn, "wl_shm", 2, NEW_ID]);
    c.listen(this.shmId, (e, args) => {
      if (e === "format") this.formats.push(args[0] as number);
    });
    await c.roundtrip();
  }

  get error() {
    return this.client.error;
  }

  /** A memfd of `size` bytes holding this client's pattern for a width-pixel-wide image. */
  memfd(size: number, opts: { seal?: boolean; width?: number } = {}): number {
    const p = this.proc;
    const fd = p.memfdCreate("pool", MFD.MFD_ALLOW_SEALING);
    p.ftruncate(fd, size);
    const w = opts.width ?? 64;
    const data = new Uint8Array(size);
    const dv = new DataView(data.buffer);
    for (let i = 0; i + 4 <= size; i += 4) {
      const px = i / 4;
      dv.setUint32(i, patternPixel(this.index, px % w, Math.floor(px / w)), true);
    }
    p.pwrite(fd, data, 0);
    if (opts.seal) p.addSeals(fd, SEAL.F_SEAL_SHRINK);
    return fd;
  }

  createPool(fd: number, size: number): number {
    return this.client.request(this.shmId, "create_pool", [NEW_ID, fd, size]);
  }

  createBuffer(
    pool: number,
    offset: number,
    width: number,
    height: number,
    stride: number,
    format = 1,
  ): number {
    const id = this.client.request(pool, "create_buffer", [
      NEW_ID,
      offset,
      width,
      height,
      stride,
      format,
    ]);
    this.client.listen(id, (e) => {
      if (e === "release") this.released.add(id);
    });
    return id;
  }

  /** create_buffer sent as raw bytes, for values the schema-checked request() refuses. */
  createBufferRaw(pool: number, args: number[]): number {
    const id = this.client.objects.allocate({ interface: "wl_buffer", version: 1 });
    const op = requestOpcode(this.client.schema, "wl_shm_pool", "create_buffer");
    this.client.sendRaw(encodeMessage(pool, op, [id, ...args]));
    return id;
  }

  surface(): number {
    return this.client.request(this.compositorId, "create_surface", [NEW_ID]);
  }

  /** attach + damage_buffer + frame + commit. */
  show(surface: number, buffer: number, width = 0x7fffffff, height = 0x7fffffff): void {
    const c = this.client;
    c.request(surface, "attach", [buffer, 0, 0]);
    c.request(surface, "damage_buffer", [0, 0, width, height]);
    const cb = c.request(surface, "frame", [NEW_ID]);
    c.listen(cb, () => {
      this.framesDone++;
    });
    c.request(surface, "commit");
  }

  /** Sets up one pool, one buffer of width x height XRGB8888 and a surface showing it. */
  async window(
    width: number,
    height: number,
    opts: { seal?: boolean; poolSize?: number; fileSize?: number } = {},
  ): Promise<{ fd: number; pool: number; buffer: number; surface: number }> {
    const size = width * height * 4;
    const fd = this.memfd(opts.fileSize ?? size, { seal: opts.seal, width });
    const pool = this.createPool(fd, opts.poolSize ?? size);
    const buffer = this.createBuffer(pool, 0, width, height, width * 4);
    const surface = this.surface();
    this.show(surface, buffer, width, height);
    await settle();
    return { fd, pool, buffer, surface };
  }
}
