/**
 * The client library: a small typed, synchronous API over a ProtocolClient (any transport)
 * and the client's simulated process (ClientSys), for behaviours to be written as plain
 * generators.
 *
 * Everything that needs an answer from the compositor returns immediately and gives a Wait
 * (behaviour.ts): `yield c.setup()`, `yield c.roundtrip()`, `yield c.untilReleased(buf)`,
 * `yield c.untilDone(cb)`. Nothing blocks, so the same behaviour runs stepped by the lab's
 * seeded scheduler or freely in a worker.
 *
 * After the connection has ended (a protocol error, a disconnect), requests are dropped
 * silently, as libwayland-client drops them once the display has an error; a behaviour
 * waiting for an answer then never gets one, and the runtime ends it as "done" with the
 * error recorded.
 *
 * The raw escape hatch: `raw()` writes any opcode with any arguments straight through the
 * codec (no schema check on this side), `rawBytes()` any bytes, `sys.syscall()` any syscall.
 */
import type { ClientError } from "../protocol/client.ts";
import { NEW_ID, ProtocolClient } from "../protocol/client.ts";
import type { CodecLimits } from "../protocol/codec.ts";
import { encodeMessage } from "../protocol/codec.ts";
import { DISPLAY_ID, getInterface, type Schema } from "../protocol/schema.ts";
import type { SyscallArg, SyscallName, SyscallValue } from "../protocol/syscalls.ts";
import type { FdBridge, Transport } from "../protocol/transport.ts";
import { onErrno } from "../shm/expected-errors.ts";
import { MAP, MFD, PAGE_SIZE, PROT, SEAL } from "../shm/uapi.ts";
import type { Wait } from "./behaviour.ts";
import { until } from "./behaviour.ts";
import { patternTile, pixelAt, renderFrame } from "./pattern.ts";
import type { ClientSys } from "./sys.ts";

export const FORMAT_ARGB8888 = 0;
export const FORMAT_XRGB8888 = 1;

export interface InboxEvent {
  seq: number;
  objectId: number;
  interface: string;
  event: string;
  args: readonly unknown[];
}

export interface Memfd {
  fd: number;
  size: number;
}

export interface PoolRef {
  id: number;
  size: number;
  destroyed: boolean;
}

export interface BufferRef {
  id: number;
  pool: number;
  offset: number;
  width: number;
  height: number;
  stride: number;
  format: number;
  /** False from the commit that attached it until wl_buffer.release. */
  released: boolean;
  /** Commits this buffer was attached to. */
  commits: number;
  releases: number;
  destroyed: boolean;
  /** The pattern frame last drawn into it (honest clients), or -1. */
  frame: number;
  /** A rectangle drawn since with a later frame (drawPatternRect), or undefined. */
  inset?: PatternInset;
}

/**
 * A rectangle of a buffer holding another pattern frame than the rest: what a client that
 * redraws (and damages) only part of its window shows there.
 */
export interface PatternInset {
  x: number;
  y: number;
  width: number;
  height: number;
  frame: number;
}

export interface CallbackRef {
  id: number;
  done: boolean;
  data: number;
}

export interface CommitRecord {
  surface: number;
  buffer: number;
  /** The pattern frame the buffer held, or -1. */
  frame: number;
  /** The rectangle holding a later frame, if the buffer had one (drawPatternRect). */
  inset?: PatternInset;
  at: number;
}

export interface ClientOptions {
  schema?: Schema;
  label?: string;
  codec?: Partial<CodecLimits>;
  /** Keep at most this many events in the inbox (older ones are counted, not kept). */
  inboxLimit?: number;
}

/** A syscall answered later (the WebSocket channel): poll `done`, or yield `wait`. */
export interface Pending<T> {
  done: boolean;
  value: T | undefined;
  error: Error | undefined;
  readonly wait: Wait;
  readonly promise: Promise<T>;
}

export class Client {
  readonly proto: ProtocolClient;
  readonly sys: ClientSys | undefined;
  readonly label: string;
  readonly globals = new Map<string, { name: number; version: number }>();
  readonly formats = new Set<number>();
  readonly inbox: InboxEvent[] = [];
  /** Events received in all (the inbox keeps only the latest `inboxLimit`). */
  eventCount = 0;
  readonly pools = new Map<number, PoolRef>();
  readonly buffers = new Map<number, BufferRef>();
  readonly surfaces = new Set<number>();
  readonly commits: CommitRecord[] = [];
  /** Latest committed pattern frame per surface. */
  readonly latestFrame = new Map<number, number>();
  registry = 0;
  compositor = 0;
  shm = 0;
  requests = 0;
  /** What a behaviour observed on its side (an errno it got, a choice it made), for reports. */
  readonly notes: string[] = [];
  /** Commits that carried a buffer, in all (`commits` keeps only the latest 256). */
  commitCount = 0;
  /** Bumped on every event and at close: the async driver sleeps until it changes. */
  activity = 0;
  private readonly inboxLimit: number;
  private readonly waiters: (() => void)[] = [];
  private commitSeq = 0;

  constructor(transport: Transport, sys: ClientSys | undefined, opts: ClientOptions = {}) {
    this.sys = sys;
    this.label = opts.label ?? `client${sys ? `-${sys.pid}` : ""}`;
    this.inboxLimit = opts.inboxLimit ?? 4096;
    const fds: FdBridge | undefined = sys
      ? {
          outgoing: (fd) => sys.exportFd(fd),
          incoming: (h) => sys.importFd(h),
          // EBADF: already closed.
          discard: (fd) => onErrno(["EBADF"], () => sys.close(fd), undefined),
        }
      : undefined;
    this.proto = new ProtocolClient(transport, { schema: opts.schema, fds, codec: opts.codec });
    this.proto.onError(() => this.poke());
    this.proto.onClose(() => this.poke());
  }

  get closed(): boolean {
    return this.proto.closed;
  }

  get error(): ClientError | null {
    return this.proto.error;
  }

  get schema(): Schema {
    return this.proto.schema;
  }

  /** The live process, or a clear error for a client without one (WebSocket). */
  get process(): ClientSys {
    if (!this.sys) throw new Error(`${this.label} has no local process (remote client)`);
    return this.sys;
  }

  // ---- waiting ---------------------------------------------------------------------

  /** A promise for the next event or the end of the connection (for async drivers). */
  nextActivity(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private poke(): void {
    this.activity++;
    for (const w of this.waiters.splice(0)) w();
  }

  untilClosed(): Wait {
    return until("connection end", () => this.closed);
  }

  untilReleased(b: BufferRef): Wait {
    return until(`release of wl_buffer@${b.id}`, () => b.released);
  }

  untilDone(cb: CallbackRef): Wait {
    return until(`frame callback ${cb.id}`, () => cb.done);
  }

  // ---- requests --------------------------------------------------------------------

  /**
   * Sends a schema-checked request and gives the new object (if any) an inbox handler.
   * Dropped (returning 0) once the connection has ended.
   */
  request(objectId: number, name: string, args: readonly unknown[] = []): number {
    if (this.closed) return 0;
    this.requests++;
    const id = this.proto.request(objectId, name, args);
    if (id) this.track(id);
    return id;
  }

  private track(id: number): void {
    const o = this.proto.objects.lookup(id);
    if (!o) return;
    this.proto.listen(id, (event, args) => this.onEvent(id, o.interface, event, args));
  }

  private onEvent(id: number, iface: string, event: string, args: readonly unknown[]): void {
    this.eventCount++;
    this.inbox.push({ seq: this.eventCount, objectId: id, interface: iface, event, args });
    if (this.inbox.length > this.inboxLimit)
      this.inbox.splice(0, this.inbox.length - this.inboxLimit);
    if (iface === "wl_registry" && event === "global") {
      const [name, ifaceName, version] = args as [number, string, number];
      this.globals.set(ifaceName, { name, version });
    } else if (iface === "wl_registry" && event === "global_remove") {
      for (const [k, g] of this.globals) if (g.name === args[0]) this.globals.delete(k);
    } else if (iface === "wl_shm" && event === "format") {
      this.formats.add(args[0] as number);
    } else if (iface === "wl_buffer" && event === "release") {
      const b = this.buffers.get(id);
      if (b) {
        b.released = true;
        b.releases++;
      }
    }
    this.poke();
  }

  /** wl_display.sync as a Wait. */
  roundtrip(): Wait & { readonly serial: number | undefined } {
    const cb = this.callback(DISPLAY_ID, "sync");
    return {
      what: `roundtrip (wl_callback@${cb.id})`,
      ready: () => cb.done,
      get serial() {
        return cb.done ? cb.data : undefined;
      },
    };
  }

  private callback(objectId: number, request: string): CallbackRef {
    const cb: CallbackRef = { id: 0, done: false, data: 0 };
    if (this.closed) return cb;
    this.requests++;
    cb.id = this.proto.request(objectId, request, [NEW_ID]);
    this.proto.listen(cb.id, (event, args) => {
      this.onEvent(cb.id, "wl_callback", event, args);
      cb.done = true;
      cb.data = args[0] as number;
    });
    return cb;
  }

  /**
   * Gets the registry, waits for the globals, binds wl_compositor and wl_shm (at the
   * highest version both sides know). Ready once both are bound and the shm formats are in.
   */
  setup(opts: { compositorVersion?: number; shmVersion?: number } = {}): Wait {
    this.registry = this.request(DISPLAY_ID, "get_registry", [NEW_ID]);
    const first = this.callback(DISPLAY_ID, "sync");
    let second: CallbackRef | undefined;
    return until("registry and core globals", () => {
      if (!first.done) return false;
      if (!second) {
        this.bindCore(opts);
        second = this.callback(DISPLAY_ID, "sync");
      }
      return second.done;
    });
  }

  private bindCore(opts: { compositorVersion?: number; shmVersion?: number }): void {
    const comp = this.globals.get("wl_compositor");
    const shm = this.globals.get("wl_shm");
    const known = (n: string) => getInterface(this.schema, n)?.version ?? 1;
    if (comp)
      this.compositor = this.bind(
        "wl_compositor",
        Math.min(opts.compositorVersion ?? comp.version, comp.version, known("wl_compositor")),
      );
    if (shm)
      this.shm = this.bind(
        "wl_shm",
        Math.min(opts.shmVersion ?? shm.version, shm.version, known("wl_shm")),
      );
  }

  /** wl_registry.bind of an advertised global. */
  bind(iface: string, version: number): number {
    const g = this.globals.get(iface);
    if (!g) throw new Error(`no global ${iface} advertised`);
    return this.request(this.registry, "bind", [g.name, iface, version, NEW_ID]);
  }

  createSurface(): number {
    const id = this.request(this.compositor, "create_surface", [NEW_ID]);
    if (id) this.surfaces.add(id);
    return id;
  }

  createPool(fd: number, size: number): PoolRef {
    const id = this.request(this.shm, "create_pool", [NEW_ID, fd, size]);
    const p: PoolRef = { id, size, destroyed: false };
    if (id) this.pools.set(id, p);
    return p;
  }

  resizePool(pool: PoolRef, size: number): void {
    this.request(pool.id, "resize", [size]);
    pool.size = size;
  }

  destroyPool(pool: PoolRef): void {
    this.request(pool.id, "destroy");
    pool.destroyed = true;
  }

  createBuffer(
    pool: PoolRef,
    offset: number,
    width: number,
    height: number,
    stride: number,
    format = FORMAT_XRGB8888,
  ): BufferRef {
    const id = this.request(pool.id, "create_buffer", [
      NEW_ID,
      offset,
      width,
      height,
      stride,
      format,
    ]);
    const b: BufferRef = {
      id,
      pool: pool.id,
      offset,
      width,
      height,
      stride,
      format,
      released: true,
      commits: 0,
      releases: 0,
      destroyed: false,
      frame: -1,
    };
    if (id) this.buffers.set(id, b);
    return b;
  }

  destroyBuffer(b: BufferRef): void {
    this.request(b.id, "destroy");
    b.destroyed = true;
  }

  attach(surface: number, b: BufferRef | null, x = 0, y = 0): void {
    this.request(surface, "attach", [b ? b.id : 0, x, y]);
    if (b) b.released = false;
  }

  damage(surface: number, x: number, y: number, w: number, h: number): void {
    this.request(surface, "damage", [x, y, w, h]);
  }

  damageBuffer(surface: number, x: number, y: number, w: number, h: number): void {
    this.request(surface, "damage_buffer", [x, y, w, h]);
  }

  /** wl_surface.frame: the callback fires when it is a good time to draw the next frame. */
  frame(surface: number): CallbackRef {
    return this.callback(surface, "frame");
  }

  /** wl_surface.commit; `buffer` (the one attached) is recorded with its pattern frame. */
  commit(surface: number, buffer?: BufferRef): void {
    this.request(surface, "commit");
    if (buffer && !this.closed) {
      buffer.commits++;
      this.commitCount++;
      this.commits.push({
        surface,
        buffer: buffer.id,
        frame: buffer.frame,
        ...(buffer.inset ? { inset: { ...buffer.inset } } : {}),
        at: this.commitSeq++,
      });
      if (this.commits.length > 256) this.commits.splice(0, this.commits.length - 256);
      if (buffer.frame >= 0) this.latestFrame.set(surface, buffer.frame);
    }
  }

  /** Destroys any object that has a destroy request. */
  destroy(id: number): void {
    this.request(id, "destroy");
  }

  /** Ends the connection from this side (a client that goes away mid-session). */
  disconnect(): void {
    this.proto.close();
  }

  // ---- raw -------------------------------------------------------------------------

  /**
   * Writes one message frame with any object id, opcode and arguments, checked by nothing
   * on this side. `fds` are this process's fds, attached beside the frame (an fd argument
   * on the wire is its slot index in that list). `newObject` registers a new id in this
   * client's map (argument `index` of `args` is replaced by it), so later events on it are
   * understood.
   */
  raw(
    objectId: number,
    opcode: number,
    args: readonly unknown[],
    opts: {
      fds?: readonly number[];
      newObject?: { index: number; interface: string; version: number };
    } = {},
  ): number {
    if (this.closed) return 0;
    const out = [...args];
    let id = 0;
    if (opts.newObject) {
      id = this.proto.objects.allocate({
        interface: opts.newObject.interface,
        version: opts.newObject.version,
      });
      out[opts.newObject.index] = id;
      this.track(id);
    }
    this.rawBytes(encodeMessage(objectId, opcode, out), opts.fds ?? []);
    return id;
  }

  /** Puts arbitrary bytes on the wire as one frame, with this process's fds beside them. */
  rawBytes(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.closed) return;
    this.requests++;
    const handles = fds.map((fd) => (this.sys ? this.sys.exportFd(fd) : fd));
    this.proto.sendRaw(bytes, handles);
  }

  // ---- memory ----------------------------------------------------------------------

  /**
   * memfd_create + ftruncate in this client's process. `seal`: F_SEAL_* bits added after
   * sizing (MFD_ALLOW_SEALING is set whenever seals are asked for, or `allowSealing`).
   */
  createMemfd(
    size: number,
    opts: { name?: string; seal?: number; allowSealing?: boolean } = {},
  ): Memfd {
    const sys = this.process;
    const sealing = opts.allowSealing || (opts.seal ?? 0) !== 0;
    const fd = sys.memfdCreate(opts.name ?? "shmlab-pool", sealing ? MFD.MFD_ALLOW_SEALING : 0);
    if (size > 0) sys.ftruncate(fd, size);
    if (opts.seal) sys.addSeals(fd, opts.seal);
    return { fd, size };
  }

  /** mmap(MAP_SHARED, read/write) of a whole memfd. */
  mapShared(m: Memfd, length = m.size): number {
    return this.process.mmap(
      0,
      Math.max(length, PAGE_SIZE),
      PROT.PROT_READ | PROT.PROT_WRITE,
      MAP.MAP_SHARED,
      m.fd,
      0,
    );
  }

  /**
   * Draws pattern frame `frame` of (seed, index) into the buffer's place in a mapping at
   * `base` (the pool's mapping address), row by row, as user stores.
   */
  drawPattern(base: number, b: BufferRef, seed: number, index: number, frame: number): void {
    const sys = this.process;
    const widthPx = b.width;
    const strideBytes = b.stride;
    // The tile is shared with the lab's check of this frame (patternTile): read it only.
    const px = patternTile(seed, index, frame, widthPx, b.height);
    if (strideBytes === widthPx * 4) {
      sys.store(base + b.offset, new Uint8Array(px.buffer, px.byteOffset, px.byteLength));
    } else {
      const bytes = new Uint8Array(px.buffer, px.byteOffset, px.byteLength);
      for (let y = 0; y < b.height; y++)
        sys.store(
          base + b.offset + y * strideBytes,
          bytes.subarray(y * widthPx * 4, (y + 1) * widthPx * 4),
        );
    }
    b.frame = frame;
    b.inset = undefined;
  }

  /**
   * Draws pattern frame `frame` into rectangle `r` of `b` only (clipped to the buffer): the
   * rest keeps what drawPattern drew. `b.inset` records it, so the commit says which pixels
   * hold which frame.
   */
  drawPatternRect(
    base: number,
    b: BufferRef,
    seed: number,
    index: number,
    frame: number,
    r: { x: number; y: number; width: number; height: number },
  ): void {
    const x0 = Math.max(0, r.x);
    const y0 = Math.max(0, r.y);
    const x1 = Math.min(b.width, r.x + r.width);
    const y1 = Math.min(b.height, r.y + r.height);
    if (x1 <= x0 || y1 <= y0) return;
    const row = new Uint32Array(x1 - x0);
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) row[x - x0] = pixelAt(seed, index, frame, x, y);
      this.process.store(base + b.offset + y * b.stride + x0 * 4, new Uint8Array(row.buffer));
    }
    b.inset = { x: x0, y: y0, width: x1 - x0, height: y1 - y0, frame };
  }

  // ---- the syscall channel (remote clients) ----------------------------------------

  /** A syscall made in this client's server-side process (WebSocket clients). */
  remoteSyscall(name: SyscallName, args: readonly SyscallArg[]): Pending<SyscallValue> {
    return this.pending(`${name}()`, this.proto.syscall(name, args));
  }

  /** memfd_create + ftruncate (+ seals) through the syscall channel. */
  remoteMemfd(size: number, opts: { name?: string; seal?: number } = {}): Pending<Memfd> {
    const run = async (): Promise<Memfd> => {
      const flags = opts.seal ? MFD.MFD_ALLOW_SEALING : 0;
      const fd = (await this.proto.syscall("memfd_create", [
        opts.name ?? "shmlab-pool",
        flags,
      ])) as number;
      if (size > 0) await this.proto.syscall("ftruncate", [fd, size]);
      if (opts.seal) await this.proto.syscall("fcntl", [fd, 1033, opts.seal]);
      return { fd, size };
    };
    return this.pending("remote memfd", run());
  }

  /** Writes a pattern frame into a remote memfd with pwrite (no shared memory there). */
  remoteDraw(
    m: Memfd,
    b: BufferRef,
    seed: number,
    index: number,
    frame: number,
  ): Pending<SyscallValue> {
    const px = renderFrame(
      seed,
      index,
      frame,
      b.width,
      b.height,
      new Uint32Array((b.stride / 4) * b.height),
      b.stride / 4,
    );
    b.frame = frame;
    return this.remoteSyscall("pwrite", [m.fd, new Uint8Array(px.buffer), b.offset]);
  }

  private pending<T>(what: string, promise: Promise<T>): Pending<T> {
    const p: Pending<T> = {
      done: false,
      value: undefined,
      error: undefined,
      wait: until(what, () => p.done),
      promise,
    };
    promise.then(
      (v) => {
        p.done = true;
        p.value = v;
        this.poke();
      },
      (e: Error) => {
        p.done = true;
        p.error = e;
        this.poke();
      },
    );
    return p;
  }
}

export { SEAL };
