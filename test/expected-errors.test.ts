/**
 * Only named errors are swallowed (shm/expected-errors.ts): a refusal for a file that is
 * not a memfd, yes; a compositor killed in the middle of the check, never — the kill
 * propagates and the compositor is dead, not "refusing".
 */
import { describe, expect, it } from "vitest";
import { sealsRequired } from "../compositor/policies/seals-required.ts";
import type { Policy, PolicyEnv, ShmPool } from "../compositor/policy.ts";
import { ShmRefusal } from "../compositor/policy.ts";
import { ErrnoError, ProcessKilled } from "../shm/errors.ts";
import { onErrno } from "../shm/expected-errors.ts";
import { Kernel } from "../shm/kernel.ts";
import { MFD } from "../shm/uapi.ts";

const env: PolicyEnv = {
  panic: (r) => {
    throw new Error(`panic: ${r}`);
  },
  onBlocked: () => {},
};

function setUp(policy: Policy) {
  const kernel = new Kernel();
  const proc = kernel.spawn("compositor");
  const inst = policy.create(proc, env);
  const pool = (fd: number): ShmPool => ({
    name: "c#1",
    fd,
    size: 4096,
    addr: 0,
    state: {},
    freed: false,
  });
  return { proc, inst, pool };
}

describe("onErrno", () => {
  it("gives the fallback for a named errno and rethrows everything else", () => {
    const k = new Kernel();
    const p = k.spawn("p");
    expect(onErrno(["EBADF"], () => p.fstatSize(99), -1)).toBe(-1);
    expect(() => onErrno(["EINVAL"], () => p.fstatSize(99), -1)).toThrow(ErrnoError);
    expect(() =>
      onErrno(
        ["EBADF"],
        () => {
          throw new TypeError("a bug");
        },
        0,
      ),
    ).toThrow(TypeError);
  });
});

describe("seals-required: a kill is not a refusal", () => {
  it("refuses a pipe (F_GET_SEALS: EINVAL) with wl_shm.invalid_fd", () => {
    const { proc, inst, pool } = setUp(sealsRequired);
    const [r] = proc.pipe();
    expect(() => inst.mapPool(pool(r))).toThrow(ShmRefusal);
  });

  it("a compositor killed before its F_GET_SEALS stays killed: ProcessKilled, not ShmRefusal", () => {
    const { proc, inst, pool } = setUp(sealsRequired);
    const fd = proc.memfdCreate("pool", MFD.MFD_ALLOW_SEALING);
    proc.ftruncate(fd, 4096);
    expect(() => proc.kill("SIGKILL", undefined, "oom")).toThrow(ProcessKilled);
    let thrown: unknown;
    try {
      inst.mapPool(pool(fd));
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ProcessKilled);
    expect((thrown as ProcessKilled).reason).toBe("oom");
  });
});
