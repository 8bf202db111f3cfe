/**
 * An example remote client, written against the wire format alone (docs/protocol.md) with
 * nothing from shmlab but the format: `ws` for the socket and `msgpackr` for msgpack. It is
 * meant to be read beside the doc when writing a client in another language.
 *
 * It connects, lists the globals, binds wl_compositor and wl_shm, makes a memfd through the
 * syscall channel, writes a 64x64 gradient into it, seals it against shrinking, creates a
 * pool, a buffer and a surface, attaches, damages and commits, and waits for the
 * wl_buffer.release and the frame callback.
 *
 *   npx tsx examples/ws-client.ts ws://127.0.0.1:PORT   talk to a running server
 *   npx tsx examples/ws-client.ts                       start the protocol test server
 *                                                       in-process and talk to it
 *
 * Against a compositor with a real policy: `npx shmlab serve --policy libwayland` prints the
 * URL to pass. Without a URL it talks to the protocol-level test server
 * (protocol/testing/test-server.ts, standalone: examples/protocol-test-server.ts).
 */
import { pathToFileURL } from "node:url";
import { Packr, Unpackr } from "msgpackr";
import { WebSocket } from "ws";

// The codec options every peer must use (docs/protocol.md, "msgpack").
const OPTIONS = {
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: false,
  useFloat32: 0,
  int64AsType: "number",
  encodeUndefinedAsNil: true,
} as const;
const packr = new Packr(OPTIONS);
const unpackr = new Unpackr(OPTIONS);

// Opcodes, from wayland.xml order.
const WL_DISPLAY = { sync: 0, get_registry: 1, ev: { error: 0, delete_id: 1 } };
const WL_REGISTRY = { bind: 0, ev: { global: 0 } };
const WL_COMPOSITOR = { create_surface: 0 };
const WL_SURFACE = { attach: 1, frame: 3, commit: 6, damage_buffer: 9 };
const WL_SHM = { create_pool: 0, ev: { format: 0 } };
const WL_SHM_POOL = { create_buffer: 0 };
const WL_BUFFER = { ev: { release: 0 } };
const XRGB8888 = 1;
const MFD_ALLOW_SEALING = 2;
const F_ADD_SEALS = 1033;
const F_SEAL_SHRINK = 2;

/** u8 fd count, u32le fds, msgpack frame. */
function envelope(frame: Uint8Array, fds: number[] = []): Buffer {
  const head = Buffer.alloc(1 + 4 * fds.length);
  head[0] = fds.length;
  for (let i = 0; i < fds.length; i++) head.writeUInt32LE(fds[i], 1 + 4 * i);
  return Buffer.concat([head, frame]);
}

export interface ExampleResult {
  globals: [number, string, number][];
  formats: number[];
  released: boolean;
  frameDone: boolean;
  error: [number, number, string] | null;
}

export async function runExample(
  url: string,
  log: (s: string) => void = () => {},
): Promise<ExampleResult> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  ws.on("error", (e) => log(`socket error: ${e.message}`));

  const result: ExampleResult = {
    globals: [],
    formats: [],
    released: false,
    frameDone: false,
    error: null,
  };
  let nextId = 2; // 1 is wl_display; ids are allocated densely from 2
  const newId = () => nextId++;
  let seq = 0;
  const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Map<number, (opcode: number, args: unknown[]) => void>();

  const send = (objectId: number, opcode: number, args: unknown[], fds: number[] = []) =>
    ws.send(envelope(packr.pack([objectId, opcode, args]), fds));
  const syscall = (name: string, args: unknown[]) =>
    new Promise<unknown>((resolve, reject) => {
      const s = ++seq;
      calls.set(s, { resolve, reject });
      ws.send(envelope(packr.pack([0, s, name, args])));
    });
  const roundtrip = () =>
    new Promise<void>((resolve) => {
      const cb = newId();
      listeners.set(cb, () => resolve());
      send(1, WL_DISPLAY.sync, [cb]);
    });

  ws.on("message", (data: Buffer) => {
    const nfds = data[0];
    const frame = unpackr.unpack(data.subarray(1 + 4 * nfds)) as unknown[];
    if (frame[0] === 0) {
      const [, s, errno, value] = frame as [0, number, string | null, unknown];
      const c = calls.get(s);
      calls.delete(s);
      if (errno) c?.reject(new Error(errno));
      else c?.resolve(value);
      return;
    }
    const [objectId, opcode, args] = frame as [number, number, unknown[]];
    if (objectId === 1 && opcode === WL_DISPLAY.ev.error) {
      result.error = args as [number, number, string];
      log(`wl_display.error: object ${args[0]} code ${args[1]}: ${args[2]}`);
      return;
    }
    if (objectId === 1 && opcode === WL_DISPLAY.ev.delete_id) return; // id args[0] may be reused
    listeners.get(objectId)?.(opcode, args);
  });
  const closed = new Promise<void>((r) => ws.once("close", () => r()));

  const registry = newId();
  listeners.set(registry, (op, args) => {
    if (op === WL_REGISTRY.ev.global) result.globals.push(args as [number, string, number]);
  });
  send(1, WL_DISPLAY.get_registry, [registry]);
  await roundtrip();
  log(`globals: ${result.globals.map(([n, i, v]) => `${n}:${i} v${v}`).join(", ")}`);

  const global = (name: string) => {
    const g = result.globals.find((x) => x[1] === name);
    if (!g) throw new Error(`server has no ${name}`);
    return g;
  };
  const compositor = newId();
  const [compName] = global("wl_compositor");
  send(registry, WL_REGISTRY.bind, [compName, "wl_compositor", 4, compositor]);
  const shm = newId();
  const [shmName] = global("wl_shm");
  listeners.set(shm, (op, args) => {
    if (op === WL_SHM.ev.format) result.formats.push(args[0] as number);
  });
  send(registry, WL_REGISTRY.bind, [shmName, "wl_shm", 2, shm]);

  // Pixels: a memfd in this client's process on the server, written with pwrite.
  const w = 64;
  const h = 64;
  const stride = w * 4;
  const size = stride * h;
  const fd = (await syscall("memfd_create", ["example-pixels", MFD_ALLOW_SEALING])) as number;
  await syscall("ftruncate", [fd, size]);
  const px = new Uint8Array(size);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) px.set([x * 4, y * 4, 128, 255], y * stride + x * 4); // B, G, R, X
  const written = (await syscall("pwrite", [fd, px, 0])) as number;
  await syscall("fcntl", [fd, F_ADD_SEALS, F_SEAL_SHRINK]);
  log(`memfd ${fd}: ${written} bytes written, sealed against shrinking`);

  const pool = newId();
  send(shm, WL_SHM.create_pool, [pool, 0, size], [fd]); // fd slot 0 of this message
  const buffer = newId();
  send(pool, WL_SHM_POOL.create_buffer, [buffer, 0, w, h, stride, XRGB8888]);
  listeners.set(buffer, (op) => {
    if (op === WL_BUFFER.ev.release) result.released = true;
  });
  const surface = newId();
  send(compositor, WL_COMPOSITOR.create_surface, [surface]);
  const frameCb = newId();
  listeners.set(frameCb, () => {
    result.frameDone = true;
  });
  send(surface, WL_SURFACE.attach, [buffer, 0, 0]);
  send(surface, WL_SURFACE.damage_buffer, [0, 0, w, h]);
  send(surface, WL_SURFACE.frame, [frameCb]);
  send(surface, WL_SURFACE.commit, []);
  await Promise.race([roundtrip(), closed]);
  log(`committed: buffer released=${result.released}, frame done=${result.frameDone}`);
  ws.close();
  await closed;
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const url = process.argv[2];
  const log = (s: string) => console.log(s);
  if (url) {
    await runExample(url, log);
  } else {
    const { createTestServer } = await import("../protocol/testing/test-server.ts");
    const ts = createTestServer();
    const l = await ts.listen();
    log(`protocol test server on ${l.url}`);
    const r = await runExample(l.url, log);
    const c = ts.commits[0];
    log(
      `compositor saw ${ts.commits.length} commit(s)${c ? `: ${c.width}x${c.height}, first pixel ${[...c.bytes.subarray(0, 4)]}` : ""}`,
    );
    await l.close();
    process.exitCode = r.error || !r.released ? 1 : 0;
  }
}
