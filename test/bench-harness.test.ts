/**
 * The bench harness's statistics: a figure is the median of its repetitions with their
 * spread, and a ratio is the median of the ratios measured in the same repetition.
 */
import { describe, expect, it } from "vitest";
import {
  type BenchResult,
  combineRepetitions,
  MIN_REPS,
  ratio,
  repeatedEnough,
  rotationResult,
  spreadOf,
  spreads,
} from "../bench/harness.ts";

describe("bench harness statistics", () => {
  it("gives median, quartiles and extremes of the repetitions", () => {
    const s = spreadOf([5, 1, 4, 2, 3]);
    expect(s).toEqual({ median: 3, min: 1, max: 5, q1: 2, q3: 4, n: 5 });
    expect(spreadOf([1, 2, 3, 10]).median).toBe(2.5);
    expect(() => spreadOf([])).toThrow(RangeError);
  });

  it("judges a goal on the median of same-repetition ratios, not a ratio of medians", () => {
    // Each value is paired with the baseline of its own repetition: the ratio is judged
    // on those pairs, which the medians of the two columns taken apart do not give.
    const r: BenchResult = {
      name: "x",
      value: 0,
      unit: "ops/s",
      samples: [1, 1, 10, 10, 10],
      baseline: { name: "b", value: 0, samples: [1, 1, 1, 20, 20] },
    };
    const s = spreads(r);
    expect(s.ratio).toMatchObject({ median: 1, min: 0.5, max: 10, n: 5 });
    expect(s.value.median / s.baseline!.median).toBe(10);
  });

  it("folds plain repeated runs of a suite into one figure each, matched by position", () => {
    const run = (v: number, b: number, name = "fig"): BenchResult[] => [
      { name, value: v, unit: "u", baseline: { name: "base", value: b } },
      { name: "plain", value: v * 2, unit: "u" },
    ];
    const folded = combineRepetitions([
      run(1, 2),
      run(3, 3),
      run(2, 4, "fig (1 BAD)"),
      run(4, 8),
      run(5, 5),
    ]);
    expect(folded).toHaveLength(2);
    expect(folded[0].name).toBe("fig | fig (1 BAD)");
    expect(folded[0].samples).toEqual([1, 3, 2, 4, 5]);
    expect(folded[0].value).toBe(3);
    expect(folded[0].ratios).toEqual([0.5, 1, 0.5, 0.5, 1]);
    expect(ratio(folded[0])).toBe(0.5);
    expect(folded[1].baseline).toBeUndefined();
    expect(repeatedEnough(folded)).toBe(true);
    expect(repeatedEnough([run(1, 1)[0]])).toBe(false);
    expect(() => combineRepetitions([run(1, 1), [run(1, 1)[0]]])).toThrow(/different number/);
  });

  it("pairs rotation rounds into per-round ratios", () => {
    const rates = new Map([
      ["a", [1, 2, 3, 4, 5]],
      ["b", [2, 4, 6, 8, 10]],
    ]);
    const r = rotationResult(rates, "a", "fps", { name: "b", of: "b" });
    expect(r.ratios).toEqual([0.5, 0.5, 0.5, 0.5, 0.5]);
    expect(r.value).toBe(3);
    expect(r.samples).toHaveLength(MIN_REPS);
    expect(() => rotationResult(rates, "c", "fps")).toThrow(/no measurement/);
  });
});
