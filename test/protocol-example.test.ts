import { describe, expect, it } from "vitest";
import { runExample } from "../examples/ws-client.ts";
import { createTestServer } from "../protocol/testing/test-server.ts";

describe("the example remote client, written from the wire doc alone", () => {
  it.each(["standard", "sealed-pools"])(
    "completes a session against the test server (%s)",
    async (variant) => {
      const ts = createTestServer({ variant });
      const l = await ts.listen();
      try {
        const r = await runExample(l.url);
        expect(r.error).toBeNull();
        expect(r.globals).toEqual([
          [1, "wl_compositor", 4],
          [2, "wl_shm", 2],
        ]);
        expect(r.formats).toEqual([0, 1]);
        expect(r.released).toBe(true);
        expect(r.frameDone).toBe(true);
        expect(ts.commits).toHaveLength(1);
        const c = ts.commits[0];
        expect([c.width, c.height, c.stride]).toEqual([64, 64, 256]);
        // pixel (x=3, y=5): B = 4x, G = 4y, R = 128, X = 255
        expect([...c.bytes.subarray(5 * 256 + 12, 5 * 256 + 16)]).toEqual([12, 20, 128, 255]);
      } finally {
        await l.close();
      }
    },
  );

  it("sees the error a server gives a bad request", async () => {
    const ts = createTestServer();
    ts.server.implement("wl_surface", {
      commit: (r) => r.client.postError(r.id, 2, "no commits today"),
    });
    const l = await ts.listen();
    try {
      const r = await runExample(l.url);
      expect(r.error?.[1]).toBe(2);
      expect(r.error?.[2]).toBe("no commits today");
    } finally {
      await l.close();
    }
  });
});
