/**
 * A minimal Xvfb for the X11 driver's own tests, until the lab's supervision (real/xvfb.ts)
 * lands in main: `Xvfb -displayfd FD -nolisten tcp -screen 0 WxHx24`, a private display
 * number chosen by the server, always killed by the caller (afterAll) and on process exit.
 * It implements RealInstance so the driver runs against it exactly as against the lab's.
 */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import type { ExitInfo, RealInstance } from "../real/target.ts";

export function xvfbBinary(): string | null {
  const r = spawnSync("sh", ["-c", "command -v Xvfb"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** "21.1.7" from the Xvfb log's "X.Org X Server 1.21.1.7" line, or "unknown". */
function versionFrom(log: string): string {
  const m = /X\.Org X Server 1\.(\d+\.\d+\.\d+)/.exec(log);
  return m ? m[1] : "unknown";
}

export async function startXvfb(): Promise<RealInstance> {
  const bin = xvfbBinary();
  if (!bin) throw new Error("Xvfb not installed");
  const dir = mkdtempSync(join(os.tmpdir(), "shmlab-xvfb-"));
  const logPath = join(dir, "xvfb.log");
  const logFd = openSync(logPath, "w");
  const child = spawn(
    bin,
    ["-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "640x480x24", "-noreset"],
    { stdio: ["ignore", logFd, logFd, "pipe"] },
  );
  closeSync(logFd);
  let exit: ExitInfo | null = null;
  const exited = new Promise<ExitInfo>((resolve) =>
    child.on("exit", (code, signal) => {
      exit = { code: signal ? null : code, signal: signal ?? null };
      resolve(exit);
    }),
  );
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const display = await new Promise<string>((resolve, reject) => {
    let out = "";
    const fdPipe = child.stdio[3] as NodeJS.ReadableStream;
    fdPipe.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out.trim());
    });
    void exited.then((e) => reject(new Error(`Xvfb exited at start (${e.signal ?? e.code})`)));
  });
  const { readFileSync } = await import("node:fs");
  const version = versionFrom(readFileSync(logPath, "utf8"));
  return {
    kind: "xvfb",
    version,
    pid: child.pid ?? -1,
    endpoint: { kind: "x11", display: `:${display}`, socket: `/tmp/.X11-unix/X${display}` },
    logPath,
    exited: () => exit,
    async stop() {
      if (!exit) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(t);
      }
      process.removeListener("exit", killOnExit);
      rmSync(dir, { recursive: true, force: true });
      return exit ?? (await exited);
    },
  };
}
