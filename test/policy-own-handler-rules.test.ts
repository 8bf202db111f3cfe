/**
 * `libwayland-own-handler` / `libwayland-chained-handler` (compositor/policies/
 * own-handler.ts) driven directly on a compositor process: a compositor SIGBUS handler
 * installed after libwayland's (WLCS issue #30). The rules pinned:
 *
 * - sigaction(2): the later sigaction's handler is the one that runs; it returns the
 *   action it replaced (libwayland's sigbus_handler), which a chaining handler calls.
 * - wayland-shm.c wl_shm_buffer_begin_access installs libwayland's handler at the first
 *   access of a pool that needs it: not for a pool whose `sigbus_is_impossible` (F_SEAL_SHRINK
 *   and st_size >= size at create_pool); the compositor's goes on top once libwayland's is
 *   there, once (installing it again would save itself as the action to chain to).
 * - The crash reporter's ending `signal(SIGBUS, SIG_DFL); raise(SIGBUS)`: the process dies
 *   of SIGBUS; chaining instead runs libwayland's rescue (zeros, invalid_fd at end_access).
 */
import { describe, expect, it } from "vitest";
import {
  libwaylandChainedHandler,
  libwaylandOwnHandler,
} from "../compositor/policies/own-handler.ts";
import type { Policy } from "../compositor/policy.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { Kernel } from "../shm/kernel.ts";
import { MFD, SEAL } from "../shm/uapi.ts";
import { PG } from "./helpers.ts";
import { killedBy, pageBuffer, panickingEnv, sentPool } from "./policy-helpers.ts";

function setup(policy: Policy, opts: { sealed?: boolean } = {}) {
  const k = new Kernel();
  const comp = k.spawn("compositor");
  const client = k.spawn("client");
  const instance = policy.create(comp, panickingEnv);
  const cfd = client.memfdCreate("pool", MFD.MFD_ALLOW_SEALING);
  client.ftruncate(cfd, PG);
  client.pwrite(cfd, new Uint8Array(PG).fill(0x5a), 0);
  if (opts.sealed) client.addSeals(cfd, SEAL.F_SEAL_SHRINK);
  const pool = sentPool(client, comp, cfd, "c#1");
  instance.mapPool(pool);
  const buffer = pageBuffer(pool, "c#b1");
  /** One bracketed read; returns what end_access posts. */
  const show = () => {
    const a = instance.beginAccess(buffer);
    instance.read(a, new Uint8Array(PG));
    return instance.endAccess(a);
  };
  return { comp, client, cfd, instance, buffer, show };
}

const handler = (comp: ReturnType<typeof setup>["comp"]) => comp.signals.action("SIGBUS");

describe("the compositor's handler goes on top of libwayland's", () => {
  for (const policy of [libwaylandOwnHandler, libwaylandChainedHandler])
    it(`${policy.name}: installed at the end of the first access, SA_NODEFER, once`, () => {
      const { comp, instance, buffer, show } = setup(policy);
      expect(handler(comp).handler).toBe("default");
      const a = instance.beginAccess(buffer);
      const libwaylands = handler(comp).handler;
      expect(typeof libwaylands).toBe("function");
      instance.endAccess(a);
      const own = handler(comp).handler;
      expect(typeof own).toBe("function");
      expect(own).not.toBe(libwaylands);
      expect(handler(comp).nodefer).toBe(true);
      show();
      expect(handler(comp).handler).toBe(own);
    });

  it("not after a sealed pool's access: libwayland installed nothing to go on top of", () => {
    const { comp, show } = setup(libwaylandOwnHandler, { sealed: true });
    expect(show()).toBeUndefined();
    expect(handler(comp).handler).toBe("default");
  });
});

describe("a truncation read inside an access", () => {
  it("own-handler (not chaining): SIG_DFL and raise: the compositor dies of SIGBUS", () => {
    const { comp, client, cfd, show } = setup(libwaylandOwnHandler);
    show();
    client.ftruncate(cfd, 0);
    const k = killedBy(() => show());
    expect(k?.signal).toBe("SIGBUS");
    expect(comp.alive).toBe(false);
  });

  it("chained-handler: libwayland's rescue runs, every time (it never chains to itself)", () => {
    const { comp, client, cfd, show } = setup(libwaylandChainedHandler);
    show();
    show();
    client.ftruncate(cfd, 0);
    const invalid = {
      error: { code: SHM_ERROR.invalid_fd, message: "error accessing SHM buffer" },
    };
    expect(show()).toMatchObject(invalid);
    expect(show()).toBeUndefined(); // the zero mapping: nothing faults any more
    expect(comp.alive).toBe(true);
  });
});
