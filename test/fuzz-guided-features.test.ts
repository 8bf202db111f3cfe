/**
 * The guided fuzzer's stepping stones: a compositor mapping that reaches past its file is a
 * feature of its own, with the file's size seals, whether the mapping grew (a pool resize)
 * or the file shrank — the state one read short of a SIGBUS.
 */
import { describe, expect, it } from "vitest";
import { getPolicy } from "../compositor/policies/index.ts";
import type { Action } from "../lab/fuzz/actions.ts";
import { CASE_DEFAULTS, type FuzzCase, runCase } from "../lab/fuzz/case.ts";

const caseOf = (clients: Action[][]): FuzzCase => ({
  ...CASE_DEFAULTS,
  seed: 1,
  policy: "libwayland",
  // No bystanders: their pools (within their sealed files) would be in every list.
  honest: 0,
  program: { clients },
});

const mapFeatures = (clients: Action[][]) =>
  [...(runCase(caseOf(clients), getPolicy("libwayland"), { features: true }).features ?? [])]
    .filter((f) => f.startsWith("m:"))
    .sort();

const sealedPool = (extra: Action[]): Action[] => [
  { k: "memfd", size: 4096, sealing: true },
  { k: "seal", f: 0, seals: 0x2 },
  { k: "create-pool", f: 0, size: "file" },
  ...extra,
];

describe("guided features: the compositor's mappings against their files", () => {
  it("a pool within its file is 'within', with the file's shrink seal", () => {
    expect(mapFeatures([sealedPool([])])).toEqual(["m:comp:map:shared:within:seals=2"]);
  });

  it("a pool resized past its sealed file is 'past-eof' (no kernel event says so)", () => {
    expect(mapFeatures([sealedPool([{ k: "resize", p: 0, size: "pool+page" }])])).toEqual([
      "m:comp:map:shared:past-eof:seals=2",
    ]);
  });

  it("a file truncated to nothing under an unsealed pool is 'past-eof:empty'", () => {
    const f = mapFeatures([
      [
        { k: "memfd", size: 8192, sealing: false },
        { k: "create-pool", f: 0, size: "file" },
        { k: "truncate", f: 0, size: 0 },
      ],
    ]);
    expect(f).toEqual(["m:comp:map:shared:past-eof:empty:seals=0"]);
  });

  it("a destroyed pool leaves no mapping to describe", () => {
    expect(mapFeatures([sealedPool([{ k: "destroy-pool", p: 0 }])])).toEqual([]);
  });
});
