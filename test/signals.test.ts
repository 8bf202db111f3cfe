import { describe, expect, it } from "vitest";
import { ProcessKilled } from "../shm/errors.ts";
import { MAP } from "../shm/uapi.ts";
import { PG, RW, setup, sharedPool, zeroPageHandler } from "./helpers.ts";

describe("fault signals (rule 15)", () => {
  it("a handler runs at the fault with BUS_ADRERR and the exact address, and the access retries", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    a.ftruncate(fd, 0);
    const seen = zeroPageHandler(a);
    expect(a.load(m + 100, 3)).toEqual(new Uint8Array(3));
    expect(seen).toEqual([m + 100]);
    expect(a.counters.sigbus).toBe(1);
  });

  it("a multi-page access faults once per page beyond EOF, each with its own address", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 3 * PG);
    a.ftruncate(fd, PG);
    const seen = zeroPageHandler(a);
    a.load(m, 3 * PG);
    expect(seen).toEqual([m + PG, m + 2 * PG]);
  });

  it("a fault inside the handler (signal blocked) kills the process", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    a.ftruncate(fd, 0);
    a.sigaction("SIGBUS", { handler: () => void a.load(m + PG, 1) });
    expect(() => a.load(m, 1)).toThrow(ProcessKilled);
    expect(a.killedBy?.reason).toBe("blocked-signal");
    expect(a.alive).toBe(false);
  });

  it("with SA_NODEFER a nested fault re-enters the handler", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    a.ftruncate(fd, 0);
    let depth = 0;
    a.sigaction("SIGBUS", {
      nodefer: true,
      handler: (info) => {
        depth++;
        if (depth === 1) a.load(m + PG, 1);
        a.mmap(
          info.addr - (info.addr % PG),
          PG,
          RW,
          MAP.MAP_FIXED | MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS,
        );
      },
    });
    a.load(m, 1);
    expect(depth).toBe(2);
  });

  it("a handler that fixes nothing is a livelock, reported as a kill", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, PG);
    a.ftruncate(fd, 0);
    a.sigaction("SIGBUS", { handler: () => {} });
    expect(() => a.load(m, 1)).toThrow(ProcessKilled);
    expect(a.killedBy?.reason).toBe("livelock");
  });

  it("an ignored SIGBUS from a fault still kills", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, PG);
    a.ftruncate(fd, 0);
    a.sigaction("SIGBUS", { handler: "ignore" });
    expect(() => a.load(m, 1)).toThrow(ProcessKilled);
  });

  it("a dead process makes no more syscalls, and its files and mappings are released", () => {
    const { k, a } = setup();
    const [fd, m] = sharedPool(a, PG);
    a.fill(m, 1, 1);
    a.ftruncate(fd, 0);
    expect(() => a.load(m, 1)).toThrow(ProcessKilled);
    expect(() => a.memfdCreate("x")).toThrow(ProcessKilled);
    expect(a.fds.size).toBe(0);
    expect(a.mm.vmas.length).toBe(0);
    expect(k.frames.getStats().inUse).toBe(0);
  });
});

describe("kernel-mode accesses never signal (rule 6)", () => {
  it("write(2) from a mapping that crosses EOF returns a short count", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    a.fill(m, PG, 1);
    a.ftruncate(fd, PG);
    const [, w] = a.pipe();
    expect(a.write(w, m, 2 * PG)).toBe(PG);
    expect(a.counters.sigbus).toBe(0);
  });

  it("write(2) from a page wholly beyond EOF is EFAULT", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    a.ftruncate(fd, PG);
    const out = a.memfdCreate("out");
    expect(() => a.write(out, m + PG, 10)).toThrow(expect.objectContaining({ code: "EFAULT" }));
    expect(a.alive).toBe(true);
  });

  it("read(2) into a mapping beyond EOF is EFAULT and leaves the data in the pipe", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    a.ftruncate(fd, PG);
    const [r, w] = a.pipe();
    const src = a.mmap(0, PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.fill(src, 8, 4);
    a.write(w, src, 8);
    expect(() => a.read(r, m + PG, 8)).toThrow(expect.objectContaining({ code: "EFAULT" }));
    expect(a.read(r, m, 8)).toBe(8);
    expect(a.load(m, 1)[0]).toBe(4);
  });
});

describe("handlers stack as sigaction(2) makes them", () => {
  const zeroOver = (a: ReturnType<typeof setup>["a"], addr: number) =>
    a.mmap(addr - (addr % PG), PG, RW, MAP.MAP_FIXED | MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);

  it("each sigaction returns the action it replaces; only the one on top runs", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, PG);
    a.ftruncate(fd, 0);
    const ran: string[] = [];
    const lower = (i: { addr: number }) => {
      ran.push("lower");
      zeroOver(a, i.addr);
    };
    const upper = (i: { addr: number }) => {
      ran.push("upper");
      zeroOver(a, i.addr);
    };
    expect(a.sigaction("SIGBUS", { handler: lower }).handler).toBe("default");
    const old = a.sigaction("SIGBUS", { handler: upper });
    expect(old.handler).toBe(lower);
    a.load(m, 1);
    expect(ran).toEqual(["upper"]);
    // Restoring the saved action puts the lower handler back on top.
    expect(a.sigaction("SIGBUS", old).handler).toBe(upper);
  });

  it("a handler chaining to the saved action runs both; one that does not lets the lower never run", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    a.ftruncate(fd, 0);
    const ran: string[] = [];
    a.sigaction("SIGBUS", {
      handler: (i) => {
        ran.push("lower");
        zeroOver(a, i.addr);
      },
    });
    const saved = a.sigaction("SIGBUS", { handler: () => {} });
    a.sigaction("SIGBUS", {
      handler: (i, self) => {
        ran.push("upper");
        if (typeof saved.handler === "function") saved.handler(i, self);
      },
    });
    a.load(m, 1);
    expect(ran).toEqual(["upper", "lower"]);
    // Not chaining: it restores SIG_DFL and returns, the retried access dies.
    a.sigaction("SIGBUS", {
      handler: () => {
        ran.push("reset");
        a.sigaction("SIGBUS", { handler: "default" });
      },
    });
    expect(() => a.load(m + PG, 1)).toThrow(ProcessKilled);
    expect(ran).toEqual(["upper", "lower", "reset"]);
    expect(a.killedBy?.signal).toBe("SIGBUS");
  });
});

describe("the signal mask (sigset_t)", () => {
  it("blocks each signal on its own, and a forked child inside a handler inherits the mask", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    a.ftruncate(fd, 0);
    const masks: string[][] = [];
    a.sigaction("SIGBUS", {
      handler: (info, self) => {
        masks.push([...self.signals.blocked]);
        const child = self.fork("child");
        masks.push([...child.signals.blocked]);
        expect(child.signals.blocked.has("SIGBUS")).toBe(true);
        expect(child.signals.blocked.has("SIGSEGV")).toBe(false);
        self.mmap(
          info.addr - (info.addr % PG),
          PG,
          RW,
          MAP.MAP_FIXED | MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS,
        );
      },
    });
    a.load(m, 1);
    expect(masks).toEqual([["SIGBUS"], ["SIGBUS"]]);
    expect([...a.signals.blocked]).toEqual([]); // unblocked when the handler returned
    a.signals.blocked.add("SIGSEGV").add("SIGBUS");
    expect([...a.signals.blocked]).toEqual(["SIGBUS", "SIGSEGV"]);
    expect(a.signals.blocked.size).toBe(2);
    expect(a.signals.blocked.delete("SIGSEGV")).toBe(true);
    expect(a.signals.blocked.delete("SIGSEGV")).toBe(false);
    expect(a.signals.blocked.size).toBe(1);
  });
});
