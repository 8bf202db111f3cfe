/**
 * The server end of the protocol: what libwayland-server does for a compositor. It owns
 * each client's object map, decodes and validates every frame, implements wl_display
 * (sync, get_registry, delete_id, error) and wl_registry (globals, bind) itself, and calls
 * the compositor's typed handlers for everything else.
 *
 * Containment is the point. Whatever a client sends, the outcome is at most one
 * wl_display.error to that client and the end of its connection: no exception leaves
 * `receive`, no other client's state is touched (each client has its own map, limits and
 * queue; the codec's only shared state is scratch space reset on every synchronous call),
 * and nothing loops on attacker-chosen counts. One exception propagates: the death of the
 * server's own process (isProcessDeath), which is the compositor's outcome, not the client's.
 */
import { performance } from "node:perf_hooks";
import {
  type CodecLimits,
  DEFAULT_LIMITS,
  decodeFrame,
  encodeControl,
  encodeMessage,
  type Frame,
  type WireValue,
} from "./codec.ts";
import { clampMessage, isProtocolError, PROTO_ERR, ProtocolError, protoError } from "./errors.ts";
import { ObjectMap } from "./object-map.ts";
import {
  DISPLAY_ERROR,
  DISPLAY_ID,
  getInterface,
  type InterfaceSpec,
  type MessageSpec,
  type Schema,
} from "./schema.ts";
import {
  isKnownSyscall,
  parseSyscallRequest,
  replyItems,
  type SyscallGateway,
  type SyscallReturn,
} from "./syscalls.ts";
import {
  type ConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
  type FdBridge,
  IDENTITY_FDS,
  type Transport,
} from "./transport.ts";
import type { RequestArgs } from "./types.ts";
import { checkOutgoing, type ValidatedMessage, validateMessage } from "./validate.ts";
import {
  type FileInspector,
  getVariant,
  makeRefuse,
  type ProtocolVariant,
  type ResolvedVariant,
  resolveVariant,
  STANDARD,
  type VariantContext,
} from "./variant.ts";

export interface Resource {
  readonly id: number;
  readonly interface: string;
  readonly version: number;
  readonly client: ServerClient;
  /** The compositor's state for this object. */
  data: unknown;
  /** Called when the object is destroyed (by request, by the server, or at disconnect). */
  onDestroy?: (r: Resource) => void;
}

/**
 * A request handler: the target resource and the validated arguments in schema order
 * (numbers for int/uint/fixed/enum/object ids/new ids, the server's fd for fd, strings).
 * New objects named by new_id arguments already exist when the handler runs; it fills in
 * their `data`. Throwing a ProtocolError (see errors.ts interfaceError) posts it; throwing
 * anything else is wl_display.implementation.
 */
export type RequestHandler = (
  resource: Resource,
  args: readonly unknown[],
  msg: ValidatedMessage<Resource>,
) => void;

export type InterfaceImpl = Readonly<Record<string, RequestHandler>>;

/** Handlers of a base-schema interface with each request's argument tuple typed. */
export type TypedImpl<I extends keyof RequestArgs> = {
  readonly [R in keyof RequestArgs[I]]?: (
    resource: Resource,
    args: Readonly<RequestArgs[I][R]>,
    msg: ValidatedMessage<Resource>,
  ) => void;
};

export interface Global {
  readonly name: number;
  readonly interface: string;
  readonly version: number;
  /** Runs after the bound resource exists, to fill in its data. */
  readonly bind?: (resource: Resource) => void;
}

export interface ServerOptions {
  variant?: ProtocolVariant | string;
  codec?: Partial<CodecLimits>;
  limits?: Partial<ConnectionLimits>;
  /** Size and seals of fds the server received, for variant hooks. */
  files?: FileInspector;
  /** Milliseconds clock for rate limits; injectable for seeded runs. */
  now?: () => number;
  /** Told of every client ended by an error, for counting and reports. */
  onClientError?: (client: ServerClient, err: ProtocolError) => void;
  /** Told of handler failures that are the server's own bugs (not the client's fault). */
  onInternalError?: (client: ServerClient, err: unknown) => void;
  /**
   * Told of every request as it is dispatched (after validation, before any handler) and
   * every event as it is sent, where libwayland's server prints them for WAYLAND_DEBUG
   * (wl_closure_print in wayland-server.c). For traces (wayland-debug.ts).
   */
  onMessage?: (m: TracedMessage) => void;
}

/** A message the server dispatched or sent, for WAYLAND_DEBUG-style traces. */
export interface TracedMessage {
  readonly client: ServerClient;
  /** "request": received from the client; "event": sent to it (libwayland's " -> "). */
  readonly direction: "request" | "event";
  readonly objectId: number;
  readonly interface: string;
  readonly spec: MessageSpec;
  /** In schema order: ids for object/new_id (0 = null), the server's fd for fd. */
  readonly args: readonly unknown[];
}

export interface ConnectOptions {
  fds?: FdBridge;
  /** The kernel seen from this client's process; required for the syscall channel. */
  syscalls?: SyscallGateway;
  label?: string;
}

const NO_FILES: FileInspector = { inspect: () => null };

/**
 * The server's own process was killed inside a handler (shm's ProcessKilled, matched by its
 * stable code so protocol/ needs no kernel import): the compositor is dead, which is not a
 * wl_display.implementation error of the client being served. It propagates to whoever
 * delivered the frame.
 */
export function isProcessDeath(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === "SHM_ERR_KILLED";
}

export class ProtocolServer {
  readonly variant: ResolvedVariant;
  readonly schema: Schema;
  readonly codecLimits: CodecLimits;
  readonly limits: ConnectionLimits;
  readonly files: FileInspector;
  readonly now: () => number;
  readonly clients = new Set<ServerClient>();
  private readonly globals = new Map<number, Global>();
  private nextGlobalName = 1;
  private nextClientId = 1;
  private readonly impls = new Map<string, InterfaceImpl>();
  private serial = 0;
  readonly opts: ServerOptions;

  constructor(opts: ServerOptions = {}) {
    this.opts = opts;
    const v =
      typeof opts.variant === "string" ? getVariant(opts.variant) : (opts.variant ?? STANDARD);
    this.variant = resolveVariant(v);
    this.schema = this.variant.schema;
    this.codecLimits = { ...DEFAULT_LIMITS, ...opts.codec };
    this.limits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.limits };
    this.files = opts.files ?? NO_FILES;
    this.now = opts.now ?? (() => performance.now());
  }

  nextSerial(): number {
    this.serial = (this.serial + 1) >>> 0;
    return this.serial;
  }

  /** Registers the compositor's handlers for an interface's requests. */
  implement<I extends keyof RequestArgs>(iface: I, impl: TypedImpl<I>): void;
  implement(iface: string, impl: InterfaceImpl): void;
  implement(iface: string, typed: object): void {
    const impl = typed as InterfaceImpl;
    const spec = getInterface(this.schema, iface);
    if (!spec) throw new Error(`no interface ${iface} in the schema`);
    for (const name of Object.keys(impl))
      if (!spec.requests.some((r) => r.name === name))
        throw new Error(`${iface} has no request ${name}`);
    this.impls.set(iface, impl);
  }

  /** Advertises a global to every registry, present and future. Returns its name. */
  addGlobal(iface: string, version: number, bind?: (resource: Resource) => void): number {
    const spec = getInterface(this.schema, iface);
    if (!spec) throw new Error(`no interface ${iface} in the schema`);
    if (version < 1 || version > spec.version)
      throw new Error(`${iface} has no version ${version}`);
    const g: Global = { name: this.nextGlobalName++, interface: iface, version, bind };
    this.globals.set(g.name, g);
    for (const c of this.clients) c.announceGlobal(g);
    return g.name;
  }

  /**
   * implement() and addGlobal() for only the interfaces the schema defines: a compositor
   * written for the whole base protocol serves a schema with interfaces removed (from the
   * XML) by skipping them, rather than failing.
   */
  definedOnly(): Pick<ProtocolServer, "implement"> & {
    addGlobal(iface: string, version: number | undefined, bind?: (r: Resource) => void): void;
  } {
    const has = (iface: string) => getInterface(this.schema, iface) !== undefined;
    return {
      implement: ((iface: string, impl: InterfaceImpl) => {
        if (has(iface)) this.implement(iface, impl);
      }) as ProtocolServer["implement"],
      addGlobal: (iface, version, bind) => {
        if (has(iface) && version !== undefined) this.addGlobal(iface, version, bind);
      },
    };
  }

  removeGlobal(name: number): void {
    if (!this.globals.delete(name)) return;
    for (const c of this.clients) c.announceGlobalRemove(name);
  }

  getGlobals(): Global[] {
    return [...this.globals.values()];
  }

  global(name: number): Global | undefined {
    return this.globals.get(name);
  }

  impl(iface: string): InterfaceImpl | undefined {
    return this.impls.get(iface);
  }

  /** Starts serving a client on `transport`. */
  connect(transport: Transport, opts: ConnectOptions = {}): ServerClient {
    const c = new ServerClient(this, this.nextClientId++, transport, opts);
    this.clients.add(c);
    return c;
  }

  /** Called by ServerClient when it ends. */
  forget(c: ServerClient): void {
    this.clients.delete(c);
  }
}

export class ServerClient {
  readonly id: number;
  readonly server: ProtocolServer;
  readonly transport: Transport;
  readonly objects = new ObjectMap<Resource>("server");
  readonly label: string;
  /** The error that ended this client, if one did. */
  error: ProtocolError | null = null;
  closed = false;
  readonly stats = { messages: 0, bytesIn: 0, bytesOut: 0, syscalls: 0 };
  private readonly fds: FdBridge;
  private readonly syscalls?: SyscallGateway;
  private readonly registries = new Set<number>();
  private readonly variantState = new Map<number, Record<string, unknown>>();
  private readonly closeListeners: (() => void)[] = [];
  private windowStart: number;
  private windowCount = 0;
  /** Frames held while an asynchronous syscall is answered, to keep request order. */
  private pending: [Uint8Array, number[]][] | null = null;
  /**
   * A message arrived cut short: on a stream socket it is a message still arriving, and
   * nothing after it is dispatched (stalledOn says what). Fds that arrive meanwhile are
   * held, as libwayland's wl_connection holds them, until the client goes.
   */
  private stalledOn: string | null = null;
  private readonly heldFds: number[] = [];

  constructor(server: ProtocolServer, id: number, transport: Transport, opts: ConnectOptions) {
    this.server = server;
    this.id = id;
    this.transport = transport;
    this.fds = opts.fds ?? IDENTITY_FDS;
    this.syscalls = opts.syscalls;
    this.label = opts.label ?? `client#${id}`;
    this.windowStart = server.now();
    // wayland-server.c bind_display: the display is object 1 of every client.
    this.objects.insertAt(DISPLAY_ID, this.makeResource(DISPLAY_ID, "wl_display", 1));
    transport.onMessage((bytes, fds) => this.receive(bytes, fds));
    transport.onViolation((err) => this.fail(err, []));
    transport.onClose(() => this.teardown());
  }

  private makeResource(id: number, iface: string, version: number): Resource {
    return { id, interface: iface, version, client: this, data: undefined };
  }

  resource(id: number): Resource | undefined {
    return this.objects.lookup(id);
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closeListeners.push(fn);
  }

  /**
   * Handles one frame from the transport. Never throws: every failure becomes the client's
   * wl_display.error and disconnect — except the death of the server's own process
   * (isProcessDeath), which is not the client's doing and propagates to the caller.
   */
  receive(bytes: Uint8Array, handles: readonly number[]): void {
    if (this.closed) {
      this.dropHandles(handles, 0);
      return;
    }
    if (this.pending) {
      if (this.pending.length >= this.server.limits.maxPendingFrames) {
        this.fail(protoError(PROTO_ERR.QUEUE_LIMIT, "too many frames queued behind a syscall"), []);
        return;
      }
      this.pending.push([bytes, [...handles]]);
      return;
    }
    const fds: number[] = [];
    try {
      // Received fds belong to this process from recvmsg on, refused message or not; one
      // at a time, so that a bad handle leaves the ones before it to be closed, not leaked.
      for (let i = 0; i < handles.length; i++) {
        try {
          fds.push(this.fds.incoming(handles[i]));
        } catch (e) {
          // The failed handle too: a full fd table leaves its file in flight.
          this.dropHandles(handles, i);
          throw e;
        }
      }
      this.rateCheck();
      this.stats.bytesIn += bytes.length;
      if (this.stalledOn !== null) {
        this.heldFds.push(...fds.splice(0));
        return;
      }
      let frame: Frame;
      try {
        frame = decodeFrame(bytes, this.server.codecLimits);
      } catch (e) {
        if (!this.cutShort(e, bytes)) throw e;
        this.stalledOn = (e as Error).message;
        this.heldFds.push(...fds.splice(0));
        return;
      }
      if (frame.kind === "control") {
        if (fds.length > 0) throw protoError(PROTO_ERR.BAD_FD, "fds attached to a syscall frame");
        this.syscall(frame.items);
        return;
      }
      this.stats.messages++;
      const msg = validateMessage(
        this.server.schema,
        this.objects,
        frame,
        fds,
        this.server.codecLimits,
      );
      this.dispatch(msg);
    } catch (e) {
      if (isProcessDeath(e)) throw e;
      this.fail(e, fds);
    }
  }

  /**
   * A frame cut inside a value is a message whose rest has not come yet. libwayland reads
   * a stream: wl_client_connection_data takes a message only once `size` bytes are in
   * ("if (len < size) break;") and waits for more, so a cut message is no error at all, and
   * the bytes that follow are read as its tail (real/wire-transport.ts sends such a frame
   * as the same message, cut). The model has no byte stream to take that tail from: the
   * connection dispatches nothing more, which is what the real compositor shows until the
   * client has sent the garbled size's worth of bytes (docs/real-compositors.md).
   * An empty frame is not a cut message (there is nothing of a message to wait on).
   */
  private cutShort(e: unknown, bytes: Uint8Array): boolean {
    return isProtocolError(e) && e.code === PROTO_ERR.TRUNCATED && bytes.length > 0;
  }

  private dropHandles(handles: readonly number[], from: number): void {
    for (let i = from; i < handles.length; i++) {
      try {
        this.fds.drop?.(handles[i]);
      } catch (e) {
        this.contain(e);
      }
    }
  }

  private rateCheck(): void {
    const now = this.server.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.windowCount = 0;
    }
    if (++this.windowCount > this.server.limits.maxMessagesPerSecond)
      throw protoError(
        PROTO_ERR.RATE_LIMIT,
        `more than ${this.server.limits.maxMessagesPerSecond} messages in one second`,
      );
  }

  private syscall(items: WireValue[]): void {
    if (!this.syscalls)
      throw protoError(
        PROTO_ERR.NO_SYSCALLS,
        "invalid object 0: no syscall channel on this connection",
      );
    const req = parseSyscallRequest(items);
    this.stats.syscalls++;
    if (!isKnownSyscall(req.name)) {
      this.sendControl(replyItems(req.seq, { errno: "ENOSYS" }));
      return;
    }
    const r = this.syscalls.call(req.name, req.args);
    if (r instanceof Promise) {
      this.pending = [];
      r.then(
        (v) => this.finishSyscall(req.seq, v),
        (e) => this.finishSyscall(req.seq, null, e),
      );
      return;
    }
    this.sendControl(replyItems(req.seq, r));
  }

  private finishSyscall(seq: number, r: SyscallReturn | null, err?: unknown): void {
    const queued = this.pending ?? [];
    this.pending = null;
    if (this.closed) {
      for (const [, h] of queued) this.dropHandles(h, 0);
      return;
    }
    if (r === null) {
      this.server.opts.onInternalError?.(this, err);
      this.fail(protoError(PROTO_ERR.IMPLEMENTATION, "syscall failed inside the kernel"), []);
      return;
    }
    this.sendControl(replyItems(seq, r));
    for (let i = 0; i < queued.length; i++) {
      const [b, f] = queued[i];
      this.receive(b, f);
      const now = this.pending as [Uint8Array, number[]][] | null;
      if (now) {
        // Another asynchronous syscall: the rest waits behind it.
        now.unshift(...queued.slice(i + 1));
        return;
      }
      if (this.closed) return;
    }
  }

  private dispatch(msg: ValidatedMessage<Resource>): void {
    const news = msg.newObjects;
    if (news.length > 0 && this.objects.size + news.length > this.server.limits.maxObjects)
      throw protoError(
        PROTO_ERR.OBJECT_LIMIT,
        `more than ${this.server.limits.maxObjects} objects`,
      );
    const ifaceName = msg.iface.name;
    this.traceMessage("request", msg.objectId, ifaceName, msg.spec, msg.args);
    const hook = this.server.variant.hooks[`${ifaceName}.${msg.spec.name}`];
    if (hook) hook(this.variantContext(msg));
    const res = msg.sender;
    if (ifaceName === "wl_display") {
      this.displayRequest(msg);
    } else if (ifaceName === "wl_registry") {
      this.registryBind(msg);
    } else {
      for (const n of news)
        this.objects.insertPeer(n.id, this.makeResource(n.id, n.interface, n.version));
      const h = this.server.impl(ifaceName)?.[msg.spec.name];
      if (h) {
        try {
          h(res, msg.args, msg);
        } catch (e) {
          if (isProtocolError(e) || isProcessDeath(e)) throw e;
          this.server.opts.onInternalError?.(this, e);
          throw protoError(
            PROTO_ERR.IMPLEMENTATION,
            `${ifaceName}.${msg.spec.name} failed: ${(e as Error)?.message ?? String(e)}`,
          );
        }
      }
    }
    // type="destructor": the object is gone after its destructor request, whether or not
    // a handler destroyed it already.
    if (msg.spec.destructor && !this.closed && this.objects.lookup(res.id) === res)
      this.destroyResource(res.id);
  }

  private variantContext(msg: ValidatedMessage<Resource>): VariantContext {
    return {
      clientId: this.id,
      objectId: msg.objectId,
      version: msg.sender.version,
      interface: msg.iface.name,
      request: msg.spec.name,
      args: msg.args,
      newIds: msg.newObjects.map((n) => n.id),
      files: this.server.files,
      state: (id) => {
        let s = this.variantState.get(id);
        if (!s) this.variantState.set(id, (s = {}));
        return s;
      },
      refuse: makeRefuse(this.server.schema, msg.iface.name, msg.objectId),
    };
  }

  private displayRequest(msg: ValidatedMessage<Resource>): void {
    const n = msg.newObjects[0];
    if (msg.spec.name === "sync") {
      // wayland-server.c display_sync: create the callback, send done with the display's
      // serial, destroy it (which queues delete_id).
      this.objects.insertPeer(n.id, this.makeResource(n.id, "wl_callback", 1));
      this.postEvent(n.id, "done", [this.server.nextSerial()]);
    } else {
      this.objects.insertPeer(n.id, this.makeResource(n.id, "wl_registry", 1));
      this.registries.add(n.id);
      for (const g of this.server.getGlobals())
        this.postEvent(n.id, "global", [g.name, g.interface, g.version]);
    }
  }

  private registryBind(msg: ValidatedMessage<Resource>): void {
    const [name, iface, version, id] = msg.args as [number, string, number, number];
    const g = this.server.global(name);
    const fail = (text: string) =>
      new ProtocolError(PROTO_ERR.UNKNOWN_OBJECT, text, {
        objectId: msg.objectId,
        wlCode: DISPLAY_ERROR.invalid_object,
      });
    // wayland-server.c registry_bind: the three checks and their codes, in its order.
    if (!g) throw fail(`invalid global ${iface} (${name})`);
    if (g.interface !== iface)
      throw fail(`invalid interface for global ${name}: have ${iface}, wanted ${g.interface}`);
    if (version === 0)
      throw fail(`invalid version for global ${iface} (${name}): 0 is not a valid version`);
    if (g.version < version)
      throw fail(
        `invalid version for global ${iface} (${name}): have ${g.version}, wanted ${version}`,
      );
    const r = this.makeResource(id, iface, version);
    this.objects.insertPeer(id, r);
    if (g.bind) {
      try {
        g.bind(r);
      } catch (e) {
        if (isProtocolError(e) || isProcessDeath(e)) throw e;
        this.server.opts.onInternalError?.(this, e);
        throw protoError(PROTO_ERR.IMPLEMENTATION, `bind of ${iface} failed`);
      }
    }
  }

  announceGlobal(g: Global): void {
    for (const r of this.registries) this.postEvent(r, "global", [g.name, g.interface, g.version]);
  }

  announceGlobalRemove(name: number): void {
    for (const r of this.registries) this.postEvent(r, "global_remove", [name]);
  }

  /**
   * Sends an event. The arguments are checked against the schema first: a compositor bug
   * must not put a malformed event on the wire (libwayland's wl_closure_marshal refuses
   * too). fd arguments are the server's fds; they travel through the FdBridge.
   */
  postEvent(objectId: number, event: string | number, args: readonly unknown[] = []): void {
    if (this.closed) return;
    const r = this.objects.lookup(objectId);
    if (!r) throw new Error(`postEvent on dead object ${objectId}`);
    const iface = getInterface(this.server.schema, r.interface) as InterfaceSpec;
    const opcode =
      typeof event === "number" ? event : iface.events.findIndex((e) => e.name === event);
    const spec: MessageSpec | undefined = iface.events[opcode];
    if (!spec) throw new Error(`${r.interface} has no event ${event}`);
    if ((spec.since ?? 1) > r.version)
      throw new Error(`${r.interface}.${spec.name} needs version ${spec.since}`);
    const { wire, fds } = checkOutgoing(this.server.schema, spec, args, (fd) =>
      this.fds.outgoing(fd),
    );
    this.traceMessage("event", objectId, r.interface, spec, args);
    this.write(encodeMessage(objectId, opcode, wire), fds);
    if (spec.destructor) this.destroyResource(objectId);
  }

  private traceMessage(
    direction: TracedMessage["direction"],
    objectId: number,
    iface: string,
    spec: MessageSpec,
    args: readonly unknown[],
  ): void {
    const sink = this.server.opts.onMessage;
    if (!sink) return;
    try {
      sink({ client: this, direction, objectId, interface: iface, spec, args });
    } catch (e) {
      // A tracer's bug is the server's, never the client's: reported, and the message goes
      // on. With no one to report it to, it is not hidden.
      const report = this.server.opts.onInternalError;
      if (isProcessDeath(e) || !report) throw e;
      report(this, e);
    }
  }

  private sendControl(items: unknown[]): void {
    this.write(encodeControl(items), []);
  }

  private write(bytes: Uint8Array, fds: readonly number[]): void {
    if (this.closed) return;
    // Checked before the bytes are handed over, so no reply is ever buffered past the limit.
    if (
      this.transport.bufferedBytes + bytes.length > this.server.limits.maxQueuedBytes &&
      !this.error
    ) {
      // wl_connection_flush failing with a full buffer: the client is not reading. There is
      // no room left to tell it, so it is closed without an error event.
      this.error = protoError(
        PROTO_ERR.QUEUE_LIMIT,
        `more than ${this.server.limits.maxQueuedBytes} bytes unread`,
      );
      this.server.opts.onClientError?.(this, this.error);
      this.close("queue limit");
      return;
    }
    this.stats.bytesOut += bytes.length;
    this.transport.send(bytes, fds);
  }

  /**
   * Destroys an object. For a client-created id the client is told with delete_id
   * (wayland-server.c wl_resource_destroy) and may reuse the id afterwards.
   */
  destroyResource(id: number): void {
    const r = this.objects.lookup(id);
    if (!r || id === DISPLAY_ID) return;
    this.objects.destroy(id);
    this.variantState.delete(id);
    this.registries.delete(id);
    if (id < 0xff000000) this.postEvent(DISPLAY_ID, "delete_id", [id]);
    r.onDestroy?.(r);
  }

  /**
   * Posts wl_display.error and disconnects (wl_resource_post_error then the
   * "error in client communication" destroy in wl_client_connection_data).
   */
  postError(objectId: number, code: number, message: string): void {
    this.fail(new ProtocolError(PROTO_ERR.INTERFACE, message, { objectId, wlCode: code }), []);
  }

  private fail(e: unknown, fds: readonly number[]): void {
    for (const fd of fds) {
      try {
        this.fds.discard(fd);
      } catch (e) {
        // Closing a refused fd is best effort (the bridge already ignores EBADF); what else
        // fails is reported, not hidden.
        this.contain(e);
      }
    }
    if (this.closed || this.error) return;
    const err = isProtocolError(e)
      ? e
      : protoError(
          PROTO_ERR.IMPLEMENTATION,
          `internal error: ${(e as Error)?.message ?? String(e)}`,
        );
    if (!isProtocolError(e)) this.server.opts.onInternalError?.(this, e);
    this.error = err;
    // The error names an object that may be dead or never existed (an unknown sender); the
    // event goes out on the display, naming the id as a number, as libwayland does.
    const display = getInterface(this.server.schema, "wl_display");
    if (display)
      this.traceMessage("event", DISPLAY_ID, "wl_display", display.events[0], [
        err.objectId >>> 0,
        err.wlCode >>> 0,
        clampMessage(err.message),
      ]);
    try {
      this.transport.send(
        encodeMessage(DISPLAY_ID, 0, [
          err.objectId >>> 0,
          err.wlCode >>> 0,
          clampMessage(err.message),
        ]),
        [],
      );
    } catch (e) {
      // A transport that cannot send is going; the client is closed below either way.
      this.contain(e);
    }
    try {
      this.server.opts.onClientError?.(this, err);
    } catch (e) {
      // An observer must not break containment, nor be silenced.
      this.contain(e);
    }
    this.close("protocol error");
  }

  close(reason = "closed"): void {
    if (this.closed) return;
    let failed: { e: unknown } | undefined;
    try {
      this.transport.close(reason);
    } catch (e) {
      failed = { e };
    }
    this.teardown(); // closed on this side whatever the transport did
    if (failed) this.contain(failed.e);
  }

  /**
   * A failure on the way out of a client (closing, telling it, releasing its fds): the
   * server's own process death propagates (isProcessDeath); anything else is reported to
   * onInternalError instead of being swallowed, and the client is still closed.
   */
  private contain(e: unknown): void {
    if (isProcessDeath(e)) throw e;
    this.server.opts.onInternalError?.(this, e);
  }

  private teardown(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.forget(this);
    for (const fd of this.heldFds.splice(0)) {
      try {
        this.fds.discard(fd);
      } catch (e) {
        this.contain(e);
      }
    }
    // Destroy in id order, as wl_client_destroy does, without delete_id (no one to tell).
    for (const [id, r] of [...this.objects.entries()]) {
      if (id === DISPLAY_ID) continue;
      this.objects.destroy(id);
      try {
        r.onDestroy?.(r);
      } catch (e) {
        this.server.opts.onInternalError?.(this, e);
      }
    }
    try {
      this.syscalls?.close?.();
    } catch (e) {
      this.server.opts.onInternalError?.(this, e);
    }
    for (const fn of this.closeListeners.splice(0)) {
      try {
        fn();
      } catch (e) {
        this.server.opts.onInternalError?.(this, e);
      }
    }
  }
}
