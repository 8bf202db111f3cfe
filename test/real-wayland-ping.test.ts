/**
 * The readiness ping (real/wayland-ping.ts) against stand-in Unix socket servers: what it
 * sends, and a stable code for each way it can fail, which instance.ts's retry matches on.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { pingWayland, WaylandPingError } from "../real/wayland-ping.ts";

const dirs: string[] = [];
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function serve(onConn: (c: Socket) => void): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "shmlab-ping-"));
  dirs.push(dir);
  const path = join(dir, "wayland-0");
  const server = createServer((c) => {
    c.on("error", () => {});
    onConn(c);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return path;
}

async function failure(p: Promise<void>): Promise<WaylandPingError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(WaylandPingError);
  return e as WaylandPingError;
}

describe("pingWayland", () => {
  it("sends get_registry(2) and sync(3) on wl_display and resolves on wl_callback(3).done", async () => {
    let got = Buffer.alloc(0);
    const path = await serve((c) =>
      c.on("data", (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.length >= 24) {
          const done = Buffer.alloc(12);
          done.writeUInt32LE(3, 0);
          done.writeUInt32LE(12 << 16, 4);
          c.write(done);
        }
      }),
    );
    await pingWayland(path, 5000);
    // wl_display is object 1; get_registry is its request 1, sync its request 0
    const words = Array.from({ length: 6 }, (_, i) => got.readUInt32LE(4 * i));
    expect(words).toEqual([1, (12 << 16) | 1, 2, 1, (12 << 16) | 0, 3]);
  });

  it("a server that closes (or resets) is SHMLAB_ERR_PING_CLOSED, retried", async () => {
    const e = await failure(pingWayland(await serve((c) => c.destroy()), 5000));
    expect(e.code).toBe("SHMLAB_ERR_PING_CLOSED");
    expect(e.notYet).toBe(true);
  });

  it("a server that never answers is SHMLAB_ERR_PING_TIMEOUT, retried", async () => {
    const e = await failure(pingWayland(await serve(() => {}), 50));
    expect(e.code).toBe("SHMLAB_ERR_PING_TIMEOUT");
    expect(e.notYet).toBe(true);
  });

  it("a missing socket is SHMLAB_ERR_PING_SOCKET with ENOENT, retried; other errnos are not", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shmlab-ping-"));
    dirs.push(dir);
    const e = await failure(pingWayland(join(dir, "none"), 5000));
    expect(e.code).toBe("SHMLAB_ERR_PING_SOCKET");
    expect(e.errno).toBe("ENOENT");
    expect(e.notYet).toBe(true);
    // a path through a regular file (ENOTDIR) will never become a socket: not retried
    writeFileSync(join(dir, "file"), "");
    const d = await failure(pingWayland(join(dir, "file", "wayland-0"), 5000));
    expect(d.code).toBe("SHMLAB_ERR_PING_SOCKET");
    expect(d.errno).not.toMatch(/ECONNREFUSED|ENOENT/);
    expect(d.notYet).toBe(false);
  });
});
