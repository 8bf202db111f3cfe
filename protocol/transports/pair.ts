/**
 * An in-process transport pair, for compositor and clients in one thread (tests, the lab's
 * single-thread runs). Frames are copied and delivered on a later microtask, as a socket
 * would: a sender never sees its peer run inside its own send().
 */
import { BaseTransport } from "../transport.ts";

export class PairTransport extends BaseTransport {
  peer!: PairTransport;
  private inFlight = 0;

  send(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.closed) return;
    const copy = bytes.slice();
    const list = [...fds];
    const peer = this.peer;
    this.inFlight += copy.length;
    queueMicrotask(() => {
      this.inFlight -= copy.length;
      if (!peer.closed) peer.messageHandler(copy, list);
    });
  }

  get bufferedBytes(): number {
    return this.inFlight;
  }

  protected doClose(): void {
    const peer = this.peer;
    // Frames already queued are delivered before the peer sees the end, as with a socket
    // whose buffered data is read before EOF.
    queueMicrotask(() => queueMicrotask(() => peer.closedByPeer("peer closed")));
  }
}

/** Two connected ends: [client, server]. */
export function createPair(): [PairTransport, PairTransport] {
  const a = new PairTransport();
  const b = new PairTransport();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
