import { describe, expect, it } from "vitest";
import { ProcessKilled } from "../shm/errors.ts";
import { MADV, MAP } from "../shm/uapi.ts";
import { errnoOf, PG, RW, setup, sharedPool } from "./helpers.ts";

const ANON = MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS;

describe("fork (rule 14)", () => {
  it("MAP_SHARED stays shared between parent and child", () => {
    const { a } = setup();
    const [, m] = sharedPool(a, PG);
    const c = a.fork("c");
    c.fill(m, 1, 6);
    expect(a.load(m, 1)[0]).toBe(6);
  });

  it("MAP_PRIVATE becomes copy-on-write in both", () => {
    const { a } = setup();
    const m = a.mmap(0, PG, RW, ANON);
    a.fill(m, 1, 1);
    const c = a.fork("c");
    c.fill(m, 1, 2);
    a.fill(m, 1, 3);
    expect(c.load(m, 1)[0]).toBe(2);
    expect(a.load(m, 1)[0]).toBe(3);
    expect(a.counters.cowCopies + c.counters.cowCopies).toBe(1); // the last holder reuses its page
  });

  it("WIPEONFORK reads zero in the child; DONTFORK is absent there (SIGSEGV)", () => {
    const { a } = setup();
    const w = a.mmap(0, PG, RW, ANON);
    const d = a.mmap(0, PG, RW, ANON);
    a.fill(w, 1, 1);
    a.fill(d, 1, 1);
    a.madvise(w, PG, MADV.MADV_WIPEONFORK);
    a.madvise(d, PG, MADV.MADV_DONTFORK);
    const c = a.fork("c");
    expect(c.load(w, 1)[0]).toBe(0);
    expect(a.load(w, 1)[0]).toBe(1);
    expect(() => c.load(d, 1)).toThrow(ProcessKilled);
    expect(c.killedBy?.info?.signo).toBe("SIGSEGV");
  });

  it("the child's fds are the parent's, number for number; a child's truncate hits the parent", () => {
    const { a } = setup();
    const [fd, m] = sharedPool(a, 2 * PG);
    const c = a.fork("c");
    c.ftruncate(fd, 0);
    expect(() => a.load(m, 1)).toThrow(ProcessKilled);
    expect(errnoOf(() => c.close(fd))).toBe("ok");
  });

  it("a private file mapping's COW copy, shared after fork, is zapped in both by truncation", () => {
    const { a } = setup();
    const [fd] = sharedPool(a, PG);
    const p = a.mmap(0, PG, RW, MAP.MAP_PRIVATE, fd, 0);
    a.fill(p, 1, 9);
    const c = a.fork("c");
    a.ftruncate(fd, 0);
    expect(() => c.load(p, 1)).toThrow(ProcessKilled);
    expect(() => a.load(p, 1)).toThrow(ProcessKilled);
  });
});
