/**
 * Property: the syscall channel of a remote client, on the real simulated kernel, answers
 * every well-formed request with exactly one reply (a value or an errno, as a kernel does),
 * turns every malformed one into one wl_display.error, and never fails on its own account.
 * A WebSocket round of the same, with an honest remote client beside the attacker, checks
 * that the socket layer contains it too.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NEW_ID, ProtocolClient } from "../protocol/client.ts";
import { encodeControl } from "../protocol/codec.ts";
import { ProcessSyscallGateway } from "../protocol/kernel-gateway.ts";
import { F_ADD_SEALS, F_GET_SEALS, SYSCALLS } from "../protocol/syscalls.ts";
import { createTestServer } from "../protocol/testing/test-server.ts";
import { encodeEnvelope } from "../protocol/transport.ts";
import { connectWebSocket } from "../protocol/transports/websocket.ts";
import { rawPeer, settle } from "./protocol-helpers.ts";

const SEED = Number(process.env.PROTOCOL_FUZZ_SEED ?? 0xca11);
const NAMES = Object.keys(SYSCALLS);

const num = fc.oneof(
  fc.integer({ min: -2, max: 8 }),
  fc.constantFrom(
    4096,
    8192,
    0x7fffffff,
    0xffffffff,
    -0x80000000,
    F_ADD_SEALS,
    F_GET_SEALS,
    1,
    2,
    3,
    4,
    8,
    16,
  ),
  fc.integer({ min: 0, max: 1 << 20 }),
);
const arg = fc.oneof(num, num, fc.string({ maxLength: 12 }), fc.uint8Array({ maxLength: 64 }));
const fdNum = fc.oneof(fc.integer({ min: 3, max: 6 }), fc.constantFrom(-1, 0, 1000));
/** Arguments of the declared kinds and count, with values a kernel must refuse among them. */
function typedRequest(name: keyof typeof SYSCALLS): fc.Arbitrary<[string, unknown[]]> {
  const kinds = SYSCALLS[name].args as readonly string[];
  return fc
    .tuple(
      ...kinds.map((k, i) =>
        k === "string"
          ? fc.string({ maxLength: 12 })
          : k === "bytes"
            ? fc.uint8Array({ maxLength: 64 })
            : i === 0 && k === "int"
              ? fdNum
              : num.filter((n) => k === "int" || n >= 0),
      ),
    )
    .map((args): [string, unknown[]] => [name, args]);
}
const request: fc.Arbitrary<[string, unknown[]]> = fc.oneof(
  {
    arbitrary: fc.constantFrom(...NAMES).chain((n) => typedRequest(n as keyof typeof SYSCALLS)),
    weight: 6,
  },
  {
    arbitrary: fc.tuple(
      fc.oneof(fc.constantFrom(...NAMES), fc.string({ maxLength: 6 })),
      fc.array(arg, { maxLength: 5 }),
    ),
    weight: 1,
  },
);

describe("fuzzing the syscall channel on the simulated kernel", () => {
  it("answers or refuses every request, one reply each, and never fails itself", async () => {
    const internal: unknown[] = [];
    const ts = createTestServer({ onInternalError: (_c, e) => internal.push(e) });
    let replies = 0;
    let refusals = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 12 }), async (reqs) => {
        const proc = ts.kernel.spawn("remote");
        const v = rawPeer(ts.server, { syscalls: new ProcessSyscallGateway(proc) });
        try {
          let sent = 0;
          for (const [name, args] of reqs) {
            if (v.remote.closed) break;
            sent++;
            expect(() => v.remote.receive(encodeControl([0, sent, name, args]), [])).not.toThrow();
          }
          await settle();
          const got = v.frames.filter((f) => f.kind === "control");
          const err = v.error();
          if (err) {
            refusals++;
            expect(got.length).toBe(sent - 1); // every request before the bad one was answered
            expect(v.frames.at(-1)?.kind).toBe("message");
          } else {
            expect(got.length).toBe(sent);
          }
          got.forEach((f, i) => {
            if (f.kind !== "control") return;
            expect(f.items[1]).toBe(i + 1);
            const [, , errno, value] = f.items;
            expect(
              errno === null ? value !== null : typeof errno === "string" && value === null,
            ).toBe(true);
          });
          replies += got.length;
        } finally {
          v.remote.close();
          await settle();
        }
        expect(proc.alive).toBe(false); // the connection's end is the process's exit
      }),
      { numRuns: 300, seed: SEED },
    );
    expect(internal).toEqual([]);
    expect(replies).toBeGreaterThan(300);
    expect(refusals).toBeGreaterThan(30);
  });

  it("over WebSocket: random envelopes end only the sender; an honest client keeps working", async () => {
    const internal: unknown[] = [];
    const ts = createTestServer({ onInternalError: (_c, e) => internal.push(e) });
    const l = await ts.listen();
    try {
      const honest = new ProtocolClient(await connectWebSocket(l.url));
      const reg = honest.request(1, "get_registry", [NEW_ID]);
      honest.request(reg, "bind", [1, "wl_compositor", 4, NEW_ID]);
      const fd = (await honest.syscall("memfd_create", ["honest", 0])) as number;
      let i = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.oneof(
              fc.uint8Array({ maxLength: 64 }),
              request.map(([n, a]) => encodeEnvelope(encodeControl([0, 1, n, a]))),
            ),
            { minLength: 1, maxLength: 4 },
          ),
          async (msgs) => {
            const attacker = await connectWebSocket(l.url);
            const closed = new Promise<void>((r) => attacker.onClose(() => r()));
            for (const m of msgs) attacker.ws.send(m);
            attacker.ws.send(new Uint8Array([0xc1])); // ensure the run ends in a refusal
            await closed;
            i++;
            expect(await honest.syscall("pwrite", [fd, new Uint8Array([i & 0xff]), i])).toBe(1);
            await honest.roundtrip();
            expect(honest.error).toBeNull();
          },
        ),
        { numRuns: 40, seed: SEED },
      );
      expect(internal).toEqual([]);
      expect(ts.server.clients.size).toBe(1);
      const back = (await honest.syscall("pread", [fd, 1, 40])) as Uint8Array;
      expect([...back]).toEqual([40]);
      honest.close();
    } finally {
      await l.close();
    }
  });
});
