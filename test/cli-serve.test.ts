/**
 * `shmlab serve` as a remote attacker meets it: a real process listening on a loopback
 * WebSocket, a client that makes its memfd through the syscall channel, commits, then
 * truncates the file. Under libwayland the client gets wl_shm.invalid_fd and the server
 * lives; under none the server reports its own death (and the Node process goes on).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Client } from "../client/client.ts";
import { connectWebSocket } from "../protocol/transports/websocket.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");

async function serve(
  policy: string,
): Promise<{ child: ChildProcess; url: string; out: () => string }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(repo, "cli/main.ts"), "serve", "--policy", policy, "--port", "0"],
    { cwd: repo, env: { ...process.env, NO_COLOR: "1" } },
  );
  let out = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 30_000);
    const check = () => {
      const m = /listening on (ws:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      } else setTimeout(check, 50);
    };
    check();
  });
  return { child, url, out: () => out };
}

async function until(c: Client, pred: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) {
    await Promise.race([c.nextActivity(), new Promise((r) => setTimeout(r, 50))]);
  }
}

/** Connects, commits one 64x64 frame (4 pages), then cuts the file to 12 bytes and commits again. */
async function attack(url: string): Promise<Client> {
  const c = new Client(await connectWebSocket(url), undefined, { label: "remote" });
  const ready = c.setup();
  await until(c, () => ready.ready());
  // More than one page: the page straddling the new EOF (12 bytes) stays readable.
  const w = 64;
  const memfd = await c.remoteMemfd(w * w * 4).promise;
  const surface = c.createSurface();
  const pool = c.createPool(memfd.fd, memfd.size);
  const b = c.createBuffer(pool, 0, w, w, w * 4);
  await c.remoteDraw(memfd, b, 1, 0, 0).promise;
  c.attach(surface, b);
  c.commit(surface, b);
  await c.remoteSyscall("ftruncate", [memfd.fd, 12]).promise;
  c.attach(surface, b);
  c.damage(surface, 0, 0, w, w);
  c.commit(surface, b);
  await until(c, () => c.closed);
  return c;
}

async function stop(child: ChildProcess): Promise<number | null> {
  child.kill("SIGINT");
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

describe("shmlab serve", () => {
  it("libwayland: the truncating remote client gets wl_shm.invalid_fd, the server lives", async () => {
    const s = await serve("libwayland");
    try {
      const c = await attack(s.url);
      expect(c.error?.code).toBe(2); // wl_shm.error.invalid_fd
      expect(c.error?.message).toMatch(/error accessing SHM buffer/);
      expect(s.out()).not.toMatch(/compositor DIED/);
    } finally {
      const code = await stop(s.child);
      expect(code).toBe(0);
      expect(s.out()).toMatch(/"alive": true/);
    }
  });

  it("none: the server reports its own SIGBUS death, restarts the compositor, and exits 1 on SIGINT", async () => {
    const s = await serve("none");
    try {
      const c = await attack(s.url);
      expect(c.closed).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      expect(s.out()).toMatch(/compositor DIED \(generation 1, policy none\): .*SIGBUS/);
      expect(s.out()).toMatch(/compositor restarted \(generation 2\)/);
    } finally {
      const code = await stop(s.child);
      expect(code).toBe(1);
      expect(s.out()).toMatch(/"deaths": 1/);
      expect(s.out()).toMatch(/"generation": 2/);
    }
  });
});
