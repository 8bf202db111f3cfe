/**
 * real/x11-conn.ts against a scripted helper (no X server): how a failed send is read.
 */
import { describe, expect, it } from "vitest";
import { X11Connection } from "../real/x11-conn.ts";
import { SyscallError, type X11Helper } from "../real/x11-native.ts";

/** A helper whose every `send` fails with `errno` and whose socket then reads EOF. */
function failingHelper(errno: string): X11Helper {
  return {
    ok: async (cmd: string) => {
      if (cmd.startsWith("send")) throw new SyscallError(errno, "send");
    },
    command: async () => "eof",
  } as unknown as X11Helper;
}

describe("X11Connection: a send that fails", () => {
  for (const errno of ["EPIPE", "ECONNRESET"])
    it(`${errno}: the server closed the connection`, async () => {
      const c = new X11Connection(failingHelper(errno));
      await c.sendRaw(new Uint8Array([1, 2, 3, 4]));
      expect(c.connection).toBe("closed-by-server");
    });

  for (const errno of ["EBADF", "EINVAL"])
    it(`${errno}: our own bug, rethrown, not blamed on the server`, async () => {
      const c = new X11Connection(failingHelper(errno));
      await expect(c.sendRaw(new Uint8Array([1, 2, 3, 4]))).rejects.toThrow(SyscallError);
      expect(c.connection).toBe("open");
    });
});
