/**
 * What one remote client can make the server's Node process and the compositor's process
 * hold (issue 18, findings 3 and 6): a pread reply is bounded before it is built; an fd the
 * compositor cannot take (EMFILE) is released, not left in flight; and each client has a
 * quota of fds held in the compositor's table, so one client cannot fill it for all.
 */
import { describe, expect, it } from "vitest";
import { isProtocolError, PROTO_ERR } from "../protocol/errors.ts";
import {
  MAX_SYSCALL_READ,
  ProcessSyscallGateway,
  remoteFdBridge,
} from "../protocol/kernel-gateway.ts";
import { Kernel } from "../shm/kernel.ts";
import { PG } from "./helpers.ts";

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (isProtocolError(e)) return e.code;
    throw e;
  }
};

describe("kernel gateway limits", () => {
  it("a pread of a huge sparse file returns a short count, never a huge buffer", () => {
    const k = new Kernel();
    const remote = k.spawn("remote");
    const g = new ProcessSyscallGateway(remote);
    const fd = g.call("memfd_create", ["pool", 0]) as number;
    g.call("ftruncate", [fd, 256 * 1024 * 1024]);
    const r = g.call("pread", [fd, 256 * 1024 * 1024, 0]) as Uint8Array;
    expect(r.length).toBe(MAX_SYSCALL_READ);
    expect(MAX_SYSCALL_READ).toBeLessThanOrEqual(1024 * 1024);
  });

  it("an fd the compositor's full table cannot take is released, not left in flight", () => {
    const k = new Kernel();
    const server = k.spawn("compositor");
    const remote = k.spawn("remote");
    while (server.fds.size < 1021) server.memfdCreate("filler");
    const fd = remote.memfdCreate("pool");
    remote.pwrite(fd, new Uint8Array(8 * PG).fill(1), 0);
    const bridge = remoteFdBridge(k, remote, server);
    expect(codeOf(() => bridge.incoming(fd))).toBe(PROTO_ERR.OBJECT_LIMIT);
    remote.exit();
    // The client's file had no other holder: its pages are gone with it.
    expect(k.frames.getStats().inUse).toBe(0);
  });

  it("one client's fds in the compositor are capped; another client's are not affected", () => {
    const k = new Kernel();
    const server = k.spawn("compositor");
    const a = k.spawn("a");
    const b = k.spawn("b");
    const ba = remoteFdBridge(k, a, server, { maxFds: 8 });
    const bb = remoteFdBridge(k, b, server, { maxFds: 8 });
    const held: number[] = [];
    for (let i = 0; i < 8; i++) held.push(ba.incoming(a.memfdCreate(`a${i}`)));
    expect(codeOf(() => ba.incoming(a.memfdCreate("one-too-many")))).toBe(PROTO_ERR.OBJECT_LIMIT);
    expect(codeOf(() => bb.incoming(b.memfdCreate("b")))).toBe("ok");
    // Closing one in the compositor gives the client room again.
    server.close(held[0]);
    expect(codeOf(() => ba.incoming(a.memfdCreate("again")))).toBe("ok");
  });
});
