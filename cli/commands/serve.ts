/**
 * `shmlab serve`: a compositor with the chosen policy on a WebSocket, frames driven by a
 * real-interval clock, supervised by ServeService (cli/serve-service.ts): per-client
 * limits, timeouts, Host/Origin checks, a loud death and a restart, GET /health.
 * Loopback only unless --host says otherwise. Stops on SIGINT and prints the run's stats.
 */
import type { Command } from "commander";
import { loadPolicy, policyNames } from "../../compositor/policies/index.ts";
import { DEFAULT_SERVE_LIMITS, ServeService } from "../serve-service.ts";

interface ServeOptions {
  policy: string;
  host: string;
  port: string;
  width: string;
  height: string;
  fps: string;
  variant?: string;
  restart: boolean;
  maxClients: string;
  maxPerAddress: string;
  handshakeTimeout: string;
  idleTimeout: string;
  maxClientFds: string;
  maxClientMemory: string;
  maxClientPools: string;
  maxClientTextures: string;
  maxClientReadPerFrame: string;
  memory: string;
  allowOrigin: string[];
  allowHost: string[];
}

const MiB = 1024 * 1024;

/** A bad option value, with the code the other commands give it. */
export class BadOption extends Error {
  readonly code = "SHMLAB_ERR_BAD_OPTION";
  constructor(message: string) {
    super(message);
    this.name = "BadOption";
  }
}

/** A non-negative integer option, or a clear error naming the option. */
function count(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new BadOption(`--${name} must be a whole number ≥ 0, not ${JSON.stringify(v)}`);
  return n;
}

const collect = (v: string, acc: string[]) => [...acc, v];

export function register(program: Command): void {
  const d = DEFAULT_SERVE_LIMITS;
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
    .option("--no-restart", "when the compositor dies, refuse new clients instead of restarting it")
    .option("--max-clients <n>", "simultaneous clients", String(d.maxClients))
    .option(
      "--max-per-address <n>",
      "simultaneous sockets from one address",
      String(d.maxPerAddress),
    )
    .option(
      "--handshake-timeout <ms>",
      "upgrade and first message within (0: none)",
      String(d.handshakeTimeoutMs),
    )
    .option(
      "--idle-timeout <ms>",
      "close a client silent this long (0: never)",
      String(d.idleTimeoutMs),
    )
    .option(
      "--max-client-fds <n>",
      "fds one client may have the compositor hold",
      String(d.maxClientFds),
    )
    .option(
      "--max-client-memory <MiB>",
      "file memory one client may hold",
      String(d.maxClientMemory / MiB),
    )
    .option(
      "--max-client-pools <MiB>",
      "pool bytes the compositor maps for one client",
      String(d.maxClientPoolBytes / MiB),
    )
    .option(
      "--max-client-textures <MiB>",
      "buffer copies the compositor keeps for one client",
      String(d.maxClientTextureBytes / MiB),
    )
    .option(
      "--max-client-read-per-frame <MiB>",
      "bytes of one client's buffers read per frame (at least one buffer)",
      String(d.maxClientReadBytesPerFrame / MiB),
    )
    .option("--memory <MiB>", "the simulated kernel's physical memory", String(d.memoryLimit / MiB))
    .option("--allow-origin <origin>", "also accept this browser Origin (repeatable)", collect, [])
    .option("--allow-host <name>", "also accept this Host header name (repeatable)", collect, [])
    .action(async (opts: ServeOptions) => {
      const policy = await loadPolicy(opts.policy);
      const service = new ServeService({
        policy,
        host: opts.host,
        port: count("port", opts.port),
        width: count("width", opts.width),
        height: count("height", opts.height),
        fps: count("fps", opts.fps),
        variant: opts.variant,
        restart: opts.restart,
        allowOrigins: opts.allowOrigin,
        allowHosts: opts.allowHost,
        limits: {
          maxClients: count("max-clients", opts.maxClients),
          maxPerAddress: count("max-per-address", opts.maxPerAddress),
          handshakeTimeoutMs: count("handshake-timeout", opts.handshakeTimeout),
          idleTimeoutMs: count("idle-timeout", opts.idleTimeout),
          maxClientFds: count("max-client-fds", opts.maxClientFds),
          maxClientMemory: count("max-client-memory", opts.maxClientMemory) * MiB,
          maxClientPoolBytes: count("max-client-pools", opts.maxClientPools) * MiB,
          maxClientTextureBytes: count("max-client-textures", opts.maxClientTextures) * MiB,
          maxClientReadBytesPerFrame:
            count("max-client-read-per-frame", opts.maxClientReadPerFrame) * MiB,
          memoryLimit: count("memory", opts.memory) * MiB,
        },
        // A death is reported on stderr; exit status 1 says one happened.
        warn: (line) => {
          console.error(line);
          if (line.startsWith("compositor DIED")) process.exitCode = 1;
        },
      });
      const url = await service.listen();
      console.log(`shmlab compositor, policy ${policy.name} (${policy.source})`);
      console.log(
        `listening on ${url}  (Ctrl-C to stop; status: ${url.replace("ws:", "http:")}/health)`,
      );
      await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
      const h = service.status();
      const s = service.compositor.stats();
      await service.close();
      console.log(
        JSON.stringify(
          {
            policy: policy.name,
            alive: s.alive,
            generation: h.generation,
            deaths: h.deaths,
            lastDeath: h.lastDeath,
            connections: h.connectionsTotal,
            refused: h.refused,
            death: s.death,
            frames: s.frames,
            faults: s.faults,
            signals: s.signals,
            syscalls: s.syscalls,
            bytesCopied: s.bytesCopied,
            anonPages: s.anonPages,
            zeroPages: s.zeroPages,
            composeMs: Math.round(s.composeMs),
            notices: s.notices,
          },
          null,
          2,
        ),
      );
    });
}
