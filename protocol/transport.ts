/**
 * What a connection needs from the thing that moves its bytes. A transport carries frames
 * (encoded by codec.ts) and, beside each frame, a list of file handles — the way
 * sendmsg(2) carries SCM_RIGHTS ancillary data beside the bytes, so that nothing reading
 * the payload can forge or lose an fd.
 *
 * The numbers in that list are opaque to protocol/: the kernel integration decides what
 * they mean (an in-flight file handle for worker clients that share the simulated kernel,
 * the remote client's own fd number on a WebSocket) and converts them to and from
 * per-process fd numbers through an FdBridge. protocol/ never touches kernel internals.
 *
 * Transports whose medium is a single byte string (MessagePort messages, WebSocket binary
 * messages) put the list in a small envelope in front of the frame:
 *
 *   u8 fdCount | fdCount x u32 little-endian | frame bytes
 */
import { PROTO_ERR, type ProtocolError, protoError } from "./errors.ts";

export interface Transport {
  /** Queues one frame and its fd handles for the peer. A no-op once closed. */
  send(bytes: Uint8Array, fds?: readonly number[]): void;
  /** Registers the receiver of incoming frames (one receiver per transport). */
  onMessage(handler: (bytes: Uint8Array, fds: number[]) => void): void;
  /**
   * Registers the receiver of transport-level violations (a malformed envelope, an
   * over-size message, a per-connection limit): the connection answers them with
   * wl_display.error as it would a malformed frame.
   */
  onViolation(handler: (err: ProtocolError) => void): void;
  /** Registers a callback for the end of the connection, from either side. */
  onClose(handler: (reason: string) => void): void;
  /** Closes after flushing what was already sent. Idempotent. */
  close(reason?: string): void;
  readonly closed: boolean;
  /** Bytes sent but not yet taken by the peer, where the medium can tell. */
  readonly bufferedBytes: number;
}

/**
 * Converts between a process's fd numbers and the numbers a transport carries.
 * `outgoing` runs on the sending side for each fd argument (like the dup that sendmsg
 * takes); `incoming` on the receiving side (like the fd that recvmsg installs). `discard`
 * closes an fd received with a message that was then refused, so a refused message leaks
 * nothing.
 */
export interface FdBridge {
  outgoing(fd: number): number;
  incoming(handle: number): number;
  discard(fd: number): void;
  /**
   * Releases a handle that will never be received (its message was refused before the
   * handle was taken in, or arrived after the connection ended), as the kernel closes fds
   * still queued on a socket that is shut down.
   */
  drop?(handle: number): void;
}

/** The bridge for tests and for peers that pass handles through unchanged. */
export const IDENTITY_FDS: FdBridge = {
  outgoing: (fd) => fd,
  incoming: (h) => h,
  discard: () => {},
};

export const MAX_ENVELOPE_FDS = 28;

export function encodeEnvelope(frame: Uint8Array, fds: readonly number[] = []): Uint8Array {
  if (fds.length > MAX_ENVELOPE_FDS) throw new RangeError(`more than ${MAX_ENVELOPE_FDS} fds`);
  const out = new Uint8Array(1 + 4 * fds.length + frame.length);
  out[0] = fds.length;
  const dv = new DataView(out.buffer);
  for (let i = 0; i < fds.length; i++) {
    const h = fds[i];
    if (!Number.isInteger(h) || h < 0 || h > 0xffffffff) throw new RangeError(`bad fd handle ${h}`);
    dv.setUint32(1 + 4 * i, h, true);
  }
  out.set(frame, 1 + 4 * fds.length);
  return out;
}

export function decodeEnvelope(data: Uint8Array): { bytes: Uint8Array; fds: number[] } {
  if (data.length < 1) throw protoError(PROTO_ERR.BAD_ENVELOPE, "empty envelope");
  const n = data[0];
  if (n > MAX_ENVELOPE_FDS)
    throw protoError(
      PROTO_ERR.BAD_ENVELOPE,
      `envelope names ${n} fds, at most ${MAX_ENVELOPE_FDS}`,
    );
  const head = 1 + 4 * n;
  if (data.length < head)
    throw protoError(PROTO_ERR.BAD_ENVELOPE, "envelope shorter than its fd list");
  const fds: number[] = new Array(n);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < n; i++) fds[i] = dv.getUint32(1 + 4 * i, true);
  return { bytes: data.subarray(head), fds };
}

/**
 * Per-connection limits a server enforces on each client, whatever the transport.
 * Exceeding one is wl_display.no_memory and a disconnect (see errors.ts).
 */
export interface ConnectionLimits {
  /** Live objects a client may hold (libwayland's hard cap is WL_MAP_MAX_OBJECTS). */
  maxObjects: number;
  /** Messages per second, averaged over a one-second window. */
  maxMessagesPerSecond: number;
  /** Bytes of events queued towards a client that is not reading. */
  maxQueuedBytes: number;
  /** Frames waiting while a slow (asynchronous) syscall is answered. */
  maxPendingFrames: number;
}

export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = Object.freeze({
  maxObjects: 4096,
  maxMessagesPerSecond: 20_000,
  maxQueuedBytes: 4 * 1024 * 1024,
  maxPendingFrames: 1024,
});

/** Base for transports: handler slots and close bookkeeping. */
export abstract class BaseTransport implements Transport {
  protected messageHandler: (bytes: Uint8Array, fds: number[]) => void = () => {};
  protected violationHandler: (err: ProtocolError) => void = () => {};
  private closeHandlers: ((reason: string) => void)[] = [];
  private isClosed = false;

  abstract send(bytes: Uint8Array, fds?: readonly number[]): void;
  abstract get bufferedBytes(): number;
  protected abstract doClose(): void;

  get closed(): boolean {
    return this.isClosed;
  }

  onMessage(handler: (bytes: Uint8Array, fds: number[]) => void): void {
    this.messageHandler = handler;
  }

  onViolation(handler: (err: ProtocolError) => void): void {
    this.violationHandler = handler;
  }

  onClose(handler: (reason: string) => void): void {
    if (this.isClosed) handler("closed");
    else this.closeHandlers.push(handler);
  }

  close(reason = "closed"): void {
    if (this.isClosed) return;
    this.isClosed = true;
    try {
      this.doClose();
    } finally {
      this.fireClosed(reason);
    }
  }

  /** For subclasses: the medium ended from the other side. */
  protected closedByPeer(reason: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.fireClosed(reason);
  }

  private fireClosed(reason: string): void {
    const hs = this.closeHandlers;
    this.closeHandlers = [];
    for (const h of hs) h(reason);
  }

  /** Delivers an envelope, turning a malformed one into a violation. */
  protected deliverEnvelope(data: Uint8Array): void {
    if (this.isClosed) return;
    let env: { bytes: Uint8Array; fds: number[] };
    try {
      env = decodeEnvelope(data);
    } catch (e) {
      this.violationHandler(e as ProtocolError);
      return;
    }
    this.messageHandler(env.bytes, env.fds);
  }
}
