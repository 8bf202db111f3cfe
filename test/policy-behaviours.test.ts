/**
 * What distinguishes each policy beyond the basic attacks: when its handler is armed, what
 * nesting does, where a fault outside an access goes, and the proposals' coherence when a
 * truncated file grows back. Each test names the source section it checks.
 */
import { describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import { settle, TestClient } from "../compositor/testing.ts";
import { SHM_ERROR } from "../protocol/schema.ts";
import { ProcessKilled } from "../shm/errors.ts";
import { Kernel } from "../shm/kernel.ts";
import { ownVmas } from "./helpers.ts";

async function setup(policy: string, features: ("map-nofault" | "zero-beyond-eof")[] = []) {
  const comp = new Compositor({ policy, kernel: new Kernel({ features }) });
  return { comp, c: await TestClient.connect(comp) };
}

function dies(fn: () => unknown): ProcessKilled {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProcessKilled) return e;
    throw e;
  }
  throw new Error("did not die");
}

const handlerOf = (comp: Compositor) => comp.proc.signals.action("SIGBUS").handler;
/** The compositor's mapping of a pool: its VMAs in address order, newest pool first. */
const mappings = (comp: Compositor) => comp.proc.mm.vmas.map((v) => v.start);

describe("libwayland", () => {
  it("installs its handler at the first begin_access and never removes it (§1.4)", async () => {
    const { comp, c } = await setup("libwayland");
    await c.window(16, 16);
    expect(handlerOf(comp)).toBe("default");
    comp.frame();
    expect(typeof handlerOf(comp)).toBe("function");
    expect(comp.proc.signals.action("SIGBUS").nodefer).toBe(true);
  });

  it("a sealed memfd skips begin_access entirely: no handler (§1.1 seal shortcut)", async () => {
    const { comp, c } = await setup("libwayland");
    await c.window(16, 16, { seal: true });
    comp.frame();
    expect(handlerOf(comp)).toBe("default");
  });

  it("nested accesses to one pool: the error waits for the outermost end_access (§1.4)", async () => {
    const { comp, c } = await setup("libwayland");
    const fd = c.memfd(8192, { width: 16 });
    const pool = c.createPool(fd, 8192);
    const b1 = c.createBuffer(pool, 0, 16, 16, 64);
    const b2 = c.createBuffer(pool, 4096, 16, 16, 64);
    await settle();
    c.proc.ftruncate(fd, 4096);
    const outer = comp.withAccess(c.remote, b1, () => {
      const inner = comp.withAccess(c.remote, b2, (a) => comp.proc.load(a.base, 64));
      expect(inner).toBeUndefined(); // access_count 2 → 1: nothing posted yet
      expect(comp.proc.counters.sigbus).toBe(1);
    });
    expect(outer?.error).toEqual({
      code: SHM_ERROR.invalid_fd,
      message: "error accessing SHM buffer",
    });
    await settle();
    expect(c.error).toMatchObject({ objectId: b1, code: SHM_ERROR.invalid_fd });
  });

  it("nested access to another pool on the same thread is wl_abort (§1.4)", async () => {
    const { comp, c } = await setup("libwayland");
    const w1 = await c.window(16, 16);
    const w2 = await c.window(16, 16);
    const e = dies(() =>
      comp.withAccess(c.remote, w1.buffer, () => comp.withAccess(c.remote, w2.buffer, () => {})),
    );
    expect(e.pid).toBe(comp.proc.pid);
    expect(comp.deathCause).toMatch(/Incorrect pool passed for current thread/);
  });

  it("a fault outside any access re-raises: the compositor dies of SIGBUS (§1.5)", async () => {
    const { comp, c } = await setup("libwayland");
    const w = await c.window(16, 16);
    comp.frame(); // handler installed
    c.proc.ftruncate(w.fd, 0);
    const [addr] = mappings(comp);
    const e = dies(() => comp.proc.load(addr, 4));
    expect(e.signal).toBe("SIGBUS");
    expect(comp.proc.counters.sigbus).toBe(2); // the handler's, then the re-raised one
  });

  it("the pool keeps its zero mapping: later reads show zeros even after the file grows back (§1.5)", async () => {
    const { comp, c } = await setup("libwayland");
    const fd = c.memfd(8192, { width: 16 });
    const pool = c.createPool(fd, 8192);
    const b1 = c.createBuffer(pool, 0, 16, 16, 64);
    await settle();
    c.proc.ftruncate(fd, 0);
    let first: Uint8Array | undefined;
    let again: Uint8Array | undefined;
    // One outer access (the error waits for the outermost end_access), so the client is
    // still there when its file grows back and is written, and the pool is read again.
    comp.withAccess(c.remote, b1, (a) => {
      first = comp.proc.load(a.base, 64); // faults: the handler maps zeros over the pool
      c.proc.ftruncate(fd, 8192);
      c.proc.pwrite(fd, new Uint8Array(64).fill(0xab), 0);
      again = comp.proc.load(a.base, 64);
    });
    expect(comp.proc.counters.sigbus).toBe(1);
    expect(first!.every((v) => v === 0)).toBe(true);
    // The file holds the new bytes; the compositor's mapping is anonymous zeros now.
    expect(c.proc.pread(fd, 64, 0).every((v) => v === 0xab)).toBe(true);
    expect(again!.every((v) => v === 0)).toBe(true);
    await settle();
    expect(c.error).toMatchObject({ code: SHM_ERROR.invalid_fd });
  });
});

describe("wlroots", () => {
  it("arms its handler only while an access is active (§2.4)", async () => {
    const { comp, c } = await setup("wlroots");
    const w = await c.window(16, 16);
    let during: unknown;
    comp.withAccess(c.remote, w.buffer, () => {
      during = handlerOf(comp);
    });
    expect(typeof during).toBe("function");
    expect(handlerOf(comp)).toBe("default");
  });

  it("a fault in a mapping no access holds calls the previous handler: SIG_DFL is a null call (§2.4, derived)", async () => {
    const { comp, c } = await setup("wlroots");
    const w1 = await c.window(16, 16);
    const w2 = await c.window(16, 16);
    c.proc.ftruncate(w2.fd, 0);
    const [m2] = mappings(comp); // the newest pool is placed lowest
    const e = dies(() => comp.withAccess(c.remote, w1.buffer, () => comp.proc.load(m2, 4)));
    expect(e.signal).toBe("SIGSEGV");
    expect(e.info?.addr).toBe(0);
  });

  it("resize maps anew at once; the old mapping lives until the access holding it ends (§2.3)", async () => {
    const { comp, c } = await setup("wlroots");
    const w = await c.window(16, 16, { fileSize: 8192 });
    const { encodeMessage } = await import("../protocol/codec.ts");
    comp.withAccess(c.remote, w.buffer, () => {
      c.remote.receive(encodeMessage(w.pool, 2, [8192]), []);
      expect(ownVmas(comp.proc)).toHaveLength(2);
    });
    expect(ownVmas(comp.proc)).toHaveLength(1);
  });
});

describe("kwin", () => {
  it("installs its handler once on the first unsealed map and keeps it (§3.4)", async () => {
    const { comp, c } = await setup("kwin");
    await c.window(16, 16, { seal: true });
    comp.frame();
    expect(handlerOf(comp)).toBe("default");
    await c.window(16, 16);
    comp.frame();
    expect(typeof handlerOf(comp)).toBe("function");
  });

  it("a sealed pool grown past its file is still rescued if the handler is installed (§3.1, §3.4)", async () => {
    const { comp, c } = await setup("kwin");
    await c.window(16, 16); // installs the handler
    comp.frame();
    const fd = c.memfd(4096, { seal: true });
    const pool = c.createPool(fd, 4096);
    c.client.request(pool, "resize", [65536]);
    const b = c.createBuffer(pool, 32768, 16, 16, 64);
    const s = c.surface();
    c.show(s, b, 16, 16);
    await settle();
    const f = comp.frame();
    expect(f.sigbus).toBe(1);
    expect(comp.alive).toBe(true);
    expect(c.error).toBeNull();
  });
});

describe("smithay", () => {
  it("recursive access panics, even to another pool (§4.4)", async () => {
    const { comp, c } = await setup("smithay");
    const w1 = await c.window(16, 16);
    const w2 = await c.window(16, 16);
    dies(() =>
      comp.withAccess(c.remote, w1.buffer, () => comp.withAccess(c.remote, w2.buffer, () => {})),
    );
    expect(comp.deathCause).toMatch(/Recursive access to a SHM pool content is not supported/);
    expect(comp.alive).toBe(false);
  });
});

describe("xorg-mit-shm", () => {
  it("installs busfault_sigaction at server start; a fault outside every record is FatalError (§5.2–5.3)", async () => {
    const { comp, c } = await setup("xorg-mit-shm");
    expect(typeof handlerOf(comp)).toBe("function");
    const w = await c.window(16, 16);
    c.proc.ftruncate(w.fd, 0);
    comp.frame(); // record invalidated, zeros mapped
    // A fault that matches no record: the notify freed the segment's record.
    const fd2 = c.memfd(8192);
    const pool2 = c.createPool(fd2, 8192);
    await settle();
    c.proc.ftruncate(fd2, 0);
    const [m] = mappings(comp);
    expect(pool2).toBeGreaterThan(0);
    // Read it outside frame(): the record of pool 2 is valid → rescued, not fatal.
    comp.proc.load(m, 4);
    expect(comp.alive).toBe(true);
    // An address in no record at all (the compositor's own anonymous memory is not SIGBUS);
    // a SIGBUS there needs a file: map one privately, truncate, touch it.
    const f = comp.proc.memfdCreate("own");
    comp.proc.ftruncate(f, 4096);
    const own = comp.proc.mmap(0, 4096, 1, 1, f, 0);
    comp.proc.ftruncate(f, 0);
    const e = dies(() => comp.proc.load(own, 1));
    expect(comp.deathCause).toMatch(/FatalError/);
    expect(e.pid).toBe(comp.proc.pid);
  });
});

describe("xorg-mit-shm second fault", () => {
  it("a second fault reported on an invalidated record before busfault_check is FatalError (§5.3)", async () => {
    // After the zero mapping the range cannot fault again on Linux (the research derives
    // the same), so the second delivery is made by calling the installed handler directly,
    // as the kernel would if it reported one.
    const { comp, c } = await setup("xorg-mit-shm");
    await c.window(16, 16);
    const [addr] = mappings(comp);
    const handler = comp.proc.signals.action("SIGBUS").handler as (
      i: { signo: "SIGBUS"; code: "BUS_ADRERR"; addr: number },
      p: typeof comp.proc,
    ) => void;
    const info = { signo: "SIGBUS" as const, code: "BUS_ADRERR" as const, addr };
    handler(info, comp.proc); // valid → invalid, zeros mapped
    expect(comp.proc.alive).toBe(true);
    expect(() => handler(info, comp.proc)).toThrow(ProcessKilled);
    expect(comp.proc.alive).toBe(false);
  });
});

describe("the proposals when the file grows back", () => {
  async function regrow(policy: string, features: ("map-nofault" | "zero-beyond-eof")[]) {
    const { comp, c } = await setup(policy, features);
    const w = await c.window(32, 32);
    c.proc.ftruncate(w.fd, 0);
    comp.frame();
    const zeros = comp.regionPixels(comp.placements()[0]).every((v) => v === 0);
    // The client grows its file back and writes fresh pixels, then commits again.
    c.proc.ftruncate(w.fd, 32 * 32 * 4);
    c.proc.pwrite(w.fd, new Uint8Array(32 * 32 * 4).fill(0x5a), 0);
    c.show(w.surface, w.buffer, 32, 32);
    await settle();
    comp.frame();
    const fresh = comp.regionPixels(comp.placements()[0]).every((v) => v === 0x5a5a5a5a);
    return { zeros, fresh, comp };
  }

  it("zero-beyond-eof: zeros, then the new data (the kernel drops the zero entries on growth)", async () => {
    const r = await regrow("zero-beyond-eof", ["zero-beyond-eof"]);
    expect(r.zeros).toBe(true);
    expect(r.fresh).toBe(true);
  });

  it("map-nofault: zeros, then still zeros — the anonymous pages are not synchronized (Linus, Jun 2021)", async () => {
    const r = await regrow("map-nofault", ["map-nofault"]);
    expect(r.zeros).toBe(true);
    expect(r.fresh).toBe(false);
    expect(r.comp.stats().zeroPages).toBeGreaterThan(0);
  });
});

describe("userfaultfd, copy-pread, populate", () => {
  it("userfaultfd: a hole inside i_size is resolved by the handler thread (LINUX.md rule 16)", async () => {
    const { comp, c } = await setup("userfaultfd");
    const fd = c.proc.memfdCreate("holey");
    c.proc.ftruncate(fd, 16384); // never written: every page a hole
    const pool = c.createPool(fd, 16384);
    const b = c.createBuffer(pool, 0, 64, 64, 256);
    const s = c.surface();
    c.show(s, b, 64, 64);
    await settle();
    const f = comp.frame();
    expect(f.uffdFaults).toBe(4);
    expect(comp.alive).toBe(true);
    expect(comp.regionPixels(comp.placements()[0]).every((v) => v === 0)).toBe(true);
  });

  it("copy-pread: never maps a client's file", async () => {
    const { comp, c } = await setup("copy-pread");
    await c.window(32, 32);
    const f = comp.frame();
    expect(ownVmas(comp.proc)).toHaveLength(0);
    expect(f.bytesKernelCopied).toBe(32 * 32 * 4);
    expect(f.faults).toBe(0);
  });

  it("populate: the pages are faulted in at create_pool, none at the frame", async () => {
    const { comp, c } = await setup("populate");
    await c.window(64, 64);
    // MAP_POPULATE faults through GUP (handle_mm_fault): the four cached pages share one
    // fault-around window, so one fault maps them all.
    expect(comp.proc.counters.minorFaults).toBe(1);
    expect(comp.frame().faults).toBe(0);
  });
});
