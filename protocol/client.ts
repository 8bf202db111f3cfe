/**
 * The client end of the protocol: what libwayland-client does for an application. It
 * allocates object ids by the rules of object-map.ts, marshals requests (checking them
 * against the schema so the client library cannot send what it did not mean to), validates
 * and dispatches events, frees ids on wl_display.delete_id, and carries the syscall
 * channel for remote clients.
 *
 * It does not hide the protocol: hostile behaviours in client/ need to send requests an
 * honest client would not, and `sendRaw` lets them put any bytes on the wire.
 */
import {
  type CodecLimits,
  DEFAULT_LIMITS,
  decodeFrame,
  encodeControl,
  encodeMessage,
  type Frame,
} from "./codec.ts";
import { isProtocolError, PROTO_ERR, type ProtocolError, protoError } from "./errors.ts";
import { ObjectMap } from "./object-map.ts";
import { BASE_SCHEMA, DISPLAY_ID, getInterface, type MessageSpec, type Schema } from "./schema.ts";
import {
  MAX_SYSCALL_IO,
  parseSyscallReply,
  type SyscallArg,
  SyscallError,
  type SyscallName,
  type SyscallValue,
} from "./syscalls.ts";
import { type FdBridge, IDENTITY_FDS, type Transport } from "./transport.ts";
import { checkOutgoing, validateMessage } from "./validate.ts";

/** Placeholder for a new_id argument: the client allocates the id. */
export const NEW_ID: unique symbol = Symbol("new_id");

export type EventHandler = (event: string, args: readonly unknown[]) => void;

export interface ClientObject {
  readonly interface: string;
  readonly version: number;
  handler?: EventHandler;
}

/** How a connection ended, as the client saw it. */
export interface ClientError {
  /** True when the server sent wl_display.error; false when the client refused the server. */
  fromServer: boolean;
  objectId: number;
  code: number;
  message: string;
  /** The stable code, when the client itself detected the violation. */
  protoCode?: string;
}

export interface ClientOptions {
  schema?: Schema;
  fds?: FdBridge;
  codec?: Partial<CodecLimits>;
}

export class ProtocolClient {
  readonly transport: Transport;
  readonly schema: Schema;
  readonly objects = new ObjectMap<ClientObject>("client");
  readonly codecLimits: CodecLimits;
  /** Set once the connection ended with an error from either side. */
  error: ClientError | null = null;
  closed = false;
  private readonly fds: FdBridge;
  private nextSeq = 1;
  private readonly calls = new Map<
    number,
    { name: string; resolve: (v: SyscallValue | null) => void; reject: (e: Error) => void }
  >();
  private readonly errorListeners: ((e: ClientError) => void)[] = [];
  private readonly closeListeners: (() => void)[] = [];

  constructor(transport: Transport, opts: ClientOptions = {}) {
    this.transport = transport;
    this.schema = opts.schema ?? BASE_SCHEMA;
    this.fds = opts.fds ?? IDENTITY_FDS;
    this.codecLimits = { ...DEFAULT_LIMITS, ...opts.codec };
    this.objects.insertAt(DISPLAY_ID, { interface: "wl_display", version: 1 });
    transport.onMessage((b, f) => this.receive(b, f));
    transport.onViolation((e) => this.localError(e));
    transport.onClose(() => this.ended());
  }

  onError(fn: (e: ClientError) => void): void {
    this.errorListeners.push(fn);
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closeListeners.push(fn);
  }

  /** Sets the event handler of an object. */
  listen(id: number, handler: EventHandler): void {
    const o = this.objects.lookup(id);
    if (!o) throw new Error(`no live object ${id}`);
    o.handler = handler;
  }

  /**
   * Sends a request. `NEW_ID` in a new_id position allocates the next id (its interface from
   * the schema, or from the arguments before it for wl_registry.bind); fd arguments are
   * this process's fds. Returns the new id, or 0 if the request creates none. A destructor
   * request leaves the id a zombie until the server's delete_id.
   */
  request(objectId: number, name: string, args: readonly unknown[] = []): number {
    if (this.closed) throw new Error("connection closed");
    const o = this.objects.lookup(objectId);
    if (!o) throw new Error(`no live object ${objectId}`);
    const iface = getInterface(this.schema, o.interface)!;
    const opcode = iface.requests.findIndex((r) => r.name === name);
    const spec: MessageSpec | undefined = iface.requests[opcode];
    if (!spec) throw new Error(`${o.interface} has no request ${name}`);
    if ((spec.since ?? 1) > o.version)
      throw new Error(`${o.interface}.${name} needs version ${spec.since}`);
    const filled = [...args];
    let created = 0;
    for (let i = 0; i < spec.args.length; i++) {
      if (spec.args[i].type !== "new_id" || filled[i] !== NEW_ID) continue;
      const ifaceName = spec.args[i].interface ?? (filled[i - 2] as string);
      const version = spec.args[i].interface ? o.version : (filled[i - 1] as number);
      created = this.objects.allocate({ interface: ifaceName, version });
      filled[i] = created;
    }
    const { wire, fds } = checkOutgoing(this.schema, spec, filled, (fd) => this.fds.outgoing(fd));
    this.transport.send(encodeMessage(objectId, opcode, wire), fds);
    if (spec.destructor) this.objects.destroy(objectId);
    return created;
  }

  /** Puts arbitrary frame bytes on the wire (hostile behaviours, fuzzing). */
  sendRaw(bytes: Uint8Array, fds: readonly number[] = []): void {
    this.transport.send(bytes, fds);
  }

  /** wl_display.sync: resolves when the server has handled everything sent before it. */
  roundtrip(): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error("connection closed"));
        return;
      }
      const onEnd = () =>
        reject(
          new Error(this.error ? `connection ended: ${this.error.message}` : "connection closed"),
        );
      const id = this.request(DISPLAY_ID, "sync", [NEW_ID]);
      this.listen(id, (_e, args) => {
        // a long session makes many roundtrips: each must not leave a close listener behind
        const i = this.closeListeners.indexOf(onEnd);
        if (i >= 0) this.closeListeners.splice(i, 1);
        resolve(args[0] as number);
      });
      this.onClose(onEnd);
    });
  }

  /**
   * Makes a syscall in this client's process on the server (remote clients only). pwrite
   * and pread larger than one frame are split.
   */
  async syscall(name: SyscallName, args: readonly SyscallArg[]): Promise<SyscallValue> {
    if (name === "pwrite" && (args[1] as Uint8Array).length > MAX_SYSCALL_IO) {
      const [fd, data, off] = args as [number, Uint8Array, number];
      let done = 0;
      while (done < data.length) {
        const n = (await this.syscall("pwrite", [
          fd,
          data.subarray(done, done + MAX_SYSCALL_IO),
          off + done,
        ])) as number;
        if (n === 0) break;
        done += n;
      }
      return done;
    }
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error("connection closed"));
        return;
      }
      const seq = this.nextSeq;
      this.nextSeq = (this.nextSeq + 1) >>> 0 || 1;
      this.calls.set(seq, { name, resolve: resolve as (v: SyscallValue | null) => void, reject });
      this.transport.send(encodeControl([0, seq, name, args]), []);
    });
  }

  private receive(bytes: Uint8Array, handles: readonly number[]): void {
    if (this.closed) return;
    try {
      const frame: Frame = decodeFrame(bytes, this.codecLimits);
      if (frame.kind === "control") {
        const r = parseSyscallReply(frame.items);
        const call = this.calls.get(r.seq);
        if (!call) throw protoError(PROTO_ERR.BAD_FRAME, `reply to unknown syscall ${r.seq}`);
        this.calls.delete(r.seq);
        if (r.errno) call.reject(new SyscallError(call.name, r.errno));
        else call.resolve(r.value);
        return;
      }
      // libwayland-client discards events for objects it destroyed but whose delete_id has
      // not come yet; their fds are closed.
      if (this.objects.isZombie(frame.objectId)) {
        for (const h of handles) this.fds.discard(this.fds.incoming(h));
        return;
      }
      if (frame.objectId === DISPLAY_ID && frame.opcode === 0 && handles.length === 0) {
        // wl_display.error may name an object this client never knew (the server posts an
        // unknown sender's id); its object argument is read as a plain number.
        const [objectId, code, message] = frame.args;
        if (
          frame.args.length === 3 &&
          typeof objectId === "number" &&
          Number.isInteger(objectId) &&
          objectId >= 0 &&
          objectId <= 0xffffffff &&
          typeof code === "number" &&
          Number.isInteger(code) &&
          code >= 0 &&
          code <= 0xffffffff &&
          typeof message === "string"
        ) {
          this.displayEvent("error", frame.args);
          return;
        }
      }
      const fds = handles.map((h) => this.fds.incoming(h));
      const msg = validateMessage(this.schema, this.objects, frame, fds, this.codecLimits, "event");
      for (const n of msg.newObjects)
        this.objects.insertPeer(n.id, { interface: n.interface, version: n.version });
      if (msg.objectId === DISPLAY_ID) {
        this.displayEvent(msg.spec.name, msg.args);
        return;
      }
      msg.sender.handler?.(msg.spec.name, msg.args);
      if (msg.spec.destructor) this.objects.destroy(msg.objectId);
    } catch (e) {
      if (isProtocolError(e)) this.localError(e);
      else throw e;
    }
  }

  private displayEvent(name: string, args: readonly unknown[]): void {
    if (name === "delete_id") {
      this.objects.deleteId(args[0] as number);
      return;
    }
    const [objectId, code, message] = args as [number, number, string];
    this.error = { fromServer: true, objectId, code, message };
    for (const fn of this.errorListeners) fn(this.error);
    this.close();
  }

  private localError(e: ProtocolError): void {
    if (this.closed) return;
    this.error = {
      fromServer: false,
      objectId: e.objectId,
      code: e.wlCode,
      message: e.message,
      protoCode: e.code,
    };
    for (const fn of this.errorListeners) fn(this.error);
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.transport.close();
    this.ended();
  }

  private ended(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new Error(
      this.error ? `connection ended: ${this.error.message}` : "connection closed",
    );
    for (const c of this.calls.values()) c.reject(err);
    this.calls.clear();
    for (const fn of this.closeListeners.splice(0)) fn();
  }
}
