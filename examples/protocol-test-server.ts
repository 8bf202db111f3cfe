/**
 * Runs the protocol-level test server (protocol/testing/test-server.ts) on a WebSocket, so
 * that remote clients — examples/ws-client.ts, or one in another language — have something
 * to talk to before `shmlab serve` exists.
 *
 *   npx tsx examples/protocol-test-server.ts [--port 7000] [--variant sealed-pools]
 */
import { parseArgs } from "node:util";
import { createTestServer } from "../protocol/testing/test-server.ts";
import { variantNames } from "../protocol/variant.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    variant: { type: "string", default: "standard" },
  },
});
const ts = createTestServer({
  variant: values.variant,
  onClientError: (c, e) => console.log(`${c.label}: ${e.code}: ${e.message}`),
});
const l = await ts.listen(Number(values.port));
console.log(
  `protocol test server (variant ${values.variant}; known: ${variantNames().join(", ")}) on ${l.url}`,
);
setInterval(() => {
  const c = ts.commits.at(-1);
  if (c)
    console.log(
      `${ts.commits.length} commit(s); last ${c.width}x${c.height} from client ${c.clientId}`,
    );
}, 5000).unref();
process.on("SIGINT", () => void l.close().then(() => process.exit(0)));
