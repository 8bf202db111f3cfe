/** shm/uapi.ts helpers: pageOffset is `% PAGE_SIZE` without the fmod call, for every number. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PAGE_SIZE, pageOffset } from "../shm/uapi.ts";

/** Equal as `%` would give, except that -0 and 0 are one (a sum never tells them apart). */
const same = (x: number) => {
  const want = x % PAGE_SIZE;
  const got = pageOffset(x);
  return Number.isNaN(want) ? Number.isNaN(got) : got === want;
};

describe("pageOffset", () => {
  it("is x % PAGE_SIZE for user addresses, offsets and sizes up to 2^53", () => {
    fc.assert(fc.property(fc.maxSafeInteger(), same), { numRuns: 5000 });
    for (const x of [0, 1, 4095, 4096, 4097, 2 ** 31, 2 ** 32 + 5, 0x7f00_0000_0fff, 2 ** 53 - 1])
      expect(pageOffset(x)).toBe(x % PAGE_SIZE);
  });

  it("is x % PAGE_SIZE for negative, fractional and non-finite numbers too (bad input)", () => {
    fc.assert(fc.property(fc.double(), same), { numRuns: 5000 });
    expect(pageOffset(-5)).toBe(-5);
    expect(pageOffset(4097.5)).toBe(1.5);
    expect(pageOffset(Number.POSITIVE_INFINITY)).toBeNaN();
    expect(pageOffset(Number.NaN)).toBeNaN();
  });
});
