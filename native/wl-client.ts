/**
 * Node's side of native/wl-client.c: builds it on demand into .cache/native/ (as host.ts
 * builds host-runner.c), starts one helper process per real client, and talks to it.
 *
 * Commands are synchronous, because ClientSys is: each is written to a FIFO with
 * fs.writeSync and its reply read from a second FIFO with fs.readSync, which block the
 * thread until the helper answers (about 15 µs measured). Both FIFOs are opened by the
 * helper first (O_RDWR), so Node's opens never block, and the reply FIFO reads EOF the
 * moment the helper dies, so a dead helper is an error, never a hang. What the compositor
 * sends arrives asynchronously on the helper's stdout (see the record format in the C file).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { buildNative } from "./build.ts";

export const OP = {
  CONNECT: 1,
  SEND: 2,
  MEMFD: 3,
  FTRUNCATE: 4,
  FALLOCATE: 5,
  ADD_SEALS: 6,
  GET_SEALS: 7,
  FSTAT_SIZE: 8,
  CLOSE: 9,
  DUP: 10,
  PIPE: 11,
  PWRITE: 12,
  PREAD: 13,
  MMAP: 14,
  MUNMAP: 15,
  STORE: 16,
  LOAD: 17,
  FORK: 18,
  CHILD: 19,
  EXIT: 20,
  SHUTDOWN: 21,
  MADVISE: 22,
  MREMAP: 23,
  /** Replies twice: once bound, once a peer is accepted (tests only). */
  LISTEN: 24,
} as const;

/** A status at or below this is -(10000 + signo): the helper is dying of that signal. */
export const SIGNAL_STATUS = -10000;

export type WlClientAvailability =
  | { available: true; binary: string }
  | { available: false; reason: string };

export class WlClientError extends Error {
  readonly code = "SHM_ERR_WL_CLIENT";
}

let availability: Promise<WlClientAvailability> | undefined;

/**
 * Helpers still running. If Node exits (process.exit, the end of the event loop, or a
 * SIGINT whose handler exits) they are killed here; if Node dies of a signal, the kernel
 * kills them (PR_SET_PDEATHSIG in wl-client.c). Either way none outlives the run.
 */
const live = new Set<WlClientProcess>();
let exitHook = false;
function watch(p: WlClientProcess): void {
  live.add(p);
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const q of live) q.kill();
  });
}

/** Builds the helper once (cached by source hash); a missing compiler is a one-line reason. */
export function wlClientAvailability(): Promise<WlClientAvailability> {
  availability ??= build();
  return availability;
}

async function build(): Promise<WlClientAvailability> {
  const b = await buildNative("wl-client");
  return b.available
    ? { available: true, binary: b.binary }
    : { available: false, reason: `${b.reason}: real Wayland client skipped` };
}

export interface Reply {
  status: number;
  vals: number[];
  data: Uint8Array;
}

/** One helper process: one real client (its socket, its memfds, its mappings). */
export class WlClientProcess {
  readonly pid: number;
  /** Set once the process has exited (code or signal name). */
  exit: { code: number | null; signal: string | null } | null = null;
  private readonly child: ChildProcess;
  private cmdFd = -1;
  private respFd = -1;
  private pendingOut: Buffer = Buffer.alloc(0);
  private dataHandler: (bytes: Uint8Array, fds: number[]) => void = () => {};
  private closeHandler: (errno: number) => void = () => {};
  private readonly exitWaiters: (() => void)[] = [];

  private constructor(child: ChildProcess) {
    this.child = child;
    this.pid = child.pid ?? -1;
  }

  /** Starts a helper and waits (asynchronously, at most `timeoutMs`) until it is ready. */
  static async start(binary: string, timeoutMs = 10_000): Promise<WlClientProcess> {
    const dir = mkdtempSync(join(os.tmpdir(), "shmlab-wlc-"));
    const cmdPath = join(dir, "cmd");
    const respPath = join(dir, "resp");
    const child = spawn(binary, [cmdPath, respPath, String(process.pid)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const p = new WlClientProcess(child);
    watch(p);
    child.stderr?.on("data", () => {});
    child.on("exit", (code, signal) => {
      live.delete(p);
      p.exit = { code, signal };
      for (const w of p.exitWaiters.splice(0)) w();
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new WlClientError("wl-client did not start")), timeoutMs);
        child.on("error", (e) => {
          clearTimeout(t);
          reject(new WlClientError(`wl-client: ${e.message}`));
        });
        child.on("exit", () => {
          clearTimeout(t);
          reject(new WlClientError("wl-client exited before it was ready"));
        });
        p.onReady = () => {
          clearTimeout(t);
          resolve();
        };
        child.stdout?.on("data", (d: Buffer) => p.onStdout(d));
      });
      // The helper holds both FIFOs open O_RDWR: neither open blocks.
      p.cmdFd = openSync(cmdPath, "w");
      p.respFd = openSync(respPath, "r");
    } catch (e) {
      p.kill();
      throw e;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return p;
  }

  private onReady: () => void = () => {};

  onData(fn: (bytes: Uint8Array, fds: number[]) => void): void {
    this.dataHandler = fn;
  }

  /** The socket closed: errno 0 for an orderly EOF from the compositor. */
  onSocketClosed(fn: (errno: number) => void): void {
    this.closeHandler = fn;
  }

  private onStdout(d: Buffer): void {
    this.pendingOut = this.pendingOut.length ? Buffer.concat([this.pendingOut, d]) : d;
    for (;;) {
      const b = this.pendingOut;
      if (b.length < 8) return;
      const kind = b.readUInt32LE(0);
      const nfds = b.readUInt32LE(4);
      const head = 8 + 4 * nfds;
      if (b.length < head + 4) return;
      const len = b.readUInt32LE(head);
      if (b.length < head + 4 + len) return;
      const fds: number[] = [];
      for (let i = 0; i < nfds; i++) fds.push(b.readInt32LE(8 + 4 * i));
      const bytes = new Uint8Array(b.subarray(head + 4, head + 4 + len));
      this.pendingOut = b.subarray(head + 4 + len);
      if (kind === 1) this.dataHandler(bytes, fds);
      else if (kind === 2) this.closeHandler(Buffer.from(bytes).readInt32LE(0));
      else if (kind === 3) this.onReady();
    }
  }

  /**
   * Runs one command and returns its reply. Throws WlClientError when the helper is gone
   * (the reply FIFO reads EOF) — a signal it died of is in the reply before that.
   */
  call(op: number, args: readonly (number | bigint)[] = [], data?: Uint8Array): Reply {
    const rec = encodeCommand(op, args, data);
    return this.transact(rec);
  }

  /** Runs `inner` (an encoded command) in forked child `pid` of this helper. */
  callChild(pid: number, op: number, args: readonly (number | bigint)[], data?: Uint8Array) {
    return this.call(OP.CHILD, [pid], encodeCommand(op, args, data));
  }

  private transact(rec: Uint8Array): Reply {
    if (this.cmdFd < 0) throw new WlClientError(`wl-client ${this.pid} is closed`);
    try {
      writeAll(this.cmdFd, rec);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EPIPE")
        throw new WlClientError(`wl-client ${this.pid} is gone`);
      throw e;
    }
    return this.readReply();
  }

  /** Reads one more reply (the second reply of LISTEN). */
  readReply(): Reply {
    if (this.respFd < 0) throw new WlClientError(`wl-client ${this.pid} is closed`);
    const head = this.readExactly(8);
    const status = head.readInt32LE(0);
    const nvals = head.readUInt32LE(4);
    const vb = this.readExactly(8 * nvals + 4);
    const vals: number[] = [];
    for (let i = 0; i < nvals; i++) vals.push(Number(vb.readBigInt64LE(8 * i)));
    const len = vb.readUInt32LE(8 * nvals);
    const data = len ? new Uint8Array(this.readExactly(len)) : new Uint8Array(0);
    return { status, vals, data };
  }

  private readExactly(n: number): Buffer {
    const b = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      const r = readSync(this.respFd, b, got, n - got, null);
      if (r === 0) throw new WlClientError(`wl-client ${this.pid} died mid-command`);
      got += r;
    }
    return b;
  }

  /** Resolves once the process has exited. */
  exited(): Promise<void> {
    if (this.exit) return Promise.resolve();
    return new Promise((r) => this.exitWaiters.push(r));
  }

  /** SIGKILL and close the channel; idempotent. Await `exited()` for the status. */
  kill(): void {
    if (!this.exit && this.child.pid) {
      try {
        process.kill(this.child.pid, "SIGKILL");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
      }
    }
    for (const fd of [this.cmdFd, this.respFd]) if (fd >= 0) closeSync(fd);
    this.cmdFd = -1;
    this.respFd = -1;
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off);
}

export function encodeCommand(
  op: number,
  args: readonly (number | bigint)[],
  data: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const b = Buffer.alloc(8 + 8 * args.length + 4 + data.length);
  b.writeUInt32LE(op, 0);
  b.writeUInt32LE(args.length, 4);
  args.forEach((v, i) => {
    b.writeBigInt64LE(BigInt(v), 8 + 8 * i);
  });
  b.writeUInt32LE(data.length, 8 + 8 * args.length);
  b.set(data, 12 + 8 * args.length);
  return b;
}

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(os.constants.errno).map(([k, v]) => [v, k]),
);

/** "EINVAL" for 22 (from Node's own table of the platform's errno values). */
export function errnoName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `E${n}`;
}

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(os.constants.signals).map(([k, v]) => [v, k]),
);
export function signalName(n: number): string {
  return SIGNAL_NAMES.get(n) ?? `SIG${n}`;
}
