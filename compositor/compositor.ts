/**
 * The compositor: a ProtocolServer with wl_compositor and wl_shm, a process of its own in
 * the simulated kernel, and a mapping policy (policy.ts) deciding how pools are mapped and
 * read. Everything is synchronous: requests are handled when a transport delivers them,
 * and `frame()` — a plain call, made by the lab's scheduler or by a frame clock — reads
 * every newly committed buffer through the policy, composites every surface into the
 * output framebuffer, releases the buffers it read and sends the frame callbacks.
 *
 * Death. If the compositor's process is killed (a SIGBUS with no handler, a policy's
 * panic), the compositor is dead: `alive` is false, every client connection is closed, and
 * the ProcessKilled propagates out of frame() or out of the transport's delivery to the
 * caller. It is never turned into a protocol error to a client.
 */
import { performance } from "node:perf_hooks";
import { ProtocolClient } from "../protocol/client.ts";
import { interfaceError, type ProtocolError } from "../protocol/errors.ts";
import {
  processFileInspector,
  serverFdBridge,
  workerFdBridge,
} from "../protocol/kernel-gateway.ts";
import type { InterfaceSpec, Schema } from "../protocol/schema.ts";
import {
  type ConnectOptions,
  ProtocolServer,
  type Resource,
  type ServerClient,
  type ServerOptions,
} from "../protocol/server.ts";
import type { Transport } from "../protocol/transport.ts";
import { createPair } from "../protocol/transports/pair.ts";
import { getVariant, type ProtocolVariant, STANDARD } from "../protocol/variant.ts";
import { ProcessKilled } from "../shm/errors.ts";
import { onErrno } from "../shm/expected-errors.ts";
import { Kernel } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { type FrameClock, VirtualClock } from "./clock.ts";
import { getPolicy } from "./policies/index.ts";
import {
  type Access,
  type AccessEnd,
  type BufferArgs,
  type BufferView,
  type Policy,
  type PolicyInstance,
  type PolicyNotice,
  type Refusal,
  type ShmPool,
  ShmRefusal,
} from "./policy.ts";
import { bytesPerPixel } from "./validation.ts";

// ---- state ---------------------------------------------------------------------------

interface Pool extends ShmPool {
  readonly id: number;
  readonly client: ServerClient;
  /** Internal references: the wl_shm_pool resource, each buffer, each access in flight. */
  refs: number;
  /** libwayland's external_refcount: accesses in flight (a resize waits for 0). */
  busy: number;
  /** A resize waiting for the accesses in flight to end. */
  newSize: number | null;
  resourceRef: boolean;
  unmapped: boolean;
  /** The protocol variant let this pool shrink (shrinkable-pools): check buffers against it. */
  shrunk?: boolean;
}

interface Buffer extends BufferView {
  readonly id: number;
  readonly client: ServerClient;
  readonly pool: Pool;
  alive: boolean;
  /** Created from a pool the policy freed (Xorg): shows nothing. */
  inert: boolean;
  /**
   * Its wl_buffer is destroyed but a policy with `readDestroyed` keeps it on screen, its
   * pool referenced (wlroots 0.15's wl_shm_buffer_ref_pool), until the surface moves on.
   */
  detached?: boolean;
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

interface Surface {
  readonly id: number;
  readonly client: ServerClient;
  readonly seq: number;
  pending: {
    attached: boolean;
    buffer: Buffer | null;
    damage: Rect[];
    bufferDamage: Rect[];
    frames: number[];
  };
  current: { buffer: Buffer | null; dirty: boolean; frames: number[]; damage: Rect[] };
  /** The compositor's copy of the last buffer read (its "texture"). */
  texture: Uint8Array | null;
  texGeom: { width: number; height: number; stride: number; bpp: number; format: number } | null;
  scale: number;
  transform: number;
}

// ---- stats ---------------------------------------------------------------------------

/** The compositor process's kernel counters at one moment (or a difference of two). */
export interface KernelFigures {
  faults: number;
  sigbus: number;
  sigsegv: number;
  signals: number;
  syscalls: number;
  bytesUserRead: number;
  bytesKernelCopied: number;
  anonPages: number;
  zeroPages: number;
  uffdFaults: number;
}

export interface ProtocolErrorRecord {
  frame: number;
  client: string;
  clientId: number;
  objectId: number;
  interface: string;
  code: number;
  message: string;
  protoCode: string;
}

export interface NoticeRecord {
  frame: number;
  client: string;
  clientId: number;
  pool: string;
  what: string;
}

/** Where one surface is on the output, and what it shows. */
export interface SurfacePlacement {
  client: string;
  clientId: number;
  surface: number;
  /** The region of the output the surface occupies (clipped to its tile). */
  x: number;
  y: number;
  width: number;
  height: number;
  /** The buffer whose contents are shown (the last one read), or null. */
  buffer: { width: number; height: number; stride: number; format: number } | null;
}

export interface FrameStats extends KernelFigures {
  frame: number;
  /** The frame clock's time for this frame (ms). */
  time: number;
  composeMs: number;
  buffersRead: number;
  /** Bytes the compositor read out of clients' pools into its own memory. */
  bytesCopied: number;
  errors: ProtocolErrorRecord[];
  notices: NoticeRecord[];
  alive: boolean;
  surfaces: SurfacePlacement[];
}

export interface RunStats extends KernelFigures {
  frames: number;
  composeMs: number;
  buffersRead: number;
  bytesCopied: number;
  errors: ProtocolErrorRecord[];
  notices: NoticeRecord[];
  alive: boolean;
  death: { signal: string; reason: string; addr: number; cause: string } | null;
  surfaces: SurfacePlacement[];
}

function figures(p: Process): KernelFigures {
  const c = p.counters;
  let syscalls = 0;
  for (const n of Object.values(c.syscalls)) syscalls += n;
  return {
    faults: c.minorFaults + c.majorFaults,
    sigbus: c.sigbus,
    sigsegv: c.sigsegv,
    signals: c.sigbus + c.sigsegv,
    syscalls,
    bytesUserRead: c.bytesUserRead,
    bytesKernelCopied: c.bytesKernelCopied,
    anonPages: c.anonPages,
    zeroPages: c.zeroPageMaps,
    uffdFaults: c.uffdFaults,
  };
}

function diff(a: KernelFigures, b: KernelFigures): KernelFigures {
  const out = {} as KernelFigures;
  for (const k of Object.keys(a) as (keyof KernelFigures)[]) out[k] = a[k] - b[k];
  return out;
}

// ---- the compositor ------------------------------------------------------------------

/**
 * wl_shm_pool.create_buffer's format, as the compositor's server decodes it: a plain uint
 * that the policy's profile judges. libwayland-server does not check enum values when it
 * demarshals a request (format_is_supported in shm_pool_create_buffer does), and
 * wayland-rs hands Smithay an unknown value as WEnum::Unknown — so each implementation's
 * own order decides (Smithay's stride check refuses an unknown format before its format
 * check). protocol/'s schema refuses values outside the enum during validation; the
 * compositor's schema leaves them to the handler. Everything else of the variant is kept.
 */
export function formatsJudgedByHandler(v: ProtocolVariant): ProtocolVariant {
  return {
    ...v,
    schema(base: Schema): Schema {
      const s = v.schema ? v.schema(base) : base;
      const pool = s.interfaces.wl_shm_pool;
      if (!pool) return s;
      const requests = pool.requests.map((r) =>
        r.name !== "create_buffer"
          ? r
          : {
              ...r,
              args: r.args.map((a) =>
                a.name === "format" ? { name: a.name, type: "uint" as const } : a,
              ),
            },
      );
      const iface: InterfaceSpec = { ...pool, requests };
      return { interfaces: { ...s.interfaces, wl_shm_pool: iface } };
    },
  };
}

export interface CompositorOptions {
  kernel?: Kernel;
  policy?: Policy | string;
  width?: number;
  height?: number;
  clock?: FrameClock;
  /** Name of the compositor's process. */
  name?: string;
  /** Passed to the ProtocolServer (variant, limits, codec...). */
  server?: Omit<ServerOptions, "files" | "onClientError">;
}

export interface LocalClient {
  client: ProtocolClient;
  proc: Process;
  remote: ServerClient;
}

export class Compositor {
  readonly kernel: Kernel;
  readonly proc: Process;
  readonly policy: Policy;
  readonly server: ProtocolServer;
  readonly width: number;
  readonly height: number;
  /** The output: one 32-bit pixel per element, the buffers' bytes as they are (little-endian). */
  readonly framebuffer: Uint32Array;
  readonly clock: FrameClock;
  alive = true;
  /** How it died, when it did. */
  death: ProcessKilled | null = null;
  deathCause = "";
  readonly errors: ProtocolErrorRecord[] = [];
  readonly notices: NoticeRecord[] = [];
  private readonly fb8: Uint8Array;
  private readonly instance: PolicyInstance;
  private readonly surfaces = new Map<Surface, true>();
  private readonly pools = new Set<Pool>();
  private nextSeq = 1;
  private frameNo = 0;
  private readonly start0: KernelFigures;
  private totals = { composeMs: 0, buffersRead: 0, bytesCopied: 0 };
  private lastPlacements: SurfacePlacement[] = [];
  private localClients = 0;

  constructor(opts: CompositorOptions = {}) {
    this.kernel = opts.kernel ?? new Kernel();
    const policy =
      typeof opts.policy === "string" ? getPolicy(opts.policy) : (opts.policy ?? getPolicy("none"));
    this.policy = policy;
    const missing = policy.features.filter((f) => !this.kernel.features.has(f));
    if (missing.length)
      throw new Error(
        `policy ${policy.name} needs kernel feature(s) ${missing.join(", ")}; build the Kernel with features: [${missing.map((f) => JSON.stringify(f)).join(", ")}]`,
      );
    this.width = opts.width ?? 640;
    this.height = opts.height ?? 480;
    this.framebuffer = new Uint32Array(new SharedArrayBuffer(this.width * this.height * 4));
    this.fb8 = new Uint8Array(this.framebuffer.buffer);
    this.clock = opts.clock ?? new VirtualClock();
    this.proc = this.kernel.spawn(opts.name ?? "compositor");
    this.start0 = figures(this.proc);
    const variant = opts.server?.variant ?? STANDARD;
    this.server = new ProtocolServer({
      ...opts.server,
      variant: formatsJudgedByHandler(typeof variant === "string" ? getVariant(variant) : variant),
      files: processFileInspector(this.proc),
      onClientError: (c, e) => this.recordError(c, e),
    });
    this.instance = policy.create(this.proc, {
      panic: (reason) => this.panic(reason),
      onBlocked: (what, run) => this.onBlocked(what, run),
    });
    this.installGlobals();
  }

  // ---- connections ---------------------------------------------------------------------

  /**
   * Serves a client on any transport. Without `fds`, the client is taken to send in-flight
   * handles of this kernel (a worker or in-process client): each received fd becomes an fd
   * of the compositor's process (serverFdBridge). Pass remoteFdBridge for WebSocket clients.
   */
  connect(transport: Transport, opts: ConnectOptions = {}): ServerClient {
    if (!this.alive) throw this.death!;
    return this.server.connect(this.guard(transport), {
      ...opts,
      fds: opts.fds ?? serverFdBridge(this.kernel, this.proc),
    });
  }

  /** A client in this thread with a process of its own, over a PairTransport. */
  connectLocal(name?: string): LocalClient {
    const label = name ?? `client-${++this.localClients}`;
    const proc = this.kernel.spawn(label);
    const [ct, st] = createPair();
    const remote = this.connect(st, { label });
    const client = new ProtocolClient(ct, {
      schema: this.server.schema,
      fds: workerFdBridge(this.kernel, proc),
    });
    return { client, proc, remote };
  }

  /** Wraps a transport so a death during dispatch is recorded before it propagates. */
  private guard(t: Transport): Transport {
    return {
      send: (b, f) => t.send(b, f),
      onMessage: (h) =>
        t.onMessage((b, f) => {
          if (!this.alive) return;
          try {
            h(b, f);
          } catch (e) {
            if (this.isOwnDeath(e)) this.die(e);
            throw e;
          }
        }),
      onViolation: (h) => t.onViolation(h),
      onClose: (h) => t.onClose(h),
      close: (r) => t.close(r),
      get closed() {
        return t.closed;
      },
      get bufferedBytes() {
        return t.bufferedBytes;
      },
    };
  }

  /**
   * Runs a policy's helper thread while the compositor's process sleeps on `what`: a
   * scheduler chained in front of the kernel's current one (the lab's seeded one); every
   * other decision stays with it.
   */
  private onBlocked(what: string, run: () => void): void {
    const proc = this.proc;
    const below = this.kernel.scheduler;
    this.kernel.scheduler = {
      point: (p, site) => below.point(p, site),
      block(p, until, w) {
        if (p === proc && w === what) {
          run();
          if (until()) return;
        }
        below.block(p, until, w);
      },
    };
  }

  // ---- death -------------------------------------------------------------------------

  private isOwnDeath(e: unknown): e is ProcessKilled {
    return e instanceof ProcessKilled && e.pid === this.proc.pid;
  }

  private panic(reason: string): never {
    this.deathCause = reason;
    // A Rust panic, wl_abort or Xorg's FatalError ends in abort(3).
    return this.proc.kill("SIGABRT", undefined, "abort");
  }

  private die(e: ProcessKilled): void {
    if (!this.alive) return;
    this.alive = false;
    this.death = e;
    if (!this.deathCause)
      this.deathCause = `${e.signal} (${e.reason}${e.info ? ` at 0x${e.info.addr.toString(16)}` : ""})`;
    this.clock.stop();
    // The process is gone, and with it every socket: each client sees its connection end.
    for (const c of [...this.server.clients]) c.close("compositor died");
  }

  // ---- globals and requests ------------------------------------------------------------

  private installGlobals(): void {
    // The globals are the schema's (protocol/xml/, or a proposal's): an interface its XML
    // lacks is neither advertised nor implemented, and a global is advertised at the
    // version its XML declares.
    const s = this.server.definedOnly();
    const formats = this.policy.profile.formats;
    s.addGlobal("wl_compositor", this.server.schema.interfaces.wl_compositor?.version);
    s.addGlobal("wl_shm", this.server.schema.interfaces.wl_shm?.version, (r) => {
      for (const f of formats) r.client.postEvent(r.id, "format", [f]);
    });

    s.implement("wl_compositor", {
      create_surface: (r, args) => this.createSurface(r.client, args[0] as number),
      create_region: (r, args) => {
        r.client.resource(args[0] as number)!.data = { rects: [] };
      },
    });
    s.implement("wl_region", { destroy: () => {}, add: () => {}, subtract: () => {} });

    s.implement("wl_surface", {
      destroy: () => {},
      attach: (r, args) => {
        const s = r.data as Surface;
        const id = args[0] as number;
        s.pending.attached = true;
        s.pending.buffer = id ? (r.client.resource(id)?.data as Buffer) : null;
      },
      damage: (r, args) => {
        const [x, y, width, height] = args as unknown as number[];
        (r.data as Surface).pending.damage.push({ x, y, width, height });
      },
      damage_buffer: (r, args) => {
        const [x, y, width, height] = args as unknown as number[];
        (r.data as Surface).pending.bufferDamage.push({ x, y, width, height });
      },
      frame: (r, args) => {
        (r.data as Surface).pending.frames.push(args[0] as number);
      },
      set_opaque_region: () => {},
      set_input_region: () => {},
      commit: (r) => this.commit(r.data as Surface),
      set_buffer_transform: (r, args) => {
        const t = args[0] as number;
        // wayland.xml: "if transform is not one of the values from the wl_output.transform enum"
        if (t < 0 || t > 7)
          throw interfaceError(r.id, 1, `buffer transform value (${t}) is invalid`);
        (r.data as Surface).transform = t;
      },
      set_buffer_scale: (r, args) => {
        const scale = args[0] as number;
        if (scale < 1)
          throw interfaceError(r.id, 0, `buffer scale value (${scale}) is not positive`);
        (r.data as Surface).scale = scale;
      },
    });

    s.implement("wl_shm", {
      create_pool: (r, args) => this.createPool(r, args as [number, number, number]),
      release: () => {},
    });
    s.implement("wl_shm_pool", {
      create_buffer: (r, args) => this.createBuffer(r, args as unknown as number[]),
      destroy: () => {},
      resize: (r, args) => this.resizePool(r, args[0] as number),
    });
    s.implement("wl_buffer", { destroy: () => {} });
  }

  private createSurface(client: ServerClient, id: number): void {
    const res = client.resource(id)!;
    const s: Surface = {
      id,
      client,
      seq: this.nextSeq++,
      pending: { attached: false, buffer: null, damage: [], bufferDamage: [], frames: [] },
      current: { buffer: null, dirty: false, frames: [], damage: [] },
      texture: null,
      texGeom: null,
      scale: 1,
      transform: 0,
    };
    res.data = s;
    this.surfaces.set(s, true);
    res.onDestroy = () => {
      this.dropDetached(s);
      this.surfaces.delete(s);
    };
  }

  /** The surface no longer shows a destroyed buffer it kept: release that buffer's pool. */
  private dropDetached(s: Surface): void {
    const b = s.current.buffer;
    if (!b?.detached) return;
    b.detached = false;
    s.current.buffer = null;
    this.unrefPool(b.pool);
  }

  private commit(s: Surface): void {
    const p = s.pending;
    if (p.attached) {
      this.dropDetached(s);
      const old = s.current.buffer;
      // A compositor that keeps reading the client's memory (weston's and wlroots 0.15's
      // pixman renderers) releases a buffer only once another one replaces it.
      if (
        this.policy.releaseOnReplace &&
        old &&
        old !== p.buffer &&
        old.alive &&
        !old.client.closed
      )
        old.client.postEvent(old.id, "release");
      s.current.buffer = p.buffer;
      // weston's pixman_renderer_attach makes its image from the data pointer at commit.
      if (p.buffer?.alive) this.instance.attach?.(p.buffer);
      s.current.dirty = p.buffer !== null;
      if (p.buffer === null) {
        s.texture = null;
        s.texGeom = null;
      }
    }
    s.current.frames.push(...p.frames);
    s.current.damage = [...p.damage, ...p.bufferDamage];
    s.pending = { attached: false, buffer: null, damage: [], bufferDamage: [], frames: [] };
  }

  private refusal(objectId: number, r: Refusal): ProtocolError {
    return interfaceError(objectId, r.code, r.message);
  }

  private createPool(r: Resource, [id, fd, size]: [number, number, number]): void {
    const closeFd = () => {
      // EBADF: already closed by the policy.
      if (this.proc.alive) onErrno(["EBADF"], () => this.proc.close(fd), undefined);
    };
    const bad = this.policy.profile.createPool(size);
    if (bad) {
      closeFd();
      throw this.refusal(r.id, bad);
    }
    const client = r.client;
    const pool: Pool = {
      id,
      client,
      name: `${client.label}#${id}`,
      fd,
      size,
      addr: 0,
      state: {},
      freed: false,
      refs: 1,
      busy: 0,
      newSize: null,
      resourceRef: true,
      unmapped: false,
    };
    try {
      this.instance.mapPool(pool);
    } catch (e) {
      if (e instanceof ShmRefusal) {
        if (pool.fd >= 0) closeFd();
        throw this.refusal(r.id, e.refusal);
      }
      throw e;
    }
    this.pools.add(pool);
    const res = client.resource(id)!;
    res.data = pool;
    res.onDestroy = () => {
      if (pool.resourceRef) {
        pool.resourceRef = false;
        this.unrefPool(pool);
      }
    };
  }

  private unrefPool(pool: Pool): void {
    if (--pool.refs > 0 || pool.unmapped) return;
    pool.unmapped = true;
    this.pools.delete(pool);
    if (this.alive && this.proc.alive) this.instance.unmapPool(pool);
  }

  private createBuffer(r: Resource, args: number[]): void {
    const [id, offset, width, height, stride, format] = args;
    const pool = r.data as Pool;
    const b: BufferArgs = { offset, width, height, stride, format };
    if (!pool.freed) {
      const bad = this.policy.profile.createBuffer(b, pool.size);
      if (bad) throw this.refusal(r.id, bad);
    }
    const bpp = bytesPerPixel(format) || 4;
    const client = r.client;
    const buf: Buffer = {
      ...b,
      id,
      client,
      pool,
      bpp,
      span: (height - 1) * stride + width * bpp,
      name: `${client.label}#${id}`,
      alive: true,
      inert: pool.freed,
    };
    if (pool.freed) {
      // Xorg: a request naming a freed segment is BadShmSeg, an X error that does not
      // disconnect; wl_shm has none, so the buffer is inert and the event is noted.
      this.notices.push({
        frame: this.frameNo,
        client: client.label,
        clientId: client.id,
        pool: pool.name,
        what: "BadShmSeg: create_buffer on a freed segment (buffer inert)",
      });
    }
    pool.refs++;
    const res = client.resource(id)!;
    res.data = buf;
    res.onDestroy = () => {
      buf.alive = false;
      const keep =
        this.instance.readDestroyed !== undefined &&
        [...this.surfaces.keys()].some((s) => s.current.buffer === buf);
      for (const s of this.surfaces.keys()) {
        if (s.current.buffer === buf && !keep) s.current.buffer = null;
        if (s.pending.buffer === buf) s.pending.buffer = null;
      }
      if (keep) buf.detached = true;
      else this.unrefPool(pool);
    };
  }

  private resizePool(r: Resource, size: number): void {
    const pool = r.data as Pool;
    const mayShrink = this.server.variant.rules.poolsMayShrink && size > 0;
    const bad = mayShrink && size < pool.size ? null : this.policy.profile.resize(size, pool.size);
    if (bad?.thenPanic) {
      r.client.postError(r.id, bad.code, bad.message);
      this.panic(bad.thenPanic);
    }
    if (bad) throw this.refusal(r.id, bad);
    if (pool.freed) return;
    if (mayShrink && size < pool.size) pool.shrunk = true;
    if (this.policy.deferResizeWhileReading && pool.busy > 0) {
      // wayland-shm.c shm_pool_resize: "we defer the resize ... until the compositor
      // finishes dereferencing the pool".
      pool.newSize = size;
      return;
    }
    this.finishResize(pool, size);
  }

  private finishResize(pool: Pool, size: number): void {
    pool.newSize = null;
    try {
      this.instance.growPool(pool, size);
    } catch (e) {
      if (!(e instanceof ShmRefusal)) throw e;
      // "only if pool->resource != NULL": a destroyed pool's resize fails silently.
      if (pool.resourceRef && !pool.client.closed)
        pool.client.postError(pool.id, e.refusal.code, e.refusal.message);
    }
  }

  private recordError(c: ServerClient, e: ProtocolError): void {
    this.errors.push({
      frame: this.frameNo,
      client: c.label,
      clientId: c.id,
      objectId: e.objectId,
      interface: c.resource(e.objectId)?.interface ?? "?",
      code: e.wlCode,
      message: e.message,
      protoCode: e.code,
    });
  }

  // ---- buffer access -------------------------------------------------------------------

  /**
   * Runs `fn` inside a bracketed access to a buffer (begin_access ... end_access), for
   * code that reads buffers outside frame() — and for tests of nesting. Returns what the
   * policy's end_access decided; an error is posted on the wl_buffer.
   */
  withAccess(
    client: ServerClient,
    bufferId: number,
    fn: (a: Access) => void,
  ): AccessEnd | undefined {
    const b = client.resource(bufferId)?.data as Buffer | undefined;
    if (!b?.alive) throw new Error(`no live buffer ${bufferId}`);
    return this.guardDeath(() => this.access(b, fn));
  }

  /** Reads a buffer's bytes through the policy (as frame() does) into a new array. */
  readBuffer(client: ServerClient, bufferId: number): Uint8Array {
    const b = client.resource(bufferId)?.data as Buffer | undefined;
    if (!b) throw new Error(`no buffer ${bufferId}`);
    const out = new Uint8Array(b.span);
    this.withAccess(client, bufferId, (a) => this.instance.read(a, out));
    return out;
  }

  private guardDeath<T>(fn: () => T): T {
    if (!this.alive) throw this.death!;
    try {
      return fn();
    } catch (e) {
      if (this.isOwnDeath(e)) this.die(e);
      throw e;
    }
  }

  private invalidBeyondShrink(b: Buffer): void {
    b.inert = true;
    this.notices.push({
      frame: this.frameNo,
      client: b.client.label,
      clientId: b.client.id,
      pool: b.pool.name,
      what: `buffer ${b.id} lies beyond the shrunk pool (${b.pool.size} bytes): invalid, not read`,
    });
  }

  private access(b: Buffer, fn: (a: Access) => void): AccessEnd | undefined {
    const pool = b.pool;
    pool.refs++;
    pool.busy++;
    let end: AccessEnd | undefined;
    try {
      const a = this.instance.beginAccess(b);
      fn(a);
      end = this.instance.endAccess(a);
    } finally {
      // On a death nothing below matters; on another failure (a Deadlock, a bug) the pool
      // must not stay marked as being read.
      pool.busy--;
    }
    if (pool.busy === 0 && pool.newSize !== null && !pool.unmapped)
      this.finishResize(pool, pool.newSize);
    this.unrefPool(pool);
    if (end?.error && b.alive && !b.client.closed)
      b.client.postError(b.id, end.error.code, end.error.message);
    return end;
  }

  // ---- frames --------------------------------------------------------------------------

  /** Surfaces in creation order. */
  private surfaceList(): Surface[] {
    return [...this.surfaces.keys()].sort((a, b) => a.seq - b.seq);
  }

  /**
   * One frame: read each newly committed buffer through the policy, composite every
   * surface that has contents, release what was read, send the frame callbacks, then the
   * policy's main-loop work. Throws the compositor's ProcessKilled if it dies.
   */
  frame(): FrameStats {
    if (!this.alive) throw this.death!;
    const before = figures(this.proc);
    const t0 = performance.now();
    const frame = ++this.frameNo;
    const errors0 = this.errors.length;
    const notices0 = this.notices.length;
    const time = this.clock.tick();
    let buffersRead = 0;
    let bytesCopied = 0;
    try {
      const released: Buffer[] = [];
      for (const s of this.surfaceList()) {
        const b = s.current.buffer;
        if (b?.detached && !s.client.closed) {
          // Read at every repaint, outside any begin/end_access (wlroots 0.15 pixman).
          const tex = s.texture && s.texture.length === b.span ? s.texture : new Uint8Array(b.span);
          this.instance.readDestroyed!(b, tex);
          s.texture = tex;
          continue;
        }
        if (!b || !s.current.dirty || s.client.closed) continue;
        s.current.dirty = false;
        if (!b.alive || b.inert) continue;
        // shrinkable-pools: "buffers beyond the new size become invalid" — such a buffer is
        // never read again (reading it would run past the shrunk mapping: SIGSEGV).
        if (b.pool.shrunk && b.offset + b.span > b.pool.size) {
          this.invalidBeyondShrink(b);
          continue;
        }
        const tex = s.texture && s.texture.length === b.span ? s.texture : new Uint8Array(b.span);
        this.access(b, (a) => this.instance.read(a, tex));
        buffersRead++;
        bytesCopied += b.span;
        s.texture = tex;
        s.texGeom = {
          width: b.width,
          height: b.height,
          stride: b.stride,
          bpp: b.bpp,
          format: b.format,
        };
        released.push(b);
      }
      this.composite();
      // "wl_buffer.release ... when the compositor no longer uses the contents": they were
      // copied into the compositor's own memory.
      if (!this.policy.releaseOnReplace)
        for (const b of released)
          if (b.alive && !b.client.closed) b.client.postEvent(b.id, "release");
      const ms = Math.floor(time) >>> 0;
      for (const s of this.surfaceList()) {
        if (s.client.closed) continue;
        for (const cb of s.current.frames.splice(0))
          if (s.client.resource(cb)) s.client.postEvent(cb, "done", [ms]);
      }
      const notes: PolicyNotice[] = this.instance.idle?.() ?? [];
      for (const n of notes) this.policyNotice(n);
    } catch (e) {
      if (this.isOwnDeath(e)) this.die(e);
      throw e;
    }
    const composeMs = performance.now() - t0;
    this.totals.composeMs += composeMs;
    this.totals.buffersRead += buffersRead;
    this.totals.bytesCopied += bytesCopied;
    return {
      ...diff(figures(this.proc), before),
      frame,
      time,
      composeMs,
      buffersRead,
      bytesCopied,
      errors: this.errors.slice(errors0),
      notices: this.notices.slice(notices0),
      alive: this.alive,
      surfaces: this.lastPlacements,
    };
  }

  private policyNotice(n: PolicyNotice): void {
    const pool = n.pool as Pool;
    this.notices.push({
      frame: this.frameNo,
      client: pool.client.label,
      clientId: pool.client.id,
      pool: pool.name,
      what: n.what,
    });
    // The segment's own reference is freed (ShmDetachSegment: buffers keep theirs).
    if (pool.freed && pool.resourceRef) {
      pool.resourceRef = false;
      this.unrefPool(pool);
    }
  }

  /**
   * The layout: surfaces with contents, in creation order, on a grid of
   * ceil(sqrt(n)) columns; each at its tile's top-left corner, clipped to the tile.
   */
  layout(): { surface: Surface; place: SurfacePlacement }[] {
    const shown = this.surfaceList().filter((s) => s.texture && s.texGeom && !s.client.closed);
    const n = shown.length;
    if (n === 0) return [];
    const cols = Math.ceil(Math.sqrt(n));
    const rows = Math.ceil(n / cols);
    const tw = Math.floor(this.width / cols);
    const th = Math.floor(this.height / rows);
    return shown.map((s, i) => {
      const g = s.texGeom!;
      const x = (i % cols) * tw;
      const y = Math.floor(i / cols) * th;
      return {
        surface: s,
        place: {
          client: s.client.label,
          clientId: s.client.id,
          surface: s.id,
          x,
          y,
          width: Math.min(g.width, tw),
          height: Math.min(g.height, th),
          buffer: { width: g.width, height: g.height, stride: g.stride, format: g.format },
        },
      };
    });
  }

  private composite(): void {
    this.framebuffer.fill(0);
    const out: SurfacePlacement[] = [];
    const W = this.width;
    for (const { surface: s, place: p } of this.layout()) {
      out.push(p);
      const tex = s.texture!;
      const g = s.texGeom!;
      if (g.bpp !== 4) continue; // every accepted format is 32-bit; others are not drawn
      const rowBytes = p.width * 4;
      for (let y = 0; y < p.height; y++) {
        const src = y * g.stride;
        this.fb8.set(tex.subarray(src, src + rowBytes), ((p.y + y) * W + p.x) * 4);
      }
    }
    this.lastPlacements = out;
  }

  /** The pixels of one placement, row by row (width * height values). */
  regionPixels(p: SurfacePlacement): Uint32Array {
    const out = new Uint32Array(p.width * p.height);
    for (let y = 0; y < p.height; y++) {
      const at = (p.y + y) * this.width + p.x;
      out.set(this.framebuffer.subarray(at, at + p.width), y * p.width);
    }
    return out;
  }

  placements(): SurfacePlacement[] {
    return this.lastPlacements;
  }

  /** Runs the policy's helper threads (the userfaultfd handler) once; true if any ran. */
  serviceThreads(): boolean {
    return this.instance.service?.() ?? false;
  }

  /** Pools currently held (mapped or readable), for leak checks. */
  get poolCount(): number {
    return this.pools.size;
  }

  stats(): RunStats {
    const d = this.death;
    return {
      ...diff(figures(this.proc), this.start0),
      frames: this.frameNo,
      ...this.totals,
      errors: [...this.errors],
      notices: [...this.notices],
      alive: this.alive,
      death: d
        ? {
            signal: d.signal,
            reason: d.reason,
            addr: d.info?.addr ?? -1,
            cause: this.deathCause,
          }
        : null,
      surfaces: this.lastPlacements,
    };
  }

  // ---- clock -------------------------------------------------------------------------

  /**
   * Lets the clock drive frames (an IntervalClock calls frame() at its interval). A death
   * stops the clock and is reported to `onDeath`; other errors to `onError`.
   */
  start(
    on: { onFrame?: (s: FrameStats) => void; onDeath?: (e: ProcessKilled) => void } = {},
  ): void {
    this.clock.start(() => {
      if (!this.alive) return;
      try {
        const s = this.frame();
        on.onFrame?.(s);
      } catch (e) {
        if (e instanceof ProcessKilled && e.pid === this.proc.pid) on.onDeath?.(e);
        else throw e;
      }
    });
  }

  stop(): void {
    this.clock.stop();
  }
}
