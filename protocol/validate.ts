/**
 * Checks a decoded message against the schema before anything acts on it, in the order
 * libwayland's server does (wl_client_connection_data, then wl_connection_demarshal, then
 * wl_closure_lookup_objects): the sender, the opcode, the opcode's version, then every
 * argument. The first failure is thrown as a ProtocolError; nothing is changed, so a
 * refused message has no effect at all (new ids are only inserted by the caller once the
 * whole message passed).
 */
import type { CodecLimits, MessageFrame, WireValue } from "./codec.ts";
import { PROTO_ERR, ProtocolError, protoError } from "./errors.ts";
import type { ObjectMap } from "./object-map.ts";
import {
  type ArgSpec,
  type EnumSpec,
  findEnum,
  getInterface,
  type InterfaceSpec,
  type MessageSpec,
  type Schema,
} from "./schema.ts";

/** What a map entry must tell the validator about an object. */
export interface ObjectInfo {
  readonly interface: string;
  readonly version: number;
}

export interface NewObject {
  /** Position of the new_id in the argument list. */
  readonly argIndex: number;
  readonly id: number;
  /** Interface the new object will have; for an untyped new_id, the string before it. */
  readonly interface: string;
  readonly version: number;
}

export interface ValidatedMessage<E extends ObjectInfo = ObjectInfo> {
  readonly objectId: number;
  readonly opcode: number;
  readonly sender: E;
  readonly iface: InterfaceSpec;
  readonly spec: MessageSpec;
  /**
   * Argument values in schema order: numbers for int/uint/fixed/enum/object/new_id, the
   * fd handle (from the transport's fd list) for fd, string or null for string.
   */
  readonly args: unknown[];
  readonly newObjects: readonly NewObject[];
}

export type Direction = "request" | "event";

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const UINT32_MAX = 0xffffffff;

interface EnumInfo {
  values: Set<number>;
  bitfield: boolean;
  all: number;
  spec: EnumSpec;
}

// Enum lookups are per schema object; variants make new schema objects, so a WeakMap keyed
// by schema keeps each run's tables apart without invalidation.
const enumCache = new WeakMap<Schema, Map<string, EnumInfo | null>>();

function enumInfo(schema: Schema, qualified: string): EnumInfo | null {
  let m = enumCache.get(schema);
  if (!m) enumCache.set(schema, (m = new Map()));
  let e = m.get(qualified);
  if (e === undefined) {
    const spec = findEnum(schema, qualified);
    e = spec
      ? {
          spec,
          values: new Set(spec.entries.map((x) => x.value)),
          bitfield: spec.bitfield === true,
          all: spec.entries.reduce((acc, x) => (acc | x.value) >>> 0, 0),
        }
      : null;
    m.set(qualified, e);
  }
  return e;
}

/** Names the message in error text; built only when an error is thrown. */
function whereOf(iface: InterfaceSpec, frame: MessageFrame, spec: MessageSpec): string {
  return `${iface.name}#${frame.objectId}.${spec.name}`;
}

function badArg(code: (typeof PROTO_ERR)[keyof typeof PROTO_ERR], where: string, why: string) {
  return protoError(code, `invalid arguments for ${where}: ${why}`);
}

function isIntIn(v: WireValue, lo: number, hi: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;
}

/** UTF-8 length of a JS string without allocating. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Validates `frame` sent on a connection whose objects are in `objects`. `fds` are the
 * handles the transport carried beside the frame; every one must be named by exactly one fd
 * argument (libwayland takes fds from the socket in argument order and "file descriptor
 * expected" is an error; an extra fd here has no argument to belong to, so it is refused
 * rather than leaked). The frame's argument array becomes the result's `args` (fd slots
 * rewritten to handles): the frame is not to be used again.
 */
export function validateMessage<E extends ObjectInfo>(
  schema: Schema,
  objects: ObjectMap<E>,
  frame: MessageFrame,
  fds: readonly number[],
  limits: CodecLimits,
  direction: Direction = "request",
): ValidatedMessage<E> {
  const sender = objects.lookup(frame.objectId);
  if (!sender)
    throw new ProtocolError(PROTO_ERR.UNKNOWN_OBJECT, `invalid object ${frame.objectId}`);
  const iface = getInterface(schema, sender.interface);
  if (!iface)
    throw protoError(PROTO_ERR.IMPLEMENTATION, `object of unknown interface ${sender.interface}`);
  const list = direction === "request" ? iface.requests : iface.events;
  const spec = list[frame.opcode];
  if (!spec)
    throw protoError(
      PROTO_ERR.UNKNOWN_OPCODE,
      `invalid method ${frame.opcode}, object ${iface.name}#${frame.objectId}`,
    );
  const since = spec.since ?? 1;
  if (sender.version < since)
    throw protoError(
      PROTO_ERR.OPCODE_VERSION,
      `invalid method ${frame.opcode} (since ${sender.version} < ${since}), object ${iface.name}#${frame.objectId}`,
    );
  const wire = frame.args;
  const specs = spec.args;
  if (wire.length !== specs.length)
    throw badArg(
      PROTO_ERR.ARG_COUNT,
      whereOf(iface, frame, spec),
      `${wire.length} arguments, expected ${specs.length}`,
    );

  // The decoded argument array is this message's own: values are checked in place and
  // only fd slots (and zombie objects) are rewritten, sparing an allocation per message.
  const out: unknown[] = wire;
  let newObjects: NewObject[] | undefined;
  let fdUsed = 0;
  for (let i = 0; i < specs.length; i++) {
    const s: ArgSpec = specs[i];
    const v = wire[i];
    switch (s.type) {
      case "int":
      case "fixed":
        if (!isIntIn(v, INT32_MIN, INT32_MAX))
          throw badArg(PROTO_ERR.BAD_ARG, whereOf(iface, frame, spec), `${s.name} is not an int32`);
        out[i] = v;
        break;
      case "uint":
        if (!isIntIn(v, 0, UINT32_MAX))
          throw badArg(PROTO_ERR.BAD_ARG, whereOf(iface, frame, spec), `${s.name} is not a uint32`);
        out[i] = v;
        break;
      case "enum": {
        if (!isIntIn(v, 0, UINT32_MAX))
          throw badArg(PROTO_ERR.BAD_ARG, whereOf(iface, frame, spec), `${s.name} is not a uint32`);
        const e = s.enum ? enumInfo(schema, s.enum) : null;
        if (e && !(e.bitfield ? (v & ~e.all) === 0 : e.values.has(v))) {
          const inv = e.spec.invalidError;
          if (inv) {
            const errEnum = findEnum(schema, `${inv.interface}.error`);
            const code = errEnum?.entries.find((x) => x.name === inv.error)?.value;
            if (code !== undefined)
              throw new ProtocolError(
                PROTO_ERR.BAD_ENUM,
                `invalid ${s.enum} 0x${v.toString(16)} in ${whereOf(iface, frame, spec)}`,
                { objectId: frame.objectId, wlCode: code },
              );
          }
          throw badArg(
            PROTO_ERR.BAD_ENUM,
            whereOf(iface, frame, spec),
            `${s.name}=${v} is not in ${s.enum}`,
          );
        }
        out[i] = v;
        break;
      }
      case "string":
        if (v === null) {
          if (!s.nullable)
            throw badArg(PROTO_ERR.NULL_ARG, whereOf(iface, frame, spec), `${s.name} is null`);
          out[i] = null;
          break;
        }
        if (typeof v !== "string")
          throw badArg(PROTO_ERR.BAD_ARG, whereOf(iface, frame, spec), `${s.name} is not a string`);
        if (v.length > limits.maxStringBytes || utf8Length(v) > limits.maxStringBytes)
          throw badArg(
            PROTO_ERR.BAD_STRING,
            whereOf(iface, frame, spec),
            `${s.name} longer than ${limits.maxStringBytes} bytes`,
          );
        // On Wayland's wire a string is NUL-terminated ("string not nul-terminated" is an
        // error); an embedded NUL would make the two ends read different strings.
        if (v.includes("\0"))
          throw badArg(PROTO_ERR.BAD_STRING, whereOf(iface, frame, spec), `${s.name} contains NUL`);
        out[i] = v;
        break;
      case "object": {
        if (!isIntIn(v, 0, UINT32_MAX))
          throw badArg(
            PROTO_ERR.BAD_ARG,
            whereOf(iface, frame, spec),
            `${s.name} is not an object id`,
          );
        if (v === 0) {
          if (!s.nullable)
            throw badArg(PROTO_ERR.NULL_ARG, whereOf(iface, frame, spec), `${s.name} is null`);
          out[i] = 0;
          break;
        }
        const o = objects.lookup(v);
        if (!o) {
          // wl_closure_lookup_objects: an object the client already destroyed (a zombie,
          // client side only) reads as NULL; anything else unknown is an error.
          if (objects.isZombie(v)) {
            out[i] = 0;
            break;
          }
          throw badArg(
            PROTO_ERR.BAD_OBJECT_ARG,
            whereOf(iface, frame, spec),
            `unknown object ${v} for ${s.name}`,
          );
        }
        if (s.interface && o.interface !== s.interface)
          throw badArg(
            PROTO_ERR.WRONG_INTERFACE,
            whereOf(iface, frame, spec),
            `object ${v} is a ${o.interface}, ${s.name} must be a ${s.interface}`,
          );
        out[i] = v;
        break;
      }
      case "new_id": {
        if (!isIntIn(v, 0, UINT32_MAX))
          throw badArg(
            PROTO_ERR.BAD_ARG,
            whereOf(iface, frame, spec),
            `${s.name} is not an object id`,
          );
        if (v === 0)
          throw badArg(
            PROTO_ERR.NULL_ARG,
            whereOf(iface, frame, spec),
            `NULL new ID for ${s.name}`,
          );
        const why = objects.checkNew(v);
        if (why)
          throw badArg(
            PROTO_ERR.BAD_NEW_ID,
            whereOf(iface, frame, spec),
            `not a valid new object id (${v}): ${why}`,
          );
        let ifaceName = s.interface;
        let version = sender.version;
        if (!ifaceName) {
          // Untyped new_id (wl_registry.bind): interface and version are the two arguments
          // before it on the wire.
          ifaceName = out[i - 2] as string;
          version = out[i - 1] as number;
        }
        if (!newObjects) newObjects = [];
        else if (newObjects.some((n) => n.id === v))
          throw badArg(
            PROTO_ERR.BAD_NEW_ID,
            whereOf(iface, frame, spec),
            `new id ${v} given twice`,
          );
        newObjects.push({ argIndex: i, id: v, interface: ifaceName, version });
        out[i] = v;
        break;
      }
      case "fd": {
        if (!isIntIn(v, 0, fds.length - 1))
          throw badArg(
            PROTO_ERR.BAD_FD,
            whereOf(iface, frame, spec),
            `file descriptor expected for ${s.name}`,
          );
        const bit = 2 ** v;
        if (Math.floor(fdUsed / bit) % 2 === 1)
          throw badArg(PROTO_ERR.BAD_FD, whereOf(iface, frame, spec), `fd slot ${v} used twice`);
        fdUsed += bit;
        out[i] = fds[v];
        break;
      }
    }
  }
  if (fds.length !== 0 && fdUsed !== 2 ** fds.length - 1)
    throw badArg(
      PROTO_ERR.BAD_FD,
      whereOf(iface, frame, spec),
      `${fds.length} fds attached, not all named by an argument`,
    );
  return {
    objectId: frame.objectId,
    opcode: frame.opcode,
    sender,
    iface,
    spec,
    args: out,
    newObjects: newObjects ?? NO_NEW,
  };
}

const NO_NEW: readonly NewObject[] = Object.freeze([]);

/**
 * Checks the arguments of a message this end is about to send, and turns fd arguments into
 * slot indices with the fd list beside them. A failure is this end's own bug, thrown as a
 * plain Error: the caller decides whether that is wl_display.implementation (server) or an
 * exception in the caller's code (client).
 */
export function checkOutgoing(
  schema: Schema,
  spec: MessageSpec,
  args: readonly unknown[],
  fdOut: (fd: number) => number,
): { wire: unknown[]; fds: number[] } {
  if (args.length !== spec.args.length)
    throw new Error(`${spec.name}: ${args.length} arguments, expected ${spec.args.length}`);
  const wire: unknown[] = new Array(args.length);
  const fds: number[] = [];
  for (let i = 0; i < args.length; i++) {
    const s = spec.args[i];
    const v = args[i];
    let ok: boolean;
    switch (s.type) {
      case "int":
      case "fixed":
        ok = typeof v === "number" && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX;
        break;
      case "uint":
      case "object":
      case "new_id":
        ok = typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= UINT32_MAX;
        if (ok && v === 0 && s.type === "new_id") ok = false;
        if (ok && v === 0 && s.type === "object") ok = s.nullable === true;
        break;
      case "enum": {
        ok = typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= UINT32_MAX;
        const e = ok && s.enum ? enumInfo(schema, s.enum) : null;
        if (e) ok = e.bitfield ? ((v as number) & ~e.all) === 0 : e.values.has(v as number);
        break;
      }
      case "string":
        ok = v === null ? s.nullable === true : typeof v === "string" && !v.includes("\0");
        break;
      case "fd":
        ok = typeof v === "number" && Number.isInteger(v) && v >= 0;
        if (ok) {
          wire[i] = fds.length;
          fds.push(fdOut(v as number));
          continue;
        }
        break;
    }
    if (!ok)
      throw new Error(
        `${spec.name}: argument ${s.name} (${s.type}) has invalid value ${String(v)}`,
      );
    wire[i] = v;
  }
  return { wire, fds };
}
