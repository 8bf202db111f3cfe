/**
 * The piscina worker entry: one task is one long-lived client session. The task brings a
 * MessagePort to the compositor (protocol/transports/message-port.ts), the kernel channel
 * (shm/remote-kernel.ts) and a small shared control block; the session builds a Client on
 * a RemoteProcess, runs the behaviour with the async driver until it ends or the main
 * thread raises the stop flag, and returns the runtime's report.
 *
 * Control block (Int32Array over a SharedArrayBuffer), written here, read by the supervisor:
 *   [0] heartbeat: bumped at every driver iteration (a hung thread stops bumping)
 *   [1] latest pattern frame committed (-1: none)
 *   [2] stop flag, set by the supervisor
 *   [3] pages stored directly into physical memory (for reports)
 */
import type { MessagePort } from "node:worker_threads";
import { MessagePortTransport } from "../protocol/transports/message-port.ts";
import type { RemoteSetup } from "../shm/remote-kernel.ts";
import { RemoteProcess } from "../shm/remote-process.ts";
import { loadBehaviour } from "./behaviours/index.ts";
import { Client } from "./client.ts";
import { ClientRuntime, makeContext, type RuntimeReport } from "./runtime.ts";

export const CTL_HEARTBEAT = 0;
export const CTL_LATEST_FRAME = 1;
export const CTL_STOP = 2;
export const CTL_DIRECT_PAGES = 3;
export const CTL_WORDS = 4;

export interface SessionTask {
  behaviour: string;
  seed: number;
  index: number;
  params: Record<string, number | string | boolean>;
  label: string;
  protoPort: MessagePort;
  kernel: RemoteSetup;
  control: SharedArrayBuffer;
  /** Protocol variant name, so the client's schema matches the server's. */
  variant?: string;
}

export interface SessionReport extends RuntimeReport {
  label: string;
  channel: { calls: number; directPages: number; faultPages: number };
  latestFrame: number;
}

/** A task that only loads this module (and everything a session needs) in a thread. */
export interface WarmTask {
  warm: true;
}

export default async function session(
  task: SessionTask | WarmTask,
): Promise<SessionReport | "warm"> {
  if ("warm" in task) {
    await loadBehaviour("honest-renderer");
    return "warm";
  }
  const ctl = new Int32Array(task.control);
  const sys = new RemoteProcess(task.kernel);
  const transport = new MessagePortTransport(task.protoPort);
  let schema: import("../protocol/schema.ts").Schema | undefined;
  if (task.variant) {
    const { getVariant, resolveVariant } = await import("../protocol/variant.ts");
    schema = resolveVariant(getVariant(task.variant)).schema;
  }
  const client = new Client(transport, sys, { label: task.label, schema });
  const behaviour = await loadBehaviour(task.behaviour);
  const rt = new ClientRuntime(behaviour, client, makeContext(task.seed, task.index, task.params));
  Atomics.store(ctl, CTL_LATEST_FRAME, -1);
  const report = await rt.drive({
    shouldStop: () => Atomics.load(ctl, CTL_STOP) === 1,
    onStep: () => {
      Atomics.add(ctl, CTL_HEARTBEAT, 1);
      let latest = -1;
      for (const f of client.latestFrame.values()) latest = Math.max(latest, f);
      Atomics.store(ctl, CTL_LATEST_FRAME, latest);
      Atomics.store(ctl, CTL_DIRECT_PAGES, sys.channelStats.directPages);
    },
  });
  // The session is over: the client leaves (disconnect, exit) unless it already died.
  rt.stop("session over");
  const out: SessionReport = {
    ...rt.report(),
    ...(report.state === "dead" ? { state: "dead", reason: report.reason } : {}),
    label: task.label,
    channel: sys.channelStats,
    latestFrame: Atomics.load(ctl, CTL_LATEST_FRAME),
  };
  sys.detach();
  task.protoPort.close();
  return out;
}
