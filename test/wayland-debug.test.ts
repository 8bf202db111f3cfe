/**
 * WAYLAND_DEBUG lines as libwayland 1.23's wl_closure_print writes them on the compositor's
 * side, from the messages the server really dispatched and sent.
 */
import { describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import { NEW_ID } from "../protocol/client.ts";
import { BASE_SCHEMA } from "../protocol/schema.ts";
import type { TracedMessage } from "../protocol/server.ts";
import { debugFixed, debugTimestamp, formatDebugLine } from "../protocol/wayland-debug.ts";

describe("WAYLAND_DEBUG format", () => {
  it("prints time as [%7u.%03u] milliseconds.microseconds", () => {
    expect(debugTimestamp(1_234_567)).toBe("[   1234.567]");
    expect(debugTimestamp(0)).toBe("[      0.000]");
    expect(debugTimestamp(16_666.6)).toBe("[     16.666]");
  });

  it("prints fixed point as libwayland's %d.%08d with 390625 per 1/256", () => {
    expect(debugFixed(384)).toBe("1.50000000");
    expect(debugFixed(-384)).toBe("-1.50000000");
    expect(debugFixed(1)).toBe("0.00390625");
    expect(debugFixed(-1)).toBe("-0.00390625");
    expect(debugFixed(256 * 10 + 128)).toBe("10.50000000");
  });

  it("prints every argument type as connection.c does", () => {
    const spec = {
      name: "m",
      args: [
        { name: "u", type: "uint" as const },
        { name: "i", type: "int" as const },
        { name: "s", type: "string" as const },
        { name: "n", type: "string" as const },
        { name: "o", type: "object" as const, interface: "wl_buffer" },
        { name: "z", type: "object" as const },
        { name: "id", type: "new_id" as const, interface: "wl_callback" },
        { name: "any", type: "new_id" as const },
        { name: "fd", type: "fd" as const },
        { name: "f", type: "fixed" as const },
      ],
    };
    expect(
      formatDebugLine({
        timeUs: 1500,
        send: false,
        interface: "x_test",
        objectId: 7,
        spec,
        args: [0xffffffff, -3, "hi", null, 5, 0, 9, 12, 4, 384],
      }),
    ).toBe(
      '[      1.500] x_test#7.m(4294967295, -3, "hi", nil, wl_buffer#5, nil, new id wl_callback#9, new id [unknown]#12, fd 4, 1.50000000)',
    );
    expect(
      formatDebugLine({
        timeUs: 2000,
        send: true,
        queue: "c",
        interface: "wl_buffer",
        objectId: 5,
        spec: BASE_SCHEMA.interfaces.wl_buffer.events[0],
        args: [],
      }),
    ).toBe("[      2.000] {c}  -> wl_buffer#5.release()");
  });

  it("a session with the compositor reads as its WAYLAND_DEBUG=server trace would", async () => {
    const lines: string[] = [];
    const comp = new Compositor({
      policy: "libwayland",
      server: {
        onMessage: (m: TracedMessage) =>
          lines.push(
            formatDebugLine(
              { ...m, timeUs: 0, send: m.direction === "event", args: m.args },
              (id) => m.client.resource(id)?.interface,
            ).slice(14),
          ),
      },
    });
    const { client, proc } = comp.connectLocal("c");
    const reg = client.request(1, "get_registry", [NEW_ID]);
    await client.roundtrip();
    const shm = client.request(reg, "bind", [2, "wl_shm", 2, NEW_ID]);
    const fd = proc.memfdCreate("p", 0);
    proc.ftruncate(fd, 4096);
    client.request(shm, "create_pool", [NEW_ID, fd, 4096]);
    client.request(shm, "create_pool", [NEW_ID, fd, -1]);
    await client.roundtrip().catch(() => {});
    expect(lines).toEqual([
      "wl_display#1.get_registry(new id wl_registry#2)",
      ' -> wl_registry#2.global(1, "wl_compositor", 4)',
      ' -> wl_registry#2.global(2, "wl_shm", 2)',
      "wl_display#1.sync(new id wl_callback#3)",
      expect.stringMatching(/^ -> wl_callback#3\.done\(\d+\)$/),
      " -> wl_display#1.delete_id(3)",
      // The callback's id is free again after delete_id, and the client reuses it.
      'wl_registry#2.bind(2, "wl_shm", 2, new id [unknown]#3)',
      " -> wl_shm#3.format(0)",
      " -> wl_shm#3.format(1)",
      expect.stringMatching(/^wl_shm#3\.create_pool\(new id wl_shm_pool#4, fd \d+, 4096\)$/),
      expect.stringMatching(/^wl_shm#3\.create_pool\(new id wl_shm_pool#5, fd \d+, -1\)$/),
      ' -> wl_display#1.error(wl_shm#3, 1, "invalid size (-1)")',
    ]);
  });
});
