/**
 * The transport of deterministic runs: frames wait in the receiver's queue until the lab's
 * scheduler delivers them, one at a time, in an order drawn from the run's seed. Nothing is
 * delivered behind the scheduler's back (no microtasks, no timers), so a seed fixes exactly
 * when each message is seen relative to every page of every read.
 */
import { BaseTransport } from "../protocol/transport.ts";

interface Queued {
  bytes: Uint8Array;
  fds: number[];
}

export class QueueTransport extends BaseTransport {
  peer!: QueueTransport;
  /** Frames sent by the peer, waiting to be delivered to this end. */
  readonly inbox: Queued[] = [];
  private peerClosed = false;
  /** Told of fd handles in frames that were never delivered (the kernel drops them). */
  onDropped: (fds: number[]) => void = () => {};

  send(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.closed || this.peer.closed) {
      if (fds.length) this.onDropped([...fds]);
      return;
    }
    this.peer.inbox.push({ bytes: bytes.slice(), fds: [...fds] });
  }

  /** Whether a delivery (a frame, or the news that the peer closed) is pending. */
  get pending(): boolean {
    return !this.closed && (this.inbox.length > 0 || this.peerClosed);
  }

  /** Delivers one frame (or, once the queue is drained, the peer's close). */
  deliverOne(): boolean {
    if (this.closed) return false;
    const m = this.inbox.shift();
    if (m) {
      this.messageHandler(m.bytes, m.fds);
      return true;
    }
    if (this.peerClosed) {
      this.peerClosed = false;
      this.closedByPeer("peer closed");
      return true;
    }
    return false;
  }

  get bufferedBytes(): number {
    let n = 0;
    for (const m of this.peer.inbox) n += m.bytes.length;
    return n;
  }

  protected doClose(): void {
    // Frames already queued to the peer stay deliverable, then it sees the end.
    this.peer.peerClosed = true;
    for (const m of this.inbox) if (m.fds.length) this.onDropped(m.fds);
    this.inbox.length = 0;
  }
}

/** Two connected ends: [client, server]. */
export function createQueuePair(): [QueueTransport, QueueTransport] {
  const a = new QueueTransport();
  const b = new QueueTransport();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
