/**
 * MessagePort transport, for clients in worker threads. Each frame travels as one
 * transferred Uint8Array holding the envelope (transport.ts): fd handle count, handles,
 * frame. The simulated kernel lives in shared memory, so the handles name files that both
 * threads can reach; the FdBridge on each end turns them into that process's fds.
 *
 * A worker can post anything a structured clone can hold; whatever is not a Uint8Array
 * envelope is a violation, answered like any malformed frame.
 */
import type { MessagePort } from "node:worker_threads";
import { PROTO_ERR, protoError } from "../errors.ts";
import { BaseTransport, encodeEnvelope } from "../transport.ts";

export class MessagePortTransport extends BaseTransport {
  private readonly port: MessagePort;

  constructor(port: MessagePort) {
    super();
    this.port = port;
    port.on("message", (data: unknown) => {
      if (!(data instanceof Uint8Array)) {
        this.violationHandler(protoError(PROTO_ERR.BAD_ENVELOPE, "message is not a byte array"));
        return;
      }
      this.deliverEnvelope(data);
    });
    port.on("messageerror", () => {
      this.violationHandler(
        protoError(PROTO_ERR.BAD_ENVELOPE, "message could not be deserialized"),
      );
    });
    port.on("close", () => this.closedByPeer("port closed"));
  }

  send(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.closed) return;
    const env = encodeEnvelope(bytes, fds);
    this.port.postMessage(env, [env.buffer as ArrayBuffer]);
  }

  get bufferedBytes(): number {
    // A MessagePort does not report its queue; limits on it are the receiver's to enforce.
    return 0;
  }

  protected doClose(): void {
    this.port.close();
  }
}
