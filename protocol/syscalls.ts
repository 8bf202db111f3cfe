/**
 * The syscall channel. A remote (WebSocket) client shares no memory with the simulated
 * kernel, so it cannot make a memfd or write pixels itself; it asks the server to make the
 * syscalls on its behalf, in a simulated process of its own, and its fds are numbers in
 * that process's fd table. Frames use object id 0, which Wayland never uses as a sender:
 *
 *   request  [0, seq, name, [args...]]       seq: uint32 chosen by the client
 *   reply    [0, seq, errno | null, value]   errno: "EBADF", ...; null on success
 *
 * Replies come in request order. Wayland messages sent after a syscall request are
 * handled after the syscall completes, so `create_pool` may name an fd from a
 * `memfd_create` whose reply has not been read yet, as in one-threaded C.
 *
 * The numbers are Linux's (shm/uapi.ts): MFD_ALLOW_SEALING = 2, F_ADD_SEALS = 1033,
 * F_GET_SEALS = 1034, F_SEAL_SHRINK = 2, FALLOC_FL_PUNCH_HOLE = 2, ...
 */
import type { Errno } from "../shm/uapi.ts";
import { ERRNO } from "../shm/uapi.ts";
import type { WireValue } from "./codec.ts";
import { PROTO_ERR, protoError } from "./errors.ts";

export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;

type ArgKind = "int" | "uint" | "string" | "bytes";

/** Each syscall's arguments in order, and what its value is on success. */
export const SYSCALLS = {
  /** memfd_create(name, flags) -> fd */
  memfd_create: { args: ["string", "uint"], returns: "fd" },
  /** ftruncate(fd, length) -> 0 */
  ftruncate: { args: ["int", "uint"], returns: "0" },
  /** pwrite(fd, data, offset) -> bytes written */
  pwrite: { args: ["int", "bytes", "uint"], returns: "count" },
  /** pread(fd, count, offset) -> the bytes read (short at EOF) */
  pread: { args: ["int", "uint", "uint"], returns: "bytes" },
  /** fcntl(fd, cmd, arg): cmd F_ADD_SEALS (-> 0) or F_GET_SEALS (-> seals) only */
  fcntl: { args: ["int", "uint", "uint"], returns: "int" },
  /** fallocate(fd, mode, offset, len) -> 0 */
  fallocate: { args: ["int", "uint", "uint", "uint"], returns: "0" },
  /** close(fd) -> 0 */
  close: { args: ["int"], returns: "0" },
  /** fstat(fd) -> [st_size, seals] */
  fstat: { args: ["int"], returns: "[size, seals]" },
} as const satisfies Record<string, { args: readonly ArgKind[]; returns: string }>;

export type SyscallName = keyof typeof SYSCALLS;
export type SyscallArg = number | string | Uint8Array;
export type SyscallValue = number | Uint8Array | number[];
export interface SyscallErrno {
  errno: Errno;
}
export type SyscallReturn = SyscallValue | SyscallErrno;

/**
 * What the server hands each remote connection: the kernel, seen from that client's
 * simulated process. `call` runs one syscall and returns its value or its errno. It may be
 * asynchronous (a scheduler may preempt); the connection keeps request order.
 */
export interface SyscallGateway {
  call(name: SyscallName, args: readonly SyscallArg[]): SyscallReturn | Promise<SyscallReturn>;
  /** The connection ended: the process exits and its fds close. */
  close?(): void;
}

export function isErrno(r: SyscallReturn): r is SyscallErrno {
  return typeof r === "object" && r !== null && !Array.isArray(r) && !(r instanceof Uint8Array);
}

/** Largest pwrite/pread in one frame; larger writes are split by the client. */
export const MAX_SYSCALL_IO = 1024 * 1024;

export interface SyscallRequest {
  seq: number;
  name: string;
  args: SyscallArg[];
}

/**
 * Checks the shape of a request frame's items. A malformed request is a protocol error like
 * any malformed frame; an unknown syscall name is not: the caller answers ENOSYS, as a
 * kernel answers a syscall number it does not have.
 */
export function parseSyscallRequest(items: readonly WireValue[]): SyscallRequest {
  const [, seq, name, args] = items;
  if (typeof seq !== "number" || !Number.isInteger(seq) || seq < 0 || seq > 0xffffffff)
    throw protoError(PROTO_ERR.BAD_FRAME, "syscall seq is not a uint32");
  if (typeof name !== "string" || name.length > 64)
    throw protoError(PROTO_ERR.BAD_FRAME, "syscall name is not a short string");
  if (!Array.isArray(args)) throw protoError(PROTO_ERR.BAD_FRAME, "syscall args is not an array");
  if (!Object.hasOwn(SYSCALLS, name)) return { seq, name, args: [] };
  const kinds: readonly ArgKind[] = SYSCALLS[name as SyscallName].args;
  if (args.length !== kinds.length)
    throw protoError(
      PROTO_ERR.ARG_COUNT,
      `${name} takes ${kinds.length} arguments, got ${args.length}`,
    );
  const out: SyscallArg[] = [];
  for (let i = 0; i < kinds.length; i++) {
    const v = args[i];
    const k = kinds[i];
    const ok =
      k === "int"
        ? typeof v === "number" && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff
        : k === "uint"
          ? typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff
          : k === "string"
            ? typeof v === "string" && v.length <= 249 && !v.includes("\0")
            : v instanceof Uint8Array && v.length <= MAX_SYSCALL_IO;
    if (!ok) throw protoError(PROTO_ERR.BAD_ARG, `${name} argument ${i} is not a valid ${k}`);
    out.push(v as SyscallArg);
  }
  return { seq, name, args: out };
}

export function isKnownSyscall(name: string): name is SyscallName {
  return Object.hasOwn(SYSCALLS, name);
}

/** Items of the reply frame for a syscall's outcome. */
export function replyItems(seq: number, r: SyscallReturn): unknown[] {
  return isErrno(r) ? [0, seq, r.errno, null] : [0, seq, null, r];
}

export interface SyscallReply {
  seq: number;
  errno: Errno | null;
  value: SyscallValue | null;
}

/** Client side: checks a reply frame from the server. */
export function parseSyscallReply(items: readonly WireValue[]): SyscallReply {
  const [, seq, errno, value] = items;
  if (typeof seq !== "number" || !Number.isInteger(seq) || seq < 0 || seq > 0xffffffff)
    throw protoError(PROTO_ERR.BAD_FRAME, "syscall reply seq is not a uint32");
  if (errno !== null && !(typeof errno === "string" && Object.hasOwn(ERRNO, errno)))
    throw protoError(PROTO_ERR.BAD_FRAME, "syscall reply errno is not an errno name");
  const okValue =
    value === null ||
    typeof value === "number" ||
    value instanceof Uint8Array ||
    (Array.isArray(value) && value.every((x) => typeof x === "number"));
  if (!okValue) throw protoError(PROTO_ERR.BAD_FRAME, "syscall reply value has a bad type");
  return { seq, errno: errno as Errno | null, value: value as SyscallValue | null };
}

/** A syscall that failed, as the client library reports it. */
export class SyscallError extends Error {
  readonly errno: Errno;
  readonly syscall: string;
  constructor(syscall: string, errno: Errno) {
    super(`${syscall}: ${errno}`);
    this.name = "SyscallError";
    this.syscall = syscall;
    this.errno = errno;
  }
}
