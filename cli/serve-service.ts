/**
 * The service behind `shmlab serve`: a compositor on a loopback WebSocket, supervised.
 *
 * Each remote connection gets a process of its own in the simulated kernel (its syscall
 * channel runs there) and its fds are passed into the compositor's process as sendmsg
 * would. Every limit is an option with a default (docs/protocol.md section 7).
 *
 * The compositor's death is an event, not a silence: every client of the dead compositor
 * is closed with 1011 and the cause as the close reason, the cause goes to stderr, and
 * with `restart` (the default) a fresh kernel and compositor take the new connections;
 * without it new connections are refused with the same reason. GET /health answers a JSON
 * status for scripts. Exited client processes are reaped and reported errors are consumed,
 * so nothing grows with the number of connections ever made.
 */
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks";
import { getHeapSpaceStatistics } from "node:v8";
import { IntervalClock } from "../compositor/clock.ts";
import { Compositor } from "../compositor/compositor.ts";
import type { Policy } from "../compositor/policy.ts";
import {
  type MallocStats,
  type MemoryReclaimAddon,
  memoryReclaimAddon,
} from "../native/memory-reclaim.ts";
import { ProcessSyscallGateway, remoteFdBridge } from "../protocol/kernel-gateway.ts";
import type { Transport } from "../protocol/transport.ts";
import {
  CLOSE,
  DEFAULT_LISTEN_LIMITS,
  listenWebSocket,
  type WebSocketListener,
  type WebSocketTransport,
} from "../protocol/transports/websocket.ts";
import { ProcessKilled } from "../shm/errors.ts";
import { Kernel } from "../shm/kernel.ts";
import { KERNEL_FEATURES } from "../shm/scenario.ts";
import { MemoryReclaimer, type ReclaimStats } from "./memory-reclaim.ts";

export interface ServeLimits {
  /** Simultaneous WebSocket clients. */
  maxClients: number;
  /** Simultaneous sockets from one address. */
  maxPerAddress: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  /** Fds one client may have the compositor hold at once. */
  maxClientFds: number;
  /** Physical memory of the simulated kernel, bytes. */
  memoryLimit: number;
  /** Bytes of file memory one client's files may hold (ENOMEM past it). */
  maxClientMemory: number;
  /** Bytes of pools the compositor maps for one client (no_memory past it). */
  maxClientPoolBytes: number;
  /** Bytes of buffer copies (textures) the compositor keeps for one client (no_memory). */
  maxClientTextureBytes: number;
  /**
   * Bytes of one client's committed buffers read per frame (at least one buffer); the rest
   * wait for the next frame, so one client's huge commits cannot stretch everyone's frame.
   */
  maxClientReadBytesPerFrame: number;
}

/**
 * Sized so that every client at its limits still fits beside the others: a client's files
 * hold at most maxClientMemory written by it plus maxClientPoolBytes faulted in by the
 * compositor's reads, 64 MiB; 14 clients are 896 MiB of the 1 GiB kernel, the rest is the
 * compositor's own. The fds: 14 × 24 = 336 of the compositor's 1021.
 */
export const DEFAULT_SERVE_LIMITS: Readonly<ServeLimits> = Object.freeze({
  maxClients: 14,
  maxPerAddress: DEFAULT_LISTEN_LIMITS.maxPerAddress,
  handshakeTimeoutMs: DEFAULT_LISTEN_LIMITS.handshakeTimeoutMs,
  idleTimeoutMs: DEFAULT_LISTEN_LIMITS.idleTimeoutMs,
  maxClientFds: 24,
  memoryLimit: 1024 * 1024 * 1024,
  maxClientMemory: 32 * 1024 * 1024,
  maxClientPoolBytes: 32 * 1024 * 1024,
  maxClientTextureBytes: 16 * 1024 * 1024,
  maxClientReadBytesPerFrame: 4 * 1024 * 1024,
});

export interface ServeConfig {
  policy: Policy;
  host?: string;
  port?: number;
  width?: number;
  height?: number;
  fps?: number;
  variant?: string;
  /** Start a fresh compositor when one dies (default true). */
  restart?: boolean;
  limits?: Partial<ServeLimits>;
  allowOrigins?: readonly string[];
  allowHosts?: readonly string[];
  /** Lines for stdout (connections, protocol errors). */
  log?: (line: string) => void;
  /** Lines for stderr (deaths, restarts, the server's own failures). */
  warn?: (line: string) => void;
}

export interface DeathRecord {
  generation: number;
  at: string;
  cause: string;
  clientsClosed: number;
}

export interface HealthStatus {
  status: "ok" | "dead";
  policy: string;
  generation: number;
  restart: boolean;
  clients: number;
  connectionsTotal: number;
  refused: number;
  deaths: number;
  lastDeath: DeathRecord | null;
  kernelProcesses: number;
  /**
   * Kernel frames now and at most ever; the bytes of physical memory the kernel holds now
   * (given back by trims after clients leave, cli/memory-reclaim.ts).
   */
  memory: { framesInUse: number; framesPeak: number; framesLimit: number; tableBytes: number };
  rssBytes: number;
  /** V8 heap in use and reserved, and memory outside it (Buffers, ArrayBuffers). */
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  /** ArrayBuffer backing stores (Buffers, the kernel's SharedArrayBuffer) V8 knows of. */
  arrayBuffersBytes: number;
  /** Trims and full GCs run after clients left, the bytes they gave back, their cost. */
  reclaim: ReclaimStats;
  /** Where the RSS is: see {@link MemoryDetail}. */
  memoryDetail: MemoryDetail;
  /**
   * How late the event loop ran its callbacks since the previous /health answer (ms): the
   * longest time the one thread was kept from serving anyone.
   */
  eventLoopDelay: { p50Ms: number; p99Ms: number; maxMs: number };
  uptimeMs: number;
  limits: ServeLimits;
}

/**
 * The server's memory by owner, for the soak's per-phase breakdown (docs/protocol.md
 * section 7): V8's spaces (bytes committed, `physical_space_size`), the process's resident
 * memory by kind (/proc/self/status: RssAnon, RssFile, RssShmem; 0 where there is no
 * /proc), and glibc's heap (mallinfo2 through the addon; null without it).
 */
export interface MemoryDetail {
  spaces: Record<string, number>;
  rssAnon: number;
  rssFile: number;
  rssShmem: number;
  malloc: MallocStats | null;
}

function procStatusKiB(text: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

function memoryDetail(addon: MemoryReclaimAddon | undefined): MemoryDetail {
  const spaces: Record<string, number> = {};
  for (const s of getHeapSpaceStatistics()) spaces[s.space_name] = s.physical_space_size;
  let status = "";
  try {
    status = readFileSync("/proc/self/status", "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  return {
    spaces,
    rssAnon: procStatusKiB(status, "RssAnon"),
    rssFile: procStatusKiB(status, "RssFile"),
    rssShmem: procStatusKiB(status, "RssShmem"),
    malloc: addon ? addon.mallocStats() : null,
  };
}

interface Generation {
  n: number;
  kernel: Kernel;
  comp: Compositor;
  transports: Set<WebSocketTransport>;
  reported: boolean;
}

/** WebSocket close reasons are at most 123 bytes of UTF-8. */
function closeReason(text: string): string {
  let s = text;
  while (Buffer.byteLength(s) > 123) s = s.slice(0, -1);
  return s;
}

/** The service's URL asked for before it listens (or after it closed). */
export class ServeNotListening extends Error {
  readonly code = "SHMLAB_ERR_SERVE_NOT_LISTENING";
  constructor() {
    super("not listening");
    this.name = "ServeNotListening";
  }
}

export class ServeService {
  readonly limits: ServeLimits;
  private readonly cfg: ServeConfig;
  private readonly log: (line: string) => void;
  private readonly warn: (line: string) => void;
  private gen!: Generation;
  private listener: WebSocketListener | undefined;
  private readonly deaths: DeathRecord[] = [];
  private deathCount = 0;
  private connections = 0;
  private refused = 0;
  private clientSeq = 0;
  private readonly started = Date.now();
  private stopped = false;
  private readonly reclaimer: MemoryReclaimer;
  private addon: MemoryReclaimAddon | undefined;
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });

  constructor(cfg: ServeConfig) {
    this.cfg = cfg;
    this.limits = { ...DEFAULT_SERVE_LIMITS, ...cfg.limits };
    this.log = cfg.log ?? ((l) => console.log(l));
    this.warn = cfg.warn ?? ((l) => console.error(l));
    this.gen = this.newGeneration(1);
    // From the event loop, so no kernel access holds a view of physical memory.
    this.reclaimer = new MemoryReclaimer({ trim: () => this.gen.kernel.frames.trim() });
    this.loopDelay.enable();
  }

  get restart(): boolean {
    return this.cfg.restart ?? true;
  }

  /** The compositor now serving new connections. */
  get compositor(): Compositor {
    return this.gen.comp;
  }

  get url(): string {
    if (!this.listener) throw new ServeNotListening();
    return this.listener.url;
  }

  private newGeneration(n: number): Generation {
    // Every proposal is switched on: a policy uses only what it asks for.
    const kernel = new Kernel({
      features: [...KERNEL_FEATURES],
      memoryLimit: this.limits.memoryLimit,
    });
    const comp = new Compositor({
      kernel,
      policy: this.cfg.policy,
      width: this.cfg.width ?? 1280,
      height: this.cfg.height ?? 720,
      clock: new IntervalClock(1000 / (this.cfg.fps ?? 60)),
      server: this.cfg.variant ? { variant: this.cfg.variant } : {},
      maxClientPoolBytes: this.limits.maxClientPoolBytes,
      maxClientTextureBytes: this.limits.maxClientTextureBytes,
      maxClientReadBytesPerFrame: this.limits.maxClientReadBytesPerFrame,
    });
    const g: Generation = { n, kernel, comp, transports: new Set(), reported: false };
    comp.start({
      onFrame: () => this.reportErrors(g),
      onDeath: (e) => this.onDeath(g, e),
    });
    return g;
  }

  /** Prints the protocol errors recorded since the last frame, then lets them go. */
  private reportErrors(g: Generation): void {
    const errs = g.comp.errors;
    for (const e of errs)
      this.log(`! ${e.client}: ${e.interface}#${e.objectId} error ${e.code}: ${e.message}`);
    errs.length = 0;
  }

  private onDeath(g: Generation, e: ProcessKilled): void {
    if (g.reported) return;
    g.reported = true;
    this.reportErrors(g);
    const cause = `${e.message} — ${g.comp.deathCause}`;
    const rec: DeathRecord = {
      generation: g.n,
      at: new Date().toISOString(),
      cause,
      clientsClosed: g.transports.size,
    };
    this.deathCount++;
    this.deaths.push(rec);
    if (this.deaths.length > 16) this.deaths.shift();
    // The dead compositor closed its clients already (die()); any still open go now.
    for (const t of g.transports) this.closeDead(g, t);
    this.warn(
      `compositor DIED (generation ${g.n}, policy ${g.comp.policy.name}): ${cause}; ${rec.clientsClosed} client(s) disconnected`,
    );
    g.comp.stop();
    this.reclaimer.left(); // the dead generation's memory goes with it
    if (this.restart && !this.stopped) {
      this.gen = this.newGeneration(g.n + 1);
      this.warn(`compositor restarted (generation ${this.gen.n}) for new connections`);
    }
  }

  private closeDead(g: Generation, t: WebSocketTransport): void {
    t.closeWith(CLOSE.SERVER_ERROR, closeReason(`compositor died: ${g.comp.deathCause}`));
  }

  /**
   * The transport the compositor sees: its close() becomes close 1011 with the cause when
   * the compositor is dead, so a client learns why its connection ended.
   */
  private wrap(g: Generation, t: WebSocketTransport): Transport {
    return {
      send: (b, f) => t.send(b, f),
      onMessage: (h) => t.onMessage(h),
      onViolation: (h) => t.onViolation(h),
      onClose: (h) => t.onClose(h),
      close: (r) => (g.comp.alive ? t.close(r) : this.closeDead(g, t)),
      get closed() {
        return t.closed;
      },
      get bufferedBytes() {
        return t.bufferedBytes;
      },
    };
  }

  private accept(t: WebSocketTransport, who: string): void {
    const g = this.gen;
    if (!g.comp.alive) {
      this.refused++;
      this.closeDead(g, t);
      return;
    }
    this.connections++;
    this.reclaimer.arrived();
    const proc = g.kernel.spawn(`remote-${++this.clientSeq}`);
    g.transports.add(t);
    const c = g.comp.connect(this.wrap(g, t), {
      fds: remoteFdBridge(g.kernel, proc, g.comp.proc, { maxFds: this.limits.maxClientFds }),
      syscalls: new ProcessSyscallGateway(proc, { maxMemory: this.limits.maxClientMemory }),
      label: `${proc.name} (${who})`,
    });
    this.log(`+ ${c.label}`);
    c.onClose(() => {
      g.transports.delete(t);
      // The gateway's close made the process exit; waitpid forgets it.
      g.kernel.reap(proc.pid);
      this.reclaimer.left();
      this.log(`- ${c.label}${c.error ? `: ${c.error.message} [${c.error.code}]` : ""}`);
    });
  }

  private onHandlerError(e: unknown): void {
    const g = this.gen;
    if (e instanceof ProcessKilled && e.pid === g.comp.proc.pid) this.onDeath(g, e);
    else this.warn(`handler error: ${(e as Error)?.message ?? String(e)}`);
  }

  private http(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" || path !== "/health") return false;
    const h = this.status();
    this.loopDelay.reset();
    res.writeHead(h.status === "ok" ? 200 : 503, { "content-type": "application/json" });
    res.end(`${JSON.stringify(h)}\n`);
    return true;
  }

  async listen(): Promise<string> {
    const l = this.limits;
    const m = await memoryReclaimAddon();
    this.addon = m.available ? m.addon : undefined;
    this.reclaimer.useAddon(this.addon, m.available ? "" : m.reason);
    this.listener = await listenWebSocket({
      host: this.cfg.host ?? "127.0.0.1",
      port: this.cfg.port ?? 0,
      maxConnections: l.maxClients,
      maxPerAddress: l.maxPerAddress,
      handshakeTimeoutMs: l.handshakeTimeoutMs,
      idleTimeoutMs: l.idleTimeoutMs,
      allowOrigins: this.cfg.allowOrigins,
      allowHosts: this.cfg.allowHosts,
      onHandlerError: (e) => this.onHandlerError(e),
      onConnection: (t, who) => this.accept(t, who),
      onRefused: () => {
        this.refused++;
      },
      onHttpRequest: (req, res) => this.http(req, res),
    });
    return this.listener.url;
  }

  status(): HealthStatus {
    const g = this.gen;
    const fs = g.kernel.frames.getStats();
    const mem = process.memoryUsage();
    return {
      status: g.comp.alive ? "ok" : "dead",
      policy: g.comp.policy.name,
      generation: g.n,
      restart: this.restart,
      clients: g.transports.size,
      connectionsTotal: this.connections,
      refused: this.refused,
      deaths: this.deathCount,
      lastDeath: this.deaths[this.deaths.length - 1] ?? null,
      kernelProcesses: g.kernel.processes.size,
      memory: {
        framesInUse: fs.inUse,
        framesPeak: fs.peak,
        framesLimit: fs.limit,
        tableBytes: fs.bytes,
      },
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      heapTotalBytes: mem.heapTotal,
      externalBytes: mem.external,
      arrayBuffersBytes: mem.arrayBuffers,
      reclaim: { ...this.reclaimer.stats },
      memoryDetail: memoryDetail(this.addon),
      eventLoopDelay: {
        p50Ms: this.loopDelay.percentile(50) / 1e6,
        p99Ms: this.loopDelay.percentile(99) / 1e6,
        maxMs: this.loopDelay.max / 1e6,
      },
      uptimeMs: Date.now() - this.started,
      limits: { ...this.limits },
    };
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.reclaimer.stop();
    this.loopDelay.disable();
    this.gen.comp.stop();
    await this.listener?.close();
  }
}
