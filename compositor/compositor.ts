/**
 * The compositor: a ProtocolServer with wl_compositor and wl_shm, a process of its own in
 * the simulated kernel, and a mapping policy (policy.ts) deciding how pools are mapped and
 * read. Everything is synchronous: requests are handled when a transport delivers them,
 * and `frame()` — a plain call, made by the lab's scheduler or by a frame clock — reads
 * every newly committed buffer through the policy, composites every surface into the
 * output framebuffer, releases the buffers it read and sends the frame callbacks.
 *
 * Its three jobs live in files of their own: pool and buffer lifecycle (pools.ts), framing
 * and compositing (output.ts), and what it counts (stats.ts). This file connects them to
 * the server, the process and the clock, and owns the compositor's death.
 *
 * Death. If the compositor's process is killed (a SIGBUS with no handler, a policy's
 * panic), the compositor is dead: `alive` is false, every client connection is closed, and
 * the ProcessKilled propagates out of frame() or out of the transport's delivery to the
 * caller. It is never turned into a protocol error to a client.
 */
import { performance } from "node:perf_hooks";
import { ProtocolClient } from "../protocol/client.ts";
import type { ProtocolError } from "../protocol/errors.ts";
import {
  processFileInspector,
  serverFdBridge,
  workerFdBridge,
} from "../protocol/kernel-gateway.ts";
import type { InterfaceSpec, Schema } from "../protocol/schema.ts";
import {
  type ConnectOptions,
  ProtocolServer,
  type ServerClient,
  type ServerOptions,
} from "../protocol/server.ts";
import type { Transport } from "../protocol/transport.ts";
import { createPair } from "../protocol/transports/pair.ts";
import { getVariant, type ProtocolVariant, STANDARD } from "../protocol/variant.ts";
import { ProcessKilled } from "../shm/errors.ts";
import { Kernel } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { type FrameClock, VirtualClock } from "./clock.ts";
import { type FaultPlace, faultPlace, type ReadExtent } from "./fault-place.ts";
import { Output, type SurfacePlacement } from "./output.ts";
import { getPolicy } from "./policies/index.ts";
import {
  type Access,
  type AccessEnd,
  type Policy,
  type PolicyInstance,
  type PolicyNotice,
  type ReadRules,
  readRules,
} from "./policy.ts";
import { type Buffer, type Pool, ShmPools } from "./pools.ts";
import {
  diff,
  type FrameStats,
  figures,
  type KernelFigures,
  type NoticeRecord,
  type ProtocolErrorRecord,
  type RunStats,
} from "./stats.ts";

/**
 * wl_shm_pool.create_buffer's format, as the compositor's server decodes it: a plain uint
 * that the policy's profile judges. libwayland-server does not check enum values when it
 * demarshals a request (format_is_supported in shm_pool_create_buffer does), and
 * wayland-rs hands Smithay an unknown value as WEnum::Unknown — so each implementation's
 * own order decides (Smithay's stride check refuses an unknown format before its format
 * check). protocol/'s schema refuses values outside the enum during validation; the
 * compositor's schema leaves them to the handler. Everything else of the variant is kept.
 */
function formatsJudgedByHandler(v: ProtocolVariant): ProtocolVariant {
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

/** The mapping an access reads from: its base less the buffer's offset, the pool's size. */
function extentOf(a: Access): ReadExtent {
  return { start: a.base - a.buffer.offset, size: a.base === 0 ? 0 : a.buffer.pool.size };
}

/**
 * `rethrowDeath` (default true): whether the compositor's own ProcessKilled propagates out
 * of a delivery. Callers that deliver synchronously and catch it (the lab's scheduler, the
 * WebSocket transport's handler) want it; event-driven transports must say false.
 */
export interface CompositorConnectOptions extends ConnectOptions {
  rethrowDeath?: boolean;
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
  /**
   * Most bytes of buffer copies (textures) kept for one client; a commit whose read would
   * need more is wl_display.error no_memory for that client. Default: no limit.
   */
  maxClientTextureBytes?: number;
  /**
   * Most bytes of pools mapped for one client at once; a create_pool or resize past it is
   * wl_display.error no_memory. Default: no limit.
   */
  maxClientPoolBytes?: number;
  /**
   * Most bytes of newly committed buffers read for one client per frame (at least one
   * buffer); the rest, and their frame callbacks, wait for the next frame
   * (Output.maxClientReadBytesPerFrame). Default: no limit.
   */
  maxClientReadBytesPerFrame?: number;
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
  readonly clock: FrameClock;
  alive = true;
  /** How it died, when it did. */
  death: ProcessKilled | null = null;
  deathCause = "";
  /** Where its fatal fault's address lay (fault-place.ts); null: no death, or no address. */
  deathFault: FaultPlace | null = null;
  /** The read in progress when it died in one: what its fault is classified against. */
  private deathRead: ReadExtent | null = null;
  /** The mapping the read in progress reads from, once its access began. */
  private reading: ReadExtent | null = null;
  readonly errors: ProtocolErrorRecord[] = [];
  readonly notices: NoticeRecord[] = [];
  private readonly instance: PolicyInstance;
  private readonly output: Output;
  private readonly pools: ShmPools;
  private frameNo = 0;
  private readonly start0: KernelFigures;
  private totals = { composeMs: 0, buffersRead: 0, bytesCopied: 0 };
  private localClients = 0;
  /** When, how much and on which thread the policy's compositor reads (policy.ts ReadRules). */
  readonly reads: Required<ReadRules>;
  /** The compositor thread running now (PolicyEnv.thread): "main", or "render" in a read. */
  private thread = "main";

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
    this.reads = readRules(policy);
    this.output = new Output(this.width, this.height, opts.maxClientTextureBytes, {
      releaseOnReplace: policy.releaseOnReplace === true,
      at: this.reads.at,
      damage: this.reads.damage,
      destroyed: this.reads.destroyed,
      texture: this.reads.texture,
      frameDone: this.reads.frameDone,
      attach: (b) => this.instance.attach?.(b),
      readDestroyed: undefined,
      releaseDetached: (b) => this.pools.releaseDetached(b),
    });
    // Xorg's ShmPutImage: X errors at the put, and the read inside the request.
    this.output.onCommit = (b) => this.pools.commitChecks(b);
    if (this.reads.at === "commit")
      this.output.readAtCommit = {
        read: (b, tex, ranges) => this.readThrough(b, tex, ranges),
        invalid: (b) => this.unreadable(b),
      };
    this.output.maxClientReadBytesPerFrame =
      opts.maxClientReadBytesPerFrame ?? Number.POSITIVE_INFINITY;
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
      thread: () => this.thread,
    });
    const instance = this.instance;
    if (this.reads.damage === "damage" && !instance.readRange)
      throw new Error(
        `policy ${policy.name} reads damage only (reads.damage) but its instance has no readRange`,
      );
    if (instance.readDestroyed) {
      const read = instance.readDestroyed.bind(instance);
      // An unbracketed read of a kept buffer (wlroots 0.15) is a read too: a fault in it
      // is classified against the buffer's pool.
      this.output.setReadDestroyed((b, into) => {
        this.reading = null;
        try {
          read(b, into);
        } catch (e) {
          this.noteDeathRead(e, b);
          throw e;
        }
      });
    }
    this.pools = new ShmPools({
      proc: this.proc,
      policy,
      instance,
      alive: () => this.alive && this.proc.alive,
      poolsMayShrink: () => this.server.variant.rules.poolsMayShrink,
      notice: (client, pool, what, xError) => this.notice(client, pool, what, xError),
      panic: (reason) => this.panic(reason),
      bufferGone: (b) => this.output.bufferGone(b),
      bufferCreated: this.reads.readAtCreate ? (b) => this.readAtCreate(b) : undefined,
      maxClientPoolBytes: opts.maxClientPoolBytes ?? Number.POSITIVE_INFINITY,
    });
    this.installGlobals();
  }

  // ---- connections ---------------------------------------------------------------------

  /**
   * Serves a client on any transport. Without `fds`, the client is taken to send in-flight
   * handles of this kernel (a worker or in-process client): each received fd becomes an fd
   * of the compositor's process (serverFdBridge). Pass remoteFdBridge for WebSocket clients.
   */
  connect(transport: Transport, opts: CompositorConnectOptions = {}): ServerClient {
    if (!this.alive) throw this.death!;
    const { rethrowDeath = true, ...server } = opts;
    return this.server.connect(this.guard(transport, rethrowDeath), {
      ...server,
      fds: server.fds ?? serverFdBridge(this.kernel, this.proc),
    });
  }

  /** A client in this thread with a process of its own, over a PairTransport. */
  connectLocal(name?: string): LocalClient {
    const label = name ?? `client-${++this.localClients}`;
    const proc = this.kernel.spawn(label);
    const [ct, st] = createPair();
    const remote = this.connect(st, { label, rethrowDeath: false });
    const client = new ProtocolClient(ct, {
      schema: this.server.schema,
      fds: workerFdBridge(this.kernel, proc),
    });
    return { client, proc, remote };
  }

  /**
   * Wraps a transport so a death during dispatch is recorded before it propagates. A
   * transport that delivers on its own (a microtask, a MessagePort event) has no caller to
   * propagate to: there the death is recorded and the connections closed, and nothing is
   * thrown, since a throw from an event handler would end the Node process.
   */
  private guard(t: Transport, rethrowDeath: boolean): Transport {
    return {
      send: (b, f) => t.send(b, f),
      onMessage: (h) =>
        t.onMessage((b, f) => {
          if (!this.alive) return;
          try {
            h(b, f);
          } catch (e) {
            if (!this.isOwnDeath(e)) throw e;
            this.die(e);
            if (rethrowDeath) throw e;
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
      quietFor: (p) => below.quietFor?.(p) === true,
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
    this.deathFault = e.info ? faultPlace(e.info.addr, this.deathRead, this.pools.mapped) : null;
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
    this.output.implement(s);
    this.pools.implement(s);
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

  private notice(client: ServerClient, pool: string, what: string, xError?: string): void {
    this.notices.push({
      frame: this.frameNo,
      client: client.label,
      clientId: client.id,
      pool,
      what,
      ...(xError ? { xError } : {}),
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
    return this.guardDeath(() => {
      this.reading = null;
      try {
        return this.pools.access(b, (a) => {
          this.reading = extentOf(a);
          fn(a);
        });
      } catch (e) {
        this.noteDeathRead(e, b);
        throw e;
      }
    });
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

  /**
   * One read of a buffer as the policy's compositor makes it: inside a bracketed access,
   * the whole span or only `ranges` (damaged rows), on the thread its rules name. With a
   * render thread bracketed on the main thread, begin/end_access run as "main" and the
   * loads (and so any fault and its handler) as "render".
   */
  private readThrough(
    b: Buffer,
    tex: Uint8Array,
    ranges?: readonly (readonly [number, number])[],
  ): void {
    const body = (a: Access) => {
      this.reading = extentOf(a);
      if (!ranges) this.instance.read(a, tex);
      else for (const [off, n] of ranges) this.instance.readRange!(a, tex, off, n);
    };
    this.reading = null;
    try {
      if (this.reads.thread !== "render") this.pools.access(b, body);
      else if (this.reads.bracket === "main")
        this.pools.access(b, (a) => this.onThread("render", () => body(a)));
      else this.onThread("render", () => this.pools.access(b, body));
    } catch (e) {
      this.noteDeathRead(e, b);
      throw e;
    }
  }

  /**
   * The compositor died inside a read of `b`: remember the mapping the read was reading
   * from (taken when its access began; before that, the pool's mapping now), for die().
   */
  private noteDeathRead(e: unknown, b: Buffer): void {
    if (!this.isOwnDeath(e) || this.deathRead) return;
    const pool = b.pool;
    this.deathRead = this.reading ?? { start: pool.addr, size: pool.addr === 0 ? 0 : pool.size };
  }

  /** Hyprland's CWLSHMBuffer constructor: a CTexture from the pool's data, at create_buffer. */
  private readAtCreate(b: Buffer): void {
    const tex = new Uint8Array(b.span);
    this.readThrough(b, tex);
    this.output.createdTexture(b, tex);
  }

  private onThread(name: string, fn: () => void): void {
    const was = this.thread;
    this.thread = name;
    try {
      fn();
    } finally {
      this.thread = was;
    }
  }

  /** A due read that is not made: the policy declines it (PolicyInstance.declines), or it is invalid. */
  private unreadable(b: Buffer): boolean {
    return this.instance.declines?.(b) === true || this.invalidBeyondShrink(b);
  }

  /**
   * shrinkable-pools: "buffers beyond the new size become invalid" — such a buffer is never
   * read again (reading it would run past the shrunk mapping: SIGSEGV).
   */
  private invalidBeyondShrink(b: Buffer): boolean {
    if (!(b.pool.shrunk && b.offset + b.span > b.pool.size)) return false;
    b.inert = true;
    this.notice(
      b.client,
      b.pool.name,
      `buffer ${b.id} lies beyond the shrunk pool (${b.pool.size} bytes): invalid, not read`,
    );
    return true;
  }

  // ---- frames --------------------------------------------------------------------------

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
    let reads = { buffersRead: 0, bytesCopied: 0 };
    try {
      const r = this.output.readCommitted(
        (b, tex, ranges) => this.readThrough(b, tex, ranges),
        (b) => this.unreadable(b),
      );
      reads = r;
      this.output.composite();
      this.output.finishFrame(r.released, time);
      const notes: PolicyNotice[] = this.instance.idle?.() ?? [];
      for (const n of notes) this.policyNotice(n);
    } catch (e) {
      if (this.isOwnDeath(e)) this.die(e);
      throw e;
    }
    const composeMs = performance.now() - t0;
    this.totals.composeMs += composeMs;
    this.totals.buffersRead += reads.buffersRead;
    this.totals.bytesCopied += reads.bytesCopied;
    return {
      ...diff(figures(this.proc), before),
      frame,
      time,
      composeMs,
      buffersRead: reads.buffersRead,
      bytesCopied: reads.bytesCopied,
      errors: this.errors.slice(errors0),
      notices: this.notices.slice(notices0),
      alive: this.alive,
      surfaces: this.output.placements(),
    };
  }

  /**
   * The output as last composited: one 32-bit pixel per element, the buffers' bytes as they
   * are (little-endian). A new frame is composed in another array: read this after frame().
   */
  get framebuffer(): Uint32Array {
    return this.output.framebuffer;
  }

  /** Reads that went straight into the framebuffer (Output.destination), for tests and benches. */
  get directReads(): number {
    return this.output.directReads;
  }

  private policyNotice(n: PolicyNotice): void {
    const pool = n.pool as Pool;
    this.notice(pool.client, pool.name, n.what);
    // The segment's own reference is freed (ShmDetachSegment: buffers keep theirs).
    if (pool.freed) this.pools.releaseResource(pool);
  }

  /** The pixels of one placement, row by row (width * height values). */
  regionPixels(p: SurfacePlacement): Uint32Array {
    return this.output.regionPixels(p);
  }

  placements(): SurfacePlacement[] {
    return this.output.placements();
  }

  /** Runs the policy's helper threads (the userfaultfd handler) once; true if any ran. */
  serviceThreads(): boolean {
    return this.instance.service?.() ?? false;
  }

  /** The policy runs helper threads (serviceThreads() may do work); false: it never does. */
  get hasServiceThreads(): boolean {
    return this.instance.service !== undefined;
  }

  /** Pools currently held (mapped or readable), for leak checks. */
  get poolCount(): number {
    return this.pools.count;
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
            fault: this.deathFault,
          }
        : null,
      surfaces: this.output.placements(),
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
