/**
 * Worker-thread entry for the MessagePort suite: a client that binds wl_compositor, makes
 * a surface, commits, syncs, then sends one malformed frame if asked, and reports what it
 * saw.
 */
import { parentPort, workerData } from "node:worker_threads";
import { NEW_ID, ProtocolClient } from "../protocol/client.ts";
import { MessagePortTransport } from "../protocol/transports/message-port.ts";

const { port, hostile } = workerData as {
  port: import("node:worker_threads").MessagePort;
  hostile: boolean;
};
const client = new ProtocolClient(new MessagePortTransport(port));
const globals: unknown[] = [];
const reg = client.request(1, "get_registry", [NEW_ID]);
client.listen(reg, (e, a) => {
  if (e === "global") globals.push(a);
});
await client.roundtrip();
const comp = client.request(reg, "bind", [1, "wl_compositor", 4, NEW_ID]);
const surf = client.request(comp, "create_surface", [NEW_ID]);
client.request(surf, "commit", []);
const serial = await client.roundtrip();
if (hostile) {
  port.postMessage({ not: "bytes" });
  await new Promise<void>((r) => client.onClose(r));
}
parentPort!.postMessage({ globals, surf, serial, error: client.error });
port.close();
