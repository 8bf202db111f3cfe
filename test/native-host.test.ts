/**
 * Host conformance, host side: the C helper builds, runs scenarios on the real kernel, and
 * the host's results match the Linux rules of ../shared/LINUX.md — both in inline cases that
 * spell out each rule, and for every recorded scenario under scenarios/ (its `expect` is
 * what this host kernel did).
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  encodeHostScenario,
  HostRunError,
  hostAvailability,
  hostKernelVersion,
  runOnHost,
} from "../native/host.ts";
import type { Scenario, Step, StepResult } from "../shm/scenario.ts";
import { isHostRunnable, loadScenario, resultKey } from "../shm/scenario.ts";

const avail = await hostAvailability();
if (!avail.available) console.log(`native host tests skipped: ${avail.reason}`);
else console.log(`native host tests on ${hostKernelVersion()}`);

const SCENARIOS = join(import.meta.dirname, "..", "scenarios");

function scenarioFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? scenarioFiles(p) : p.endsWith(".json") ? [p] : [];
    })
    .sort();
}

/** A one-process scenario from steps. */
function sc(name: string, steps: Step[], processes = ["a"]): Scenario {
  return { name, description: name, rules: [], processes, steps };
}

const memfd = (flags = "MFD_ALLOW_SEALING"): Step => ({
  p: "a",
  op: "memfd_create",
  name: "pool",
  flags,
  as: "fd",
});
const trunc = (length: number, p = "a"): Step => ({ p, op: "ftruncate", fd: "$fd", length });
const map = (length: number, flags = "MAP_SHARED", prot = "PROT_READ|PROT_WRITE"): Step => ({
  p: "a",
  op: "mmap",
  length,
  prot,
  flags,
  fd: "$fd",
  offset: 0,
  as: "m",
});
const load = (offset: number, length: number, p = "a"): Step => ({
  p,
  op: "load",
  addr: "$m",
  offset,
  length,
});
const store = (offset: number, length: number, fill: number): Step => ({
  p: "a",
  op: "store",
  addr: "$m",
  offset,
  length,
  fill,
});

const last = (r: StepResult[]): StepResult => r[r.length - 1];

describe("native host helper: protocol (no kernel needed)", () => {
  it("resolves flag names and keeps bindings for the helper", () => {
    const text = encodeHostScenario(
      sc("enc", [memfd(), trunc(8192), map(8192, "MAP_SHARED|MAP_POPULATE"), load(4096, 1)]),
    );
    expect(text.split("\n")).toEqual([
      "P a",
      "S a memfd_create name=pool flags=2 as=fd",
      "S a ftruncate fd=$fd length=8192",
      "S a mmap length=8192 prot=3 flags=32769 fd=$fd offset=0 as=m",
      "S a load addr=$m offset=4096 length=1",
      "",
    ]);
  });

  it("rejects a binding no earlier step made", () => {
    expect(() => encodeHostScenario(sc("unbound", [trunc(1)]))).toThrow(HostRunError);
  });

  it("rejects an unknown flag name", () => {
    expect(() => encodeHostScenario(sc("flag", [memfd("MFD_NOPE")]))).toThrow(/MFD_NOPE/);
  });
});

describe.skipIf(!avail.available)("native host helper: Linux rules on the real kernel", () => {
  it("rules 1-2: shrink then read beyond EOF is SIGBUS BUS_ADRERR at the exact offset", async () => {
    const r = await runOnHost(
      sc("a", [memfd(), trunc(12288), map(12288), trunc(4096), load(8192 + 77, 4)]),
    );
    expect(last(r)).toEqual({ signal: "SIGBUS", code: "BUS_ADRERR", offset: 8269 });
  });

  it("rule 2: the page straddling EOF stays readable, zero past EOF", async () => {
    const r = await runOnHost(
      sc("b", [memfd(), trunc(8192), map(8192), store(0, 8192, 0xab), trunc(5000), load(4995, 10)]),
    );
    expect(last(r)).toEqual({ value: "ab*5,00*5" });
  });

  it("rule 9: F_SEAL_SHRINK makes a shrinking ftruncate EPERM", async () => {
    const r = await runOnHost(
      sc("c", [
        memfd(),
        trunc(8192),
        { p: "a", op: "add_seals", fd: "$fd", seals: "F_SEAL_SHRINK" },
        trunc(4096),
        trunc(16384),
      ]),
    );
    expect(r.slice(2)).toEqual([{ value: 0 }, { errno: "EPERM" }, { value: 0 }]);
  });

  it("rule 10: F_SEAL_WRITE with a writable shared mapping is EBUSY", async () => {
    const r = await runOnHost(
      sc("d", [
        memfd(),
        trunc(4096),
        map(4096),
        { p: "a", op: "add_seals", fd: "$fd", seals: "F_SEAL_WRITE" },
      ]),
    );
    expect(last(r)).toEqual({ errno: "EBUSY" });
  });

  it("rule 6: write(2) from a mapping beyond EOF is a short count or EFAULT, no signal", async () => {
    const r = await runOnHost(
      sc("e", [
        memfd(),
        trunc(8192),
        map(8192),
        trunc(4096),
        { p: "a", op: "pipe", as: ["r", "w"] },
        { p: "a", op: "write", fd: "$w", addr: "$m", offset: 0, length: 8192 },
        { p: "a", op: "write", fd: "$w", addr: "$m", offset: 4096, length: 10 },
      ]),
    );
    expect(r.slice(-2)).toEqual([{ value: 4096 }, { errno: "EFAULT" }]);
  });

  it("rule 15: zero-page handler, then the read is zeros with one handled fault", async () => {
    const r = await runOnHost(
      sc("f", [
        memfd(),
        trunc(8192),
        map(8192),
        store(0, 8192, 1),
        trunc(4096),
        { p: "a", op: "sigaction", signal: "SIGBUS", handler: "zero-page" },
        load(4096, 8),
      ]),
    );
    expect(last(r)).toEqual({
      value: "00*8",
      handled: [{ signal: "SIGBUS", code: "BUS_ADRERR", offset: 4096 }],
    });
  });

  it("rule 1: a shrink zaps MAP_PRIVATE COW copies too", async () => {
    const r = await runOnHost(
      sc("g", [
        memfd(),
        trunc(8192),
        map(8192, "MAP_PRIVATE"),
        store(4096, 4, 7),
        trunc(4096),
        load(4096, 1),
      ]),
    );
    expect(last(r)).toEqual({ signal: "SIGBUS", code: "BUS_ADRERR", offset: 4096 });
  });

  it("rule 14: fork, the child truncates, the parent gets SIGBUS; SIG_DFL kills", async () => {
    const r = await runOnHost(
      sc("h", [
        memfd(),
        trunc(8192),
        map(8192),
        { p: "a", op: "fork", child: "b" },
        trunc(4096, "b"),
        load(4096, 1),
        { p: "a", op: "sigaction", signal: "SIGBUS", handler: "default" },
        load(4096, 1),
        load(0, 1),
      ]),
    );
    expect(r.slice(5)).toEqual([
      { signal: "SIGBUS", code: "BUS_ADRERR", offset: 4096 },
      { value: 0 },
      { killed: "SIGBUS" },
      { dead: true },
    ]);
  });

  it("rule 16: uffd MISSING on a shmem hole, resolved by UFFDIO_ZEROPAGE while a load is blocked", async () => {
    const r = await runOnHost(
      sc("i", [
        memfd(),
        trunc(8192),
        map(8192),
        { p: "a", op: "userfaultfd", flags: 0, as: "u" },
        { p: "a", op: "uffdio_api", uffd: "$u", features: 0 },
        {
          p: "a",
          op: "uffdio_register",
          uffd: "$u",
          addr: "$m",
          offset: 0,
          length: 8192,
          mode: "UFFDIO_REGISTER_MODE_MISSING",
        },
        { p: "a", op: "load", addr: "$m", offset: 4100, length: 4, async: true, as: "l" },
        { p: "a", op: "uffd_read", uffd: "$u", base: "$m" },
        { p: "a", op: "uffdio_zeropage", uffd: "$u", addr: "$m", offset: 4096, length: 4096 },
        { p: "a", op: "join", step: "l" },
      ]),
    );
    expect(r.slice(6)).toEqual([
      { value: "started" },
      { value: { event: "pagefault", offset: 4096, write: false } },
      { value: 4096 },
      { value: "00*4" },
    ]);
  });

  it("a hung synchronous step is reported blocked and its process killed", async () => {
    const r = await runOnHost(
      sc("j", [
        { p: "a", op: "pipe", as: ["r", "w"] },
        {
          p: "a",
          op: "mmap",
          length: 4096,
          prot: "PROT_READ|PROT_WRITE",
          flags: "MAP_PRIVATE|MAP_ANONYMOUS",
          offset: 0,
          as: "m",
        },
        { p: "a", op: "read", fd: "$r", addr: "$m", offset: 0, length: 1 },
        { p: "a", op: "close", fd: "$r" },
      ]),
    );
    expect(r.slice(2)).toEqual([{ blocked: true }, { dead: true }]);
  });

  it("refuses model-only scenarios", async () => {
    await expect(
      runOnHost({ ...sc("k", [memfd()]), kernelFeatures: ["map-nofault"] }),
    ).rejects.toThrow(/model-only/);
  });
});

describe.skipIf(!avail.available)("recorded scenarios match the host kernel", () => {
  const files = scenarioFiles(SCENARIOS);
  it("has the conformance suite", () => {
    expect(files.length).toBeGreaterThanOrEqual(40);
  });
  for (const file of files) {
    const s = loadScenario(file);
    if (!isHostRunnable(s)) continue;
    it(file.slice(SCENARIOS.length + 1), async () => {
      expect(s.expect, "every host scenario records its expect").toBeDefined();
      const got = await runOnHost(s);
      const diff = s.steps
        .map((st, i) => ({ i, op: st.op, want: resultKey(s.expect![i]), got: resultKey(got[i]) }))
        .filter((d) => d.want !== d.got);
      expect(diff).toEqual([]);
    });
  }
});
