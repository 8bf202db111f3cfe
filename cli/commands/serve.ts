/**
 * `shmlab serve`: a compositor with the chosen policy on a WebSocket, frames driven by a
 * real-interval clock. Each remote connection gets a process of its own in the simulated
 * kernel: its syscall channel (memfd_create, ftruncate, pwrite, fcntl seals...) runs there
 * (protocol/kernel-gateway.ts ProcessSyscallGateway), and the fd numbers it sends are that
 * process's, passed to the compositor's process as sendmsg would (remoteFdBridge).
 * Loopback only unless --host says otherwise. Stops on SIGINT and prints the run's stats.
 */
import type { Command } from "commander";
import { IntervalClock } from "../../compositor/clock.ts";
import { Compositor } from "../../compositor/compositor.ts";
import { loadPolicy, policyNames } from "../../compositor/policies/index.ts";
import { ProcessSyscallGateway, remoteFdBridge } from "../../protocol/kernel-gateway.ts";
import { listenWebSocket } from "../../protocol/transports/websocket.ts";
import { ProcessKilled } from "../../shm/errors.ts";
import { Kernel } from "../../shm/kernel.ts";
import { KERNEL_FEATURES } from "../../shm/scenario.ts";

interface ServeOptions {
  policy: string;
  host: string;
  port: string;
  width: string;
  height: string;
  fps: string;
  variant?: string;
}

export function register(program: Command): void {
  program
    .command("serve")
    .description(
      "serve a compositor with a mapping policy on a WebSocket (ws://127.0.0.1 by default)",
    )
    .option(
      "--policy <name|file>",
      `one of ${policyNames().join(", ")}, or a policy file`,
      "libwayland",
    )
    .option("--host <addr>", "address to bind (loopback by default)", "127.0.0.1")
    .option("--port <n>", "port (0: any free port)", "0")
    .option("--width <px>", "output width", "1280")
    .option("--height <px>", "output height", "720")
    .option("--fps <n>", "frames per second of the real-interval clock", "60")
    .option("--variant <name>", "protocol variant (standard, sealed-pools, shrinkable-pools)")
    .action(async (opts: ServeOptions) => {
      const policy = await loadPolicy(opts.policy);
      // Every proposal is switched on: a policy uses only what it asks for.
      const kernel = new Kernel({ features: [...KERNEL_FEATURES] });
      const comp = new Compositor({
        kernel,
        policy,
        width: Number(opts.width),
        height: Number(opts.height),
        clock: new IntervalClock(1000 / Number(opts.fps)),
        server: opts.variant ? { variant: opts.variant } : {},
      });
      let n = 0;
      const reportDeath = (e: ProcessKilled) => {
        console.log(`compositor DIED: ${e.message} — ${comp.deathCause}`);
        process.exitCode = 1;
      };
      const listener = await listenWebSocket({
        host: opts.host,
        port: Number(opts.port),
        // A death inside a request handler (create_pool's mapping, say) reaches here, not
        // the frame clock: report it the same way.
        onHandlerError: (e) => {
          if (e instanceof ProcessKilled && e.pid === comp.proc.pid) reportDeath(e);
          else console.error(`handler error: ${(e as Error)?.message ?? String(e)}`);
        },
        onConnection: (t, who) => {
          if (!comp.alive) {
            t.close("compositor is dead");
            return;
          }
          const proc = kernel.spawn(`remote-${++n}`);
          const c = comp.connect(t, {
            fds: remoteFdBridge(kernel, proc, comp.proc),
            syscalls: new ProcessSyscallGateway(proc),
            label: `${proc.name} (${who})`,
          });
          console.log(`+ ${c.label}`);
          c.onClose(() =>
            console.log(`- ${c.label}${c.error ? `: ${c.error.message} [${c.error.code}]` : ""}`),
          );
        },
      });
      console.log(`shmlab compositor, policy ${policy.name} (${policy.source})`);
      console.log(`listening on ${listener.url}  (Ctrl-C to stop)`);
      let errorsShown = 0;
      comp.start({
        onFrame: () => {
          for (const e of comp.errors.slice(errorsShown))
            console.log(
              `! ${e.client}: ${e.interface}#${e.objectId} error ${e.code}: ${e.message}`,
            );
          errorsShown = comp.errors.length;
        },
        onDeath: reportDeath,
      });
      await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
      comp.stop();
      await listener.close();
      const s = comp.stats();
      console.log(
        JSON.stringify(
          {
            policy: policy.name,
            alive: s.alive,
            death: s.death,
            frames: s.frames,
            faults: s.faults,
            signals: s.signals,
            syscalls: s.syscalls,
            bytesCopied: s.bytesCopied,
            anonPages: s.anonPages,
            zeroPages: s.zeroPages,
            composeMs: Math.round(s.composeMs),
            errors: s.errors,
            notices: s.notices,
          },
          null,
          2,
        ),
      );
    });
}
