/**
 * One real X11 client's hands: the native helper native/x11-client.c (built on demand,
 * native/build.ts), which owns the client's socket and its memfds and does the syscalls it
 * is told. Commands are answered strictly in order, one line each (the helper's header
 * documents the line protocol), so a FIFO of resolvers is the whole client side.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { buildNative } from "../native/build.ts";
import type { ExitInfo } from "./target.ts";

export class NativeError extends Error {
  readonly code = "SHM_ERR_X11_NATIVE";
}

/** A syscall the helper made failed: `errno` is its name (EPERM, EBADF...). */
export class SyscallError extends Error {
  readonly code = "SHM_ERR_X11_SYSCALL";
  constructor(
    readonly errno: string,
    what: string,
  ) {
    super(`${what}: ${errno}`);
  }
}

export async function x11HelperAvailability(): Promise<
  { available: true; binary: string } | { available: false; why: string }
> {
  const b = await buildNative("x11-client");
  return b.available ? { available: true, binary: b.binary } : { available: false, why: b.reason };
}

/**
 * Helpers still running. If Node exits (process.exit, the end of the event loop, or a
 * SIGINT whose handler exits) they are killed here; if Node dies of a signal, the kernel
 * kills them (PR_SET_PDEATHSIG in x11-client.c). Either way none outlives the run.
 */
const live = new Set<X11Helper>();
let exitHook = false;
function watch(h: X11Helper): void {
  live.add(h);
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const q of live) q.kill();
  });
}

/** How many helpers are running now (0 after every run: none outlives its driver). */
export function liveX11Helpers(): number {
  return live.size;
}

export class X11Helper {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: { resolve(s: string): void; reject(e: Error): void }[] = [];
  private exit: ExitInfo | null = null;

  private constructor(binary: string) {
    // Our pid: the helper checks its parent is still us after PR_SET_PDEATHSIG.
    this.child = spawn(binary, [String(process.pid)], { stdio: ["pipe", "pipe", "pipe"] });
    watch(this);
    this.child.stdin.on("error", (e: NodeJS.ErrnoException) => {
      // The helper died: its pending commands are answered by the exit handler below.
      if (e.code !== "EPIPE") throw e;
    });
    const lines = createInterface({ input: this.child.stdout });
    lines.on("line", (l) => this.waiting.shift()?.resolve(l));
    this.child.on("exit", (code, signal) => {
      live.delete(this);
      this.exit = { code: signal ? null : code, signal: signal ?? null };
      for (const w of this.waiting.splice(0))
        w.reject(new NativeError(`x11 helper exited (${signal ?? code}) before answering`));
    });
  }

  static async start(): Promise<X11Helper> {
    const a = await x11HelperAvailability();
    if (!a.available) throw new NativeError(a.why);
    return new X11Helper(a.binary);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  exited(): ExitInfo | null {
    return this.exit;
  }

  /** Sends one command line; resolves with the helper's answer line. */
  command(line: string): Promise<string> {
    if (this.exit) return Promise.reject(new NativeError("x11 helper is not running"));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(`${line}\n`);
    });
  }

  /** A command whose answer is "ok ..." (returns the words after ok) or "err ERRNO". */
  async ok(line: string): Promise<string[]> {
    const a = await this.command(line);
    const [head, ...rest] = a.split(" ");
    if (head === "ok") return rest;
    if (head === "err") throw new SyscallError(rest[0] ?? "EIO", line.split(" ")[0]);
    throw new NativeError(`unexpected answer to ${line.split(" ")[0]}: ${a.slice(0, 80)}`);
  }

  async memfd(flags = 0): Promise<number> {
    return Number((await this.ok(`memfd ${flags}`))[0]);
  }

  async pipe(): Promise<[number, number]> {
    const [r, w] = await this.ok("pipe");
    return [Number(r), Number(w)];
  }

  async ftruncate(fd: number, size: number): Promise<void> {
    await this.ok(`ftruncate ${fd} ${size}`);
  }

  async pwrite(fd: number, data: Uint8Array, offset: number): Promise<number> {
    return Number(
      (await this.ok(`pwrite ${fd} ${offset} ${Buffer.from(data).toString("hex")}`))[0],
    );
  }

  async seal(fd: number, bits: number): Promise<void> {
    await this.ok(`seal ${fd} ${bits}`);
  }

  async punch(fd: number, offset: number, len: number): Promise<void> {
    await this.ok(`punch ${fd} ${offset} ${len}`);
  }

  async close(fd: number): Promise<void> {
    await this.ok(`close ${fd}`);
  }

  async dup(fd: number): Promise<number> {
    return Number((await this.ok(`dup ${fd}`))[0]);
  }

  /** A forked child process truncates the file and exits; resolves with the child's pid. */
  async forkTruncate(fd: number, size: number): Promise<number> {
    return Number((await this.ok(`forktrunc ${fd} ${size}`))[0]);
  }

  /** st_size of an fd. */
  async fstatSize(fd: number): Promise<number> {
    return Number((await this.ok(`fstat ${fd}`))[0]);
  }

  /** fallocate mode 0: allocates [offset, offset+len), growing the file if needed. */
  async fallocate(fd: number, offset: number, len: number): Promise<void> {
    await this.ok(`falloc ${fd} ${offset} ${len}`);
  }

  /** A forked child that stays, with this process's fd table as of now; its pid. */
  async fork(): Promise<number> {
    return Number((await this.ok("fork"))[0]);
  }

  /** The forked child truncates its copy of `fd` (ESRCH: there is no child). */
  async childTruncate(fd: number, size: number): Promise<void> {
    await this.ok(`childtrunc ${fd} ${size}`);
  }

  /** The forked child exits (and is reaped). */
  async childExit(): Promise<void> {
    await this.ok("childexit");
  }

  /** SIGKILL, synchronously (the exit hook cannot wait). */
  kill(): void {
    if (!this.exit) this.child.kill("SIGKILL");
  }

  /** Ends the helper (it closes its socket and fds by exiting) and waits for it. */
  async stop(): Promise<void> {
    if (this.exit) return;
    const done = new Promise<void>((r) => this.child.once("exit", () => r()));
    this.child.stdin.end("exit\n");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 2000);
    await done;
    clearTimeout(timer);
  }
}
