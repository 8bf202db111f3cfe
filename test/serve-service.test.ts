/**
 * `shmlab serve`'s service, in-process on loopback (issue 18, findings 1, 2 and 7, and the
 * unbounded tables of finding 8): a dead compositor is an event every client hears about,
 * a restart serves new clients, /health tells scripts; memory a client leaves is given
 * back; one client's memory quota stops it alone; nothing grows per connection.
 */
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type ServeConfig, ServeNotListening, ServeService } from "../cli/serve-service.ts";
import { Client } from "../client/client.ts";
import { getPolicy } from "../compositor/policies/index.ts";
import { connectWebSocket } from "../protocol/transports/websocket.ts";

const MiB = 1024 * 1024;
let services: ServeService[] = [];

afterEach(async () => {
  for (const s of services) await s.close();
  services = [];
});

async function start(policy: string, cfg: Partial<ServeConfig> = {}) {
  const warnings: string[] = [];
  const s = new ServeService({
    policy: getPolicy(policy),
    fps: 100,
    log: () => {},
    warn: (l) => warnings.push(l),
    ...cfg,
  });
  services.push(s);
  const url = await s.listen();
  return { s, url, warnings };
}

async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

async function client(url: string): Promise<Client> {
  const c = new Client(await connectWebSocket(url), undefined, { label: "t" });
  const ready = c.setup();
  await until(() => ready.ready() || c.closed);
  return c;
}

/** Commits one 64x64 frame, then cuts the file to 12 bytes and commits again. */
async function truncateAttack(c: Client): Promise<void> {
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
}

function wsClose(ws: WebSocket): Promise<[number, string]> {
  return new Promise((r) => ws.once("close", (code, why) => r([code, why.toString()])));
}

async function health(url: string): Promise<{ code: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url.replace("ws:", "http:")}/health`);
  return { code: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("serve: a dead compositor is an event", () => {
  it("every client hears close 1011 with the cause, stderr says so, a fresh compositor serves new clients", async () => {
    const { s, url, warnings } = await start("none");
    const bystander = new WebSocket(url);
    await new Promise((r) => bystander.once("open", r));
    const bystanderClosed = wsClose(bystander);
    // The bystander speaks once (a sync) so it is a client, not a silent socket.
    bystander.send(Buffer.from([0, 0x93, 1, 0, 0x91, 2]), { binary: true });
    const attacker = await client(url);
    await truncateAttack(attacker);
    const [code, reason] = await bystanderClosed;
    expect(code).toBe(1011);
    expect(reason).toMatch(/^compositor died: SIGBUS/);
    await until(() => warnings.some((w) => w.startsWith("compositor restarted")));
    expect(warnings[0]).toMatch(/^compositor DIED \(generation 1, policy none\): .*SIGBUS/);
    const h = await health(url);
    expect(h.code).toBe(200);
    expect(h.body).toMatchObject({ status: "ok", generation: 2, deaths: 1 });
    const fresh = await client(url);
    expect(fresh.closed).toBe(false);
    expect(s.compositor.alive).toBe(true);
    fresh.disconnect();
  });

  it("--no-restart: new connections are refused with the cause, and /health says dead (503)", async () => {
    const { url } = await start("none", { restart: false });
    const attacker = await client(url);
    await truncateAttack(attacker);
    await until(() => attacker.closed);
    await until(() => false, 100);
    const late = new WebSocket(url);
    const [code, reason] = await wsClose(late);
    expect(code).toBe(1011);
    expect(reason).toMatch(/compositor died/);
    const h = await health(url);
    expect(h.code).toBe(503);
    expect(h.body).toMatchObject({ status: "dead", deaths: 1 });
  });
});

describe("serve: memory and tables", () => {
  it("memory a client wrote is given back when it leaves (finding 1)", async () => {
    const { s, url } = await start("libwayland", {
      limits: { memoryLimit: 48 * MiB, maxClientMemory: 48 * MiB },
    });
    for (let round = 0; round < 3; round++) {
      const c = await client(url);
      const m = await c.remoteMemfd(32 * MiB).promise;
      for (let off = 0; off < 32 * MiB; off += MiB) {
        const n = await c.remoteSyscall("pwrite", [m.fd, new Uint8Array(MiB).fill(7), off]).promise;
        expect(n, `round ${round} offset ${off}`).toBe(MiB);
      }
      c.disconnect();
      await until(() => s.status().memory.framesInUse === 0);
    }
  });

  it("one client's memory quota refuses it alone with ENOMEM (finding 2)", async () => {
    const { url } = await start("libwayland", { limits: { maxClientMemory: 4 * MiB } });
    const greedy = await client(url);
    const m = await greedy.remoteMemfd(64 * MiB).promise;
    const results: string[] = [];
    for (let off = 0; off < 8 * MiB; off += MiB) {
      try {
        await greedy.remoteSyscall("pwrite", [m.fd, new Uint8Array(MiB), off]).promise;
        results.push("ok");
      } catch (e) {
        results.push((e as { errno?: string }).errno ?? String(e));
      }
    }
    expect(results.slice(0, 4)).toEqual(["ok", "ok", "ok", "ok"]);
    expect(results[4]).toBe("ENOMEM");
    const fal = await greedy.remoteSyscall("fallocate", [m.fd, 0, 0, 64 * MiB]).promise.then(
      () => "ok",
      (e) => (e as { errno?: string }).errno,
    );
    expect(fal).toBe("ENOMEM");
    const honest = await client(url);
    const hm = await honest.remoteMemfd(MiB).promise;
    expect(await honest.remoteSyscall("pwrite", [hm.fd, new Uint8Array(MiB), 0]).promise).toBe(MiB);
    expect(greedy.closed).toBe(false);
    greedy.disconnect();
    honest.disconnect();
  });

  it("a huge sparse pool and buffer are refused with no_memory; the compositor lives (finding 2)", async () => {
    const { s, url } = await start("none", { limits: { memoryLimit: 128 * MiB } });
    const attacker = await client(url);
    const side = 8192;
    const m = await attacker.remoteMemfd(side * side * 4).promise; // sparse: no pages
    const surface = attacker.createSurface();
    const pool = attacker.createPool(m.fd, m.size);
    const b = attacker.createBuffer(pool, 0, side, side, side * 4);
    attacker.attach(surface, b);
    attacker.commit(surface, b);
    await until(() => attacker.closed);
    expect(attacker.error?.code).toBe(2); // wl_display.error no_memory
    await until(() => false, 100);
    expect(s.compositor.alive).toBe(true);
    expect(s.status().generation).toBe(1);
    const honest = await client(url);
    expect(honest.closed).toBe(false);
    honest.disconnect();
  });

  it("client processes are reaped and protocol errors consumed: nothing grows per connection", async () => {
    const { s, url } = await start("libwayland");
    for (let i = 0; i < 30; i++) {
      const c = await client(url);
      await c.remoteMemfd(4096).promise;
      // A protocol error each time (an unknown object), recorded by the compositor.
      c.rawBytes(new Uint8Array([0x93, 77, 0, 0x90]));
      c.disconnect();
    }
    await until(() => s.status().clients === 0);
    await until(() => s.compositor.errors.length === 0, 500);
    expect(s.status().kernelProcesses).toBe(1);
    expect(s.compositor.errors.length).toBe(0);
  });

  it("/health says where the RSS is: V8's spaces, resident memory by kind, glibc's heap", async () => {
    const { s } = await start("libwayland");
    const h = s.status();
    const d = h.memoryDetail;
    expect(d.spaces.new_space).toBeGreaterThan(0);
    expect(d.spaces.old_space).toBeGreaterThan(0);
    if (process.platform === "linux") {
      // /proc/self/status: anonymous + file + shmem pages are the RSS (read a moment apart).
      const sum = d.rssAnon + d.rssFile + d.rssShmem;
      expect(sum).toBeGreaterThan(h.rssBytes * 0.8);
      expect(sum).toBeLessThan(h.rssBytes * 1.2);
    }
    if (h.reclaim.how === "addon") expect(d.malloc?.arenas).toBeGreaterThanOrEqual(1);
    else expect(d.malloc).toBeNull();
  });
});

describe("serve service errors", () => {
  it("asking for the URL before listening is ServeNotListening, with a stable code", () => {
    const s = new ServeService({ policy: getPolicy("libwayland"), fps: 100, log: () => {} });
    services.push(s);
    expect(() => s.url).toThrow(ServeNotListening);
    expect(() => s.url).toThrow(
      expect.objectContaining({ code: "SHMLAB_ERR_SERVE_NOT_LISTENING" }),
    );
  });
});
