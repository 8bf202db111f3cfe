/**
 * The fuzzer's feedback: a case's features are a function of the case, and they name what
 * its run did — the truncation under the compositor's read, the SIGBUS with its si_code,
 * the edge from one to the other, the protocol error and the policy's decision.
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import type { Action } from "../lab/fuzz/actions.ts";
import { CASE_DEFAULTS, type FuzzCase, runCase } from "../lab/fuzz/case.ts";
import { bucket, shape } from "../lab/fuzz/features.ts";

const truncateUnderRead: Action[] = [
  { k: "memfd", size: 16384, sealing: false },
  { k: "surface" },
  { k: "create-pool", f: 0, size: "file" },
  { k: "create-buffer", p: 0, offset: 0, width: 64, height: 64, stride: 256, format: 1 },
  { k: "draw", f: 0, b: 0, frame: 1 },
  { k: "attach", s: 0, b: 0, commit: true },
  { k: "frame", s: 0 },
  { k: "truncate", f: 0, size: 0 },
  { k: "attach", s: 0, b: 0, commit: true },
  { k: "frame", s: 0 },
];

const caseOf = (policy: string, clients: Action[][]): FuzzCase => ({
  ...CASE_DEFAULTS,
  seed: 1,
  policy,
  program: { clients },
});

describe("fuzz features", () => {
  it("are a function of the case", () => {
    const p = getPolicy("libwayland");
    const a = runCase(caseOf("libwayland", [truncateUnderRead]), p, { features: true });
    const b = runCase(caseOf("libwayland", [truncateUnderRead]), p, { features: true });
    expect([...(a.features ?? [])].sort()).toEqual([...(b.features ?? [])].sort());
    expect(a.features?.size).toBeGreaterThan(20);
    // Not computed unless asked for.
    expect(runCase(caseOf("libwayland", [truncateUnderRead]), p).features).toBeUndefined();
  });

  it("name the truncation, the fault it caused, the path between them, and the answer", () => {
    const f = [
      ...(runCase(caseOf("libwayland", [truncateUnderRead]), getPolicy("libwayland"), {
        features: true,
      }).features ?? []),
    ];
    expect(f).toContain("k:hostile:ftruncate:shrink:0:seals=0");
    expect(f).toContain("k:comp:SIGBUS:BUS_ADRERR");
    expect(f).toContain("e:hostile:ftruncate:shrink:0>comp:SIGBUS:BUS_ADRERR");
    // libwayland tells the client: wl_shm.invalid_fd (code 2) on the wl_buffer.
    expect(f.some((x) => x.startsWith("err:wl_buffer:2:"))).toBe(true);
    expect(f).toContain("a:truncate:ok");
    // Another policy answers the same case differently, and the features say so.
    const none = [
      ...(runCase(caseOf("none", [truncateUnderRead]), getPolicy("none"), { features: true })
        .features ?? []),
    ];
    expect(none.some((x) => x.startsWith("death:SIGBUS"))).toBe(true);
    expect(f.some((x) => x.startsWith("death:"))).toBe(false);
  });

  it("seals at the time of a truncation are part of it", () => {
    const sealed: Action[] = [
      { k: "memfd", size: 8192, sealing: true },
      { k: "seal", f: 0, seals: 0x8 },
      { k: "truncate", f: 0, size: 4096 },
    ];
    const f = [
      ...(runCase(caseOf("libwayland", [sealed]), getPolicy("libwayland"), { features: true })
        .features ?? []),
    ];
    expect(f).toContain("k:hostile:ftruncate:shrink:page:seals=8");
  });

  it("a wire action's broken request is refused with a typed error, and no invariant breaks", () => {
    const wire: Action[] = [
      { k: "memfd", size: 16384, sealing: false },
      { k: "surface" },
      { k: "wire", req: 2, edits: [[0, 0xc1]], cut: 0 },
    ];
    const r = runCase(caseOf("libwayland", [wire]), getPolicy("libwayland"), { features: true });
    expect(r.failure).toBeNull();
    const f = [...(r.features ?? [])];
    expect(f).toContain("a:wire:ok");
    expect(f.some((x) => x.startsWith("err:wl_display:"))).toBe(true);
    // The same request unbroken is accepted: the error is the edit's doing.
    const ok = runCase(
      caseOf("libwayland", [[...wire.slice(0, 2), { k: "wire", req: 2, edits: [], cut: 0 }]]),
      getPolicy("libwayland"),
      { features: true },
    );
    expect([...(ok.features ?? [])].some((x) => x.startsWith("err:"))).toBe(false);
  });

  it("buckets hit counts as AFL does, and takes numbers out of messages", () => {
    expect([1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 127, 128, 9999].map(bucket)).toEqual([
      "1",
      "2",
      "3",
      "4-7",
      "4-7",
      "8-15",
      "8-15",
      "16-31",
      "16-31",
      "32-127",
      "32-127",
      "128+",
      "128+",
    ]);
    expect(shape("offset 4096 at 0x7f00 size -1")).toBe("offset # at # size #");
  });
});
