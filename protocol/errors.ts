/**
 * Typed protocol errors. Each carries a stable code (tests, reports and other languages'
 * clients match on it, never on message text) and the wl_display.error it becomes on the
 * wire: the object it is posted against and the numeric error code of that object's
 * interface.
 *
 * The mapping follows libwayland's wayland-server.c (wl_client_connection_data):
 * an unknown sender is `WL_DISPLAY_ERROR_INVALID_OBJECT, "invalid object %u"`; an opcode
 * past the interface or its version, and any demarshalling failure ("invalid arguments for
 * %s#%u.%s": short message, bad new_id, unknown or mistyped object argument, missing fd) are
 * `WL_DISPLAY_ERROR_INVALID_METHOD`; allocation failure is `WL_DISPLAY_ERROR_NO_MEMORY`.
 */
import { DISPLAY_ERROR, DISPLAY_ID } from "./schema.ts";

export const PROTO_ERR = {
  /** The frame is larger than the cap; refused before any decoding. */
  TOO_LARGE: "PROTO_ERR_TOO_LARGE",
  /** The msgpack value ends before its declared length. */
  TRUNCATED: "PROTO_ERR_TRUNCATED",
  /** Bytes follow the one msgpack value a frame may hold. */
  TRAILING: "PROTO_ERR_TRAILING",
  /** Arrays nested deeper than any valid frame. */
  TOO_DEEP: "PROTO_ERR_TOO_DEEP",
  /** A msgpack byte that is reserved (0xc1) or an extension type (never valid here). */
  RESERVED: "PROTO_ERR_RESERVED",
  /** A msgpack type the format never uses (maps, 64-bit integers). */
  UNSUPPORTED_TYPE: "PROTO_ERR_UNSUPPORTED_TYPE",
  /** Not [objectId, opcode, args] (or a syscall frame): wrong shape or header types. */
  BAD_FRAME: "PROTO_ERR_BAD_FRAME",
  /** The transport envelope (fd count and fd list) is malformed. */
  BAD_ENVELOPE: "PROTO_ERR_BAD_ENVELOPE",
  /** The sender object id is unknown or already destroyed. */
  UNKNOWN_OBJECT: "PROTO_ERR_UNKNOWN_OBJECT",
  /** The opcode is past the interface's last request. */
  UNKNOWN_OPCODE: "PROTO_ERR_UNKNOWN_OPCODE",
  /** The request exists but only since a version above the object's. */
  OPCODE_VERSION: "PROTO_ERR_OPCODE_VERSION",
  /** The argument count differs from the schema. */
  ARG_COUNT: "PROTO_ERR_ARG_COUNT",
  /** An argument has the wrong type or is out of its int32/uint32 range. */
  BAD_ARG: "PROTO_ERR_BAD_ARG",
  /** A string is too long or contains NUL. */
  BAD_STRING: "PROTO_ERR_BAD_STRING",
  /** null/0 where the schema does not allow null. */
  NULL_ARG: "PROTO_ERR_NULL_ARG",
  /** An object argument names no live object. */
  BAD_OBJECT_ARG: "PROTO_ERR_BAD_OBJECT_ARG",
  /** An object argument names an object of another interface. */
  WRONG_INTERFACE: "PROTO_ERR_WRONG_INTERFACE",
  /** A new_id out of sequence, in use, or in the server's range. */
  BAD_NEW_ID: "PROTO_ERR_BAD_NEW_ID",
  /** An fd argument names no fd slot, or fds are attached that no argument uses. */
  BAD_FD: "PROTO_ERR_BAD_FD",
  /** An enum argument with a value outside its enum. */
  BAD_ENUM: "PROTO_ERR_BAD_ENUM",
  /** Per-connection limit: objects. */
  OBJECT_LIMIT: "PROTO_ERR_OBJECT_LIMIT",
  /** Per-connection limit: messages per second. */
  RATE_LIMIT: "PROTO_ERR_RATE_LIMIT",
  /** Per-connection limit: bytes queued towards a client that does not read. */
  QUEUE_LIMIT: "PROTO_ERR_QUEUE_LIMIT",
  /** A syscall frame on a connection that has no syscall gateway. */
  NO_SYSCALLS: "PROTO_ERR_NO_SYSCALLS",
  /** A handler failed in a way that is the server's fault. */
  IMPLEMENTATION: "PROTO_ERR_IMPLEMENTATION",
  /** An interface-specific error raised by a handler or variant (e.g. wl_shm.invalid_fd). */
  INTERFACE: "PROTO_ERR_INTERFACE",
} as const;
export type ProtoErrCode = (typeof PROTO_ERR)[keyof typeof PROTO_ERR];

/** Which wl_display error each code becomes when the error is not interface-specific. */
export const DISPLAY_ERROR_FOR: Readonly<Record<ProtoErrCode, number>> = {
  PROTO_ERR_TOO_LARGE: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_TRUNCATED: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_TRAILING: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_TOO_DEEP: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_RESERVED: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_UNSUPPORTED_TYPE: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_BAD_FRAME: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_BAD_ENVELOPE: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_UNKNOWN_OBJECT: DISPLAY_ERROR.invalid_object,
  PROTO_ERR_UNKNOWN_OPCODE: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_OPCODE_VERSION: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_ARG_COUNT: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_BAD_ARG: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_BAD_STRING: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_NULL_ARG: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_BAD_OBJECT_ARG: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_WRONG_INTERFACE: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_BAD_NEW_ID: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_BAD_FD: DISPLAY_ERROR.invalid_method,
  PROTO_ERR_BAD_ENUM: DISPLAY_ERROR.invalid_method,
  // libwayland answers ENOMEM with wl_client_post_no_memory; a limit is the same condition
  // seen from the client: the server will not spend more on it.
  PROTO_ERR_OBJECT_LIMIT: DISPLAY_ERROR.no_memory,
  PROTO_ERR_RATE_LIMIT: DISPLAY_ERROR.no_memory,
  PROTO_ERR_QUEUE_LIMIT: DISPLAY_ERROR.no_memory,
  PROTO_ERR_NO_SYSCALLS: DISPLAY_ERROR.invalid_object,
  PROTO_ERR_IMPLEMENTATION: DISPLAY_ERROR.implementation,
  PROTO_ERR_INTERFACE: DISPLAY_ERROR.implementation,
};

/**
 * A protocol violation (or server failure) that ends the client's connection with one
 * wl_display.error. `objectId` is the object the error is posted against (libwayland posts
 * most against the display itself, id 1); `wlCode` is the numeric code in that object's
 * interface's error enum.
 */
export class ProtocolError extends Error {
  readonly code: ProtoErrCode;
  readonly objectId: number;
  readonly wlCode: number;

  constructor(
    code: ProtoErrCode,
    message: string,
    opts: { objectId?: number; wlCode?: number } = {},
  ) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
    this.objectId = opts.objectId ?? DISPLAY_ID;
    this.wlCode = opts.wlCode ?? DISPLAY_ERROR_FOR[code];
  }
}

export function protoError(code: ProtoErrCode, message: string): ProtocolError {
  return new ProtocolError(code, message);
}

/**
 * An interface error such as wl_shm.invalid_stride, posted against `objectId` with the code
 * from that object's interface error enum.
 */
export function interfaceError(objectId: number, wlCode: number, message: string): ProtocolError {
  return new ProtocolError(PROTO_ERR.INTERFACE, message, { objectId, wlCode });
}

export function isProtocolError(e: unknown): e is ProtocolError {
  return e instanceof ProtocolError;
}

/** libwayland formats the error text into a 128-byte buffer; longer text is cut. */
export const ERROR_MESSAGE_MAX = 127;

export function clampMessage(s: string): string {
  // NUL would make the event itself invalid; the cut keeps the text a valid wire string.
  const clean = s.replaceAll("\0", "\\0");
  return clean.length > ERROR_MESSAGE_MAX ? clean.slice(0, ERROR_MESSAGE_MAX) : clean;
}
