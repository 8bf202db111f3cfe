import { describe, expect, it, vi } from "vitest";
import { NEW_ID, ProtocolClient } from "../protocol/client.ts";
import { encodeControl, encodeMessage } from "../protocol/codec.ts";
import { interfaceError, PROTO_ERR } from "../protocol/errors.ts";
import { DISPLAY_ERROR, SHM_ERROR } from "../protocol/schema.ts";
import { ProtocolServer } from "../protocol/server.ts";
import { createTestServer } from "../protocol/testing/test-server.ts";
import { createPair } from "../protocol/transports/pair.ts";
import { rawPeer, settle } from "./protocol-helpers.ts";

/** Server with wl_compositor (global 1) and wl_shm (global 2) and no-op handlers. */
function plainServer(opts: ConstructorParameters<typeof ProtocolServer>[0] = {}) {
  const s = new ProtocolServer(opts);
  s.addGlobal("wl_compositor", 4);
  s.addGlobal("wl_shm", 2);
  return s;
}

/** Raw peer that has a registry (2), a compositor (3) and a surface (4). */
async function withSurface(s: ProtocolServer) {
  const p = rawPeer(s);
  p.send(1, 1, [2]); // get_registry
  p.send(2, 0, [1, "wl_compositor", 4, 3]); // bind
  p.send(3, 0, [4]); // create_surface
  await settle();
  return p;
}

describe("the server implements wl_display and wl_registry as libwayland does", () => {
  it("sync answers done then delete_id for the callback", async () => {
    const p = rawPeer(plainServer());
    p.send(1, 0, [2]);
    await settle();
    expect(p.events(2)).toEqual([[0, [1]]]);
    expect(p.events(1)).toEqual([[1, [2]]]);
    expect(p.remote.objects.lookup(2)).toBeUndefined();
  });

  it("get_registry lists every global, and new globals reach existing registries", async () => {
    const s = plainServer();
    const p = rawPeer(s);
    p.send(1, 1, [2]);
    await settle();
    expect(p.events(2)).toEqual([
      [0, [1, "wl_compositor", 4]],
      [0, [2, "wl_shm", 2]],
    ]);
    const name = s.addGlobal("wl_compositor", 1);
    s.removeGlobal(name);
    await settle();
    expect(p.events(2).slice(2)).toEqual([
      [0, [3, "wl_compositor", 1]],
      [1, [3]],
    ]);
  });

  it.each([
    ["an unknown global", [9, "wl_shm", 1, 3], /invalid global wl_shm \(9\)/],
    ["the wrong interface", [1, "wl_shm", 1, 3], /invalid interface for global 1/],
    ["version 0", [2, "wl_shm", 0, 3], /invalid version/],
    ["a version above the global's", [2, "wl_shm", 3, 3], /invalid version .* have 2, wanted 3/],
  ])("bind of %s is invalid_object against the registry", async (_what, args, text) => {
    const p = rawPeer(plainServer());
    p.send(1, 1, [2]);
    p.send(2, 0, args);
    await settle();
    const [obj, code, msg] = p.error()!;
    expect([obj, code]).toEqual([2, DISPLAY_ERROR.invalid_object]);
    expect(msg).toMatch(text);
    expect(p.closed).toBe(true);
  });

  it("a bound object gets the version the client asked for", async () => {
    const s = plainServer();
    const p = rawPeer(s);
    p.send(1, 1, [2]);
    p.send(2, 0, [1, "wl_compositor", 2, 3]);
    p.send(3, 0, [4]);
    await settle();
    expect(p.remote.resource(3)).toMatchObject({ interface: "wl_compositor", version: 2 });
    // wl_resource_create(client, &wl_surface_interface, wl_resource_get_version(resource), id)
    expect(p.remote.resource(4)).toMatchObject({ interface: "wl_surface", version: 2 });
  });
});

describe("object lifetime: delete_id and id reuse", () => {
  it("a destructor request destroys the object and sends delete_id", async () => {
    const p = await withSurface(plainServer());
    p.send(4, 0, []); // wl_surface.destroy
    await settle();
    expect(p.events(1)).toContainEqual([1, [4]]);
    expect(p.remote.resource(4)).toBeUndefined();
  });

  it("a request to a destroyed object is invalid_object", async () => {
    const p = await withSurface(plainServer());
    p.send(4, 0, []);
    p.send(4, 6, []); // commit on the dead surface
    await settle();
    expect(p.error()?.slice(0, 2)).toEqual([1, DISPLAY_ERROR.invalid_object]);
  });

  it("after delete_id the client may create an object with the same id", async () => {
    const p = await withSurface(plainServer());
    p.send(4, 0, []);
    p.send(3, 0, [4]);
    p.send(4, 6, []);
    await settle();
    expect(p.error()).toBeUndefined();
    expect(p.remote.resource(4)?.interface).toBe("wl_surface");
  });

  it("a new_id that skips ahead or is in use is invalid_method", async () => {
    const gap = await withSurface(plainServer());
    gap.send(3, 0, [6]);
    await settle();
    expect(gap.error()?.slice(0, 2)).toEqual([1, DISPLAY_ERROR.invalid_method]);
    expect(gap.error()?.[2]).toMatch(/not a valid new object id \(6\): gap/);
    const used = await withSurface(plainServer());
    used.send(3, 0, [4]);
    await settle();
    expect(used.error()?.[2]).toMatch(/in-use/);
  });
});

describe("every malformed input is one wl_display.error and a disconnect", () => {
  const cases: [string, (p: ReturnType<typeof rawPeer>) => void, string, number][] = [
    // A cut message is not in this list: it waits for its rest (the next describe).
    ["empty frame", (p) => p.sendBytes(new Uint8Array(0)), "TRUNCATED", 1],
    [
      "trailing bytes",
      (p) => p.sendBytes(new Uint8Array([...encodeMessage(4, 6, []), 0])),
      "TRAILING",
      1,
    ],
    ["deep nesting", (p) => p.sendBytes(new Uint8Array(64).fill(0x91)), "TOO_DEEP", 1],
    ["reserved byte", (p) => p.sendBytes(new Uint8Array([0x93, 4, 6, 0x91, 0xc1])), "RESERVED", 1],
    [
      "extension type",
      (p) => p.sendBytes(new Uint8Array([0x93, 4, 6, 0x91, 0xd4, 0x72, 0])),
      "RESERVED",
      1,
    ],
    ["oversize", (p) => p.sendBytes(new Uint8Array(5000)), "TOO_LARGE", 1],
    ["wrong types", (p) => p.send(4, 2, ["0", 0, 1, 1]), "BAD_ARG", 1],
    ["unknown object", (p) => p.send(77, 0, []), "UNKNOWN_OBJECT", 0],
    ["opcode past the interface", (p) => p.send(4, 10, [0]), "UNKNOWN_OPCODE", 1],
    ["new_id out of sequence", (p) => p.send(3, 0, [100]), "BAD_NEW_ID", 1],
    ["missing fd", (p) => p.send(5, 0, [6, 0, 4096]), "BAD_FD", 1],
    [
      "syscall without a gateway",
      (p) => p.sendBytes(encodeControl([0, 1, "close", [3]])),
      "NO_SYSCALLS",
      0,
    ],
  ];

  it.each(cases)("%s", async (_name, attack, code, wlCode) => {
    const errors: string[] = [];
    const s = plainServer({ onClientError: (_c, e) => errors.push(e.code) });
    const victim = await withSurface(s);
    victim.send(2, 0, [2, "wl_shm", 2, 5]);
    const bystander = await withSurface(s);
    await settle();
    attack(victim);
    victim.send(4, 6, []); // anything after the error is ignored
    await settle();
    expect(errors).toEqual([`PROTO_ERR_${code}`]);
    const errs = victim.frames.filter(
      (f) => f.kind === "message" && f.objectId === 1 && f.opcode === 0,
    );
    expect(errs).toHaveLength(1);
    expect(victim.error()?.[1]).toBe(wlCode);
    expect(victim.frames.at(-1)).toBe(errs[0]);
    expect(victim.closed).toBe(true);
    expect(s.clients.has(victim.remote)).toBe(false);
    // the other client is untouched and still served
    bystander.send(1, 0, [5]);
    await settle();
    expect(bystander.error()).toBeUndefined();
    expect(bystander.events(5)).toEqual([[0, [expect.any(Number)]]]);
  });
});

describe("a message cut short waits for its rest, as on libwayland's stream socket", () => {
  // wl_client_connection_data takes a message only once its `size` bytes are in
  // ("if (len < size) break;"): a cut message is no error, and nothing after it is read as
  // a message of its own.
  it("no error, the client stays connected, and nothing it sends later is dispatched", async () => {
    const errors: string[] = [];
    const s = plainServer({ onClientError: (_c, e) => errors.push(e.code) });
    const victim = await withSurface(s);
    const bystander = await withSurface(s);
    victim.sendBytes(encodeMessage(4, 6, []).subarray(0, 2));
    victim.send(1, 0, [5]); // wl_display.sync: would be answered if it were dispatched
    victim.send(4, 10, [0]); // an unknown opcode: would be an error if it were dispatched
    await settle();
    expect(errors).toEqual([]);
    expect(victim.error()).toBeUndefined();
    expect(victim.events(5)).toEqual([]);
    expect(victim.closed).toBe(false);
    expect(s.clients.has(victim.remote)).toBe(true);
    bystander.send(1, 0, [5]);
    await settle();
    expect(bystander.events(5)).toEqual([[0, [expect.any(Number)]]]);
  });
});

describe("handlers, failures and limits", () => {
  it("an interface error from a handler is posted against the object with its code", async () => {
    const s = plainServer();
    s.implement("wl_surface", {
      commit: (r) => {
        throw interfaceError(r.id, 2, "invalid size");
      },
    });
    const p = await withSurface(s);
    p.send(4, 6, []);
    await settle();
    expect(p.error()).toEqual([4, 2, "invalid size"]);
  });

  it("a handler that throws is wl_display.implementation and reported as the server's bug", async () => {
    const internal = vi.fn();
    const s = plainServer({ onInternalError: internal });
    s.implement("wl_surface", {
      commit: () => {
        throw new TypeError("oops");
      },
    });
    const p = await withSurface(s);
    p.send(4, 6, []);
    await settle();
    expect(p.error()?.slice(0, 2)).toEqual([1, DISPLAY_ERROR.implementation]);
    expect(internal).toHaveBeenCalledTimes(1);
  });

  it("an observer that throws is reported as the server's bug, not swallowed, and the client still closes", async () => {
    const internal = vi.fn();
    const s = plainServer({
      onClientError: () => {
        throw new RangeError("observer bug");
      },
      onInternalError: internal,
    });
    s.implement("wl_surface", {
      commit: (r) => {
        throw interfaceError(r.id, 2, "invalid size");
      },
    });
    const p = await withSurface(s);
    p.send(4, 6, []);
    await settle();
    expect(p.error()).toEqual([4, 2, "invalid size"]);
    expect(p.closed).toBe(true);
    expect(internal).toHaveBeenCalledTimes(1);
    expect(internal.mock.calls[0][1]).toBeInstanceOf(RangeError);
  });

  it("the object limit is no_memory", async () => {
    const s = plainServer({ limits: { maxObjects: 5 } });
    const p = await withSurface(s); // display, registry, compositor, surface = 4
    p.send(3, 0, [5]);
    await settle();
    expect(p.remote.resource(5)).toBeDefined();
    expect(p.error()).toBeUndefined();
    p.send(3, 0, [6]);
    await settle();
    expect(p.error()?.slice(0, 2)).toEqual([1, DISPLAY_ERROR.no_memory]);
  });

  it("the message rate limit is no_memory, per client", async () => {
    let now = 0;
    const s = plainServer({ limits: { maxMessagesPerSecond: 10 }, now: () => now });
    const a = rawPeer(s);
    const b = rawPeer(s);
    for (let i = 0; i < 10; i++) a.send(1, 0, [2 + i]);
    await settle();
    expect(a.error()).toBeUndefined();
    now = 1500; // a new window
    for (let i = 0; i < 11; i++) b.send(1, 0, [2 + i]);
    for (let i = 0; i < 5; i++) a.send(1, 0, [12 + i]);
    await settle();
    expect(b.error()?.slice(0, 2)).toEqual([1, DISPLAY_ERROR.no_memory]);
    expect(a.error()).toBeUndefined();
  });

  it("a client that does not read is dropped at the queue limit", async () => {
    const errors: string[] = [];
    const s = plainServer({
      limits: { maxQueuedBytes: 16 },
      onClientError: (_c, e) => errors.push(e.code),
    });
    const [, st] = createPair();
    Object.defineProperty(st, "bufferedBytes", { get: () => 1000 });
    const c = s.connect(st);
    c.postEvent(1, "delete_id", [5]);
    expect(c.closed).toBe(true);
    expect(errors).toEqual([PROTO_ERR.QUEUE_LIMIT]);
  });

  it("a reply that would pass the queue limit is refused before it is handed to the transport", async () => {
    // Issue 18 finding 3: the limit was checked after the send, so one huge reply was
    // built and buffered in full first.
    const errors: string[] = [];
    const s = plainServer({
      limits: { maxQueuedBytes: 64 },
      onClientError: (_c, e) => errors.push(e.code),
    });
    const [, st] = createPair();
    Object.defineProperty(st, "bufferedBytes", { get: () => 60 });
    const sent: number[] = [];
    const send = st.send.bind(st);
    st.send = (b, f) => {
      sent.push(b.length);
      send(b, f);
    };
    const c = s.connect(st);
    c.postEvent(1, "error", [1, 0, "x".repeat(200)]);
    expect(c.closed).toBe(true);
    expect(errors).toEqual([PROTO_ERR.QUEUE_LIMIT]);
    expect(sent).toEqual([]);
  });

  it("a refused message's fds are closed, not leaked into the compositor", async () => {
    const ts = createTestServer();
    const { client, proc } = ts.connectLocal();
    const reg = client.request(1, "get_registry", [NEW_ID]);
    const shm = client.request(reg, "bind", [2, "wl_shm", 2, NEW_ID]);
    await client.roundtrip();
    expect(ts.compositor.fds.size).toBe(0);
    const fd = proc.memfdCreate("pool", 0);
    proc.ftruncate(fd, 4096);
    // create_pool with a new_id that skips ahead: refused after the fd arrived
    client.sendRaw(encodeMessage(shm, 0, [shm + 5, 0, 4096]), [ts.kernel.exportFd(proc, fd)]);
    await settle();
    expect(client.error?.code).toBe(DISPLAY_ERROR.invalid_method);
    expect(ts.compositor.fds.size).toBe(0);
  });
});

describe("the client end", () => {
  it("frees ids on delete_id and reuses them", async () => {
    const ts = createTestServer();
    const { client } = ts.connectLocal();
    const reg = client.request(1, "get_registry", [NEW_ID]);
    const comp = client.request(reg, "bind", [1, "wl_compositor", 4, NEW_ID]);
    const s1 = client.request(comp, "create_surface", [NEW_ID]);
    client.request(s1, "destroy", []);
    expect(client.objects.isZombie(s1)).toBe(true);
    await client.roundtrip(); // its callback takes id s1 + 1 and is freed after s1
    expect(client.objects.isZombie(s1)).toBe(false);
    // wl_map_insert_new pops the free list: the last id freed is reused first
    expect(client.request(comp, "create_surface", [NEW_ID])).toBe(s1 + 1);
    expect(client.request(comp, "create_surface", [NEW_ID])).toBe(s1);
    expect(client.request(comp, "create_surface", [NEW_ID])).toBe(s1 + 2);
    await client.roundtrip();
    expect(client.error).toBeNull();
  });

  it("refuses to send a request that does not match the schema", () => {
    const ts = createTestServer();
    const { client } = ts.connectLocal();
    expect(() => client.request(1, "sync", [])).toThrow(/arguments/);
    expect(() => client.request(1, "nope", [])).toThrow(/no request/);
    expect(() => client.request(99, "sync", [NEW_ID])).toThrow(/no live object/);
  });

  it("treats a malformed event as the server's protocol error and closes", async () => {
    const [ct, st] = createPair();
    const client = new ProtocolClient(ct);
    st.send(encodeMessage(1, 1, ["x"]));
    await settle();
    expect(client.closed).toBe(true);
    expect(client.error).toMatchObject({ fromServer: false, protoCode: PROTO_ERR.BAD_ARG });
  });

  it("reports wl_display.error naming an object it never had", async () => {
    const [ct, st] = createPair();
    const client = new ProtocolClient(ct);
    st.send(encodeMessage(1, 0, [77, SHM_ERROR.invalid_fd, "boom"]));
    await settle();
    expect(client.error).toEqual({ fromServer: true, objectId: 77, code: 2, message: "boom" });
  });
});

describe("the client end over a long session", () => {
  it("roundtrips leave nothing behind", async () => {
    const ts = createTestServer();
    const { client } = ts.connectLocal();
    for (let i = 0; i < 50; i++) await client.roundtrip();
    expect((client as unknown as { closeListeners: unknown[] }).closeListeners).toHaveLength(0);
    expect(client.objects.size).toBe(1); // only the display: every callback id was freed
  });
});
