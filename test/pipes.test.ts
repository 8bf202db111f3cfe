/**
 * pipe(7) and fs/pipe.c on the model: a byte stream of at most PIPE_DEF_BUFFERS (16) page
 * buffers; pipe_write merges a sub-page write into the last buffer when it fits
 * ("if ((buf->flags & PIPE_BUF_FLAG_CAN_MERGE) && offset + chars <= PAGE_SIZE)"), a full
 * pipe blocks the writer, an empty one blocks the reader while a writer exists; EOF is a
 * read of 0 once every writer is gone, EPIPE a write once every reader is.
 */
import { describe, expect, it } from "vitest";
import { Deadlock } from "../shm/errors.ts";
import type { Scheduler } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { MAP } from "../shm/uapi.ts";
import { errnoOf, PG, RW, setup } from "./helpers.ts";

const PIPE_CAPACITY = 16 * PG; // pipe(7): "the pipe capacity is 16 pages"

function anon(p: Process, bytes: number): number {
  return p.mmap(0, bytes, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
}

/** Writes `bytes` of `byte` into the pipe from fresh anonymous memory. */
function put(p: Process, w: number, bytes: number, byte = 0x5a): number {
  const src = anon(p, Math.max(bytes, 1));
  p.fill(src, bytes, byte);
  return p.write(w, src, bytes);
}

/** Reads up to `bytes` from the pipe; returns the bytes read. */
function take(p: Process, r: number, bytes: number): Uint8Array {
  const dst = anon(p, Math.max(bytes, 1));
  const n = p.read(r, dst, bytes);
  return p.load(dst, n);
}

/** A scheduler whose block() runs `other` once (another thread's step), then checks. */
function wakeWith(other: () => void): Scheduler & { blocked: string[] } {
  const blocked: string[] = [];
  return {
    blocked,
    point() {},
    block(_p, until, what) {
      blocked.push(what);
      if (!until()) other();
      if (!until()) throw new Deadlock(`still blocked on ${what}`);
    },
  };
}

describe("pipe(7): end of file and broken pipes", () => {
  it("read returns 0 once the pipe is empty and every writer is closed", () => {
    const { a } = setup();
    const [r, w] = a.pipe();
    put(a, w, 3, 7);
    a.close(w);
    expect([...take(a, r, 10)]).toEqual([7, 7, 7]);
    expect(take(a, r, 10).length).toBe(0);
  });

  it("a dup of the write end keeps the pipe open: an empty read blocks instead of EOF", () => {
    const { a } = setup();
    const [r, w] = a.pipe();
    const w2 = a.dup(w);
    a.close(w);
    expect(() => take(a, r, 1)).toThrow(Deadlock);
    a.close(w2);
    expect(take(a, r, 1).length).toBe(0);
  });

  it("write with no reader left is EPIPE, even with room in the pipe", () => {
    const { a } = setup();
    const [r, w] = a.pipe();
    const r2 = a.dup(r);
    a.close(r);
    expect(put(a, w, 1)).toBe(1); // a reader (the dup) remains
    a.close(r2);
    expect(errnoOf(() => put(a, w, 1))).toBe("EPIPE");
  });

  it("the read end is not writable and the write end not readable (EBADF)", () => {
    const { a } = setup();
    const [r, w] = a.pipe();
    const m = anon(a, PG);
    expect(errnoOf(() => a.write(r, m, 1))).toBe("EBADF");
    expect(errnoOf(() => a.read(w, m, 1))).toBe("EBADF");
  });

  it("a zero-length read or write returns 0 without looking at the pipe", () => {
    // pipe_read and pipe_write: "if (unlikely(total_len == 0)) return 0;" — no blocking on
    // an empty pipe whose writer is open, no EPIPE without a reader.
    const { a } = setup();
    const [r] = a.pipe();
    const m = anon(a, PG);
    const [r2, w2] = a.pipe();
    a.close(r2);
    expect(a.read(r, m, 0)).toBe(0);
    expect(a.write(w2, m, 0)).toBe(0);
  });
});

describe("pipe(7): a byte stream", () => {
  it("a short read leaves the rest of the buffer, in order, for the next read", () => {
    const { a } = setup();
    const [r, w] = a.pipe();
    const src = anon(a, PG);
    a.store(
      src,
      Uint8Array.from({ length: 10 }, (_, i) => i + 1),
    );
    a.write(w, src, 10);
    expect([...take(a, r, 4)]).toEqual([1, 2, 3, 4]);
    expect([...take(a, r, 100)]).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it("one read gathers several writes; a write's bytes arrive in order across pages", () => {
    const { a } = setup();
    const [r, w] = a.pipe();
    const src = anon(a, 3 * PG);
    const bytes = Uint8Array.from({ length: 2 * PG + 5 }, (_, i) => (i * 7) % 251);
    a.store(src, bytes);
    expect(a.write(w, src, bytes.length)).toBe(bytes.length);
    put(a, w, 2, 0xee);
    const got = take(a, r, 3 * PG);
    expect(got.length).toBe(bytes.length + 2);
    expect(got.subarray(0, bytes.length)).toEqual(bytes);
    expect([...got.subarray(bytes.length)]).toEqual([0xee, 0xee]);
  });

  it("read into memory that faults: a buffer is consumed only when all of it was copied", () => {
    // pipe_read: "if (unlikely(written < chars)) { if (!ret) ret = -EFAULT; break; }"
    const { a } = setup();
    const [r, w] = a.pipe();
    put(a, w, PG, 1);
    put(a, w, PG, 2);
    const dst = a.mmap(0, 2 * PG, RW, MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS);
    a.munmap(dst + PG, PG); // the second page of the destination is gone
    expect(a.read(r, dst, 2 * PG)).toBe(PG); // the first buffer only
    expect(errnoOf(() => a.read(r, dst + PG, PG))).toBe("EFAULT"); // nothing copied
    expect([...take(a, r, 2 * PG).subarray(0, 2)]).toEqual([2, 2]); // the second buffer stayed
  });
});

describe("pipe(7): capacity, merging, and blocking", () => {
  it("holds 16 pages; the 17th blocks the writer", () => {
    const { a } = setup();
    const [, w] = a.pipe();
    expect(put(a, w, PIPE_CAPACITY)).toBe(PIPE_CAPACITY);
    expect(() => put(a, w, 1)).toThrow(Deadlock);
  });

  it("sub-page writes merge into the last buffer while they fit in its page (<= PAGE_SIZE)", () => {
    const { a } = setup();
    const [r, w] = a.pipe();
    put(a, w, 4000, 1);
    put(a, w, 96, 2); // 4000 + 96 = 4096: fits exactly, merged into the first buffer
    put(a, w, 15 * PG, 3); // buffers 2-16
    expect(() => put(a, w, 1)).toThrow(Deadlock); // 16 buffers: full
    const got = take(a, r, PG);
    expect([got[3999], got[4000], got[4095]]).toEqual([1, 2, 2]);
  });

  it("a sub-page write that does not fit in the last page takes a new buffer", () => {
    const { a } = setup();
    const [, w] = a.pipe();
    put(a, w, 4000);
    put(a, w, 97); // 4097 > PAGE_SIZE: a second buffer
    put(a, w, 14 * PG); // buffers 3-16
    expect(() => put(a, w, 1)).toThrow(Deadlock);
  });

  it("only the sub-page remainder of a long write merges; whole pages take their own buffers", () => {
    const { a } = setup();
    const [r, w] = a.pipe();
    put(a, w, 10, 1);
    put(a, w, PG + 10, 2); // 10 bytes merge (20 in buffer 1), one page in buffer 2
    put(a, w, 14 * PG, 3); // buffers 3-16
    expect(() => put(a, w, 1)).toThrow(Deadlock);
    const got = take(a, r, 2 * PG + 20);
    expect(got.length).toBe(PG + 20 + PG);
    expect([got[9], got[10], got[PG + 19], got[PG + 20]]).toEqual([1, 2, 2, 3]);
  });

  it("a merge counts the bytes already read from the buffer's page (buf->offset)", () => {
    const { a } = setup();
    const [r, w] = a.pipe();
    put(a, w, 100);
    take(a, r, 10); // the buffer now starts at offset 10 of its page, 90 bytes long
    put(a, w, 4006); // 10 + 90 + 4006 = 4106 > PAGE_SIZE: a new buffer
    put(a, w, 14 * PG); // buffers 3-16
    expect(() => put(a, w, 1)).toThrow(Deadlock);
  });

  it("a sub-page write whose source faults is EFAULT and leaves the pipe as it was", () => {
    const { a } = setup();
    const [r, w] = a.pipe();
    put(a, w, 10, 1);
    const gone = anon(a, PG);
    a.munmap(gone, PG);
    expect(errnoOf(() => a.write(w, gone, 20))).toBe("EFAULT");
    expect([...take(a, r, 100)]).toEqual(Array(10).fill(1));
  });

  it("a blocked writer resumes when the reader makes room, and all its bytes arrive", () => {
    let a!: Process;
    let r = 0;
    const drained: number[] = [];
    const sched = wakeWith(() => drained.push(take(a, r, PG).length));
    ({ a } = setup({ scheduler: sched }));
    const [rfd, w] = a.pipe();
    r = rfd;
    expect(put(a, w, PIPE_CAPACITY + PG)).toBe(PIPE_CAPACITY + PG);
    expect(sched.blocked).toEqual(["pipe write"]);
    expect(drained).toEqual([PG]);
  });

  it("the last reader leaving a blocked writer: the bytes written so far, else EPIPE", () => {
    let a!: Process;
    let r = 0;
    const sched = wakeWith(() => a.close(r));
    ({ a } = setup({ scheduler: sched }));
    const [rfd, w] = a.pipe();
    r = rfd;
    expect(put(a, w, PIPE_CAPACITY + PG)).toBe(PIPE_CAPACITY); // partial write stands
    const [rfd2, w2] = a.pipe();
    r = rfd2;
    put(a, w2, PIPE_CAPACITY);
    expect(errnoOf(() => put(a, w2, PG))).toBe("EPIPE"); // nothing written
  });

  it("a blocked reader gets what a writer writes meanwhile, or 0 when the last writer closes", () => {
    let a!: Process;
    let w = 0;
    let wake = () => {};
    const sched = wakeWith(() => wake());
    ({ a } = setup({ scheduler: sched }));
    const [r, wfd] = a.pipe();
    w = wfd;
    put(a, w, 1, 8);
    expect([...take(a, r, 10)]).toEqual([8]); // data there: no wait
    expect(sched.blocked).toEqual([]);
    wake = () => put(a, w, 3, 9);
    expect([...take(a, r, 10)]).toEqual([9, 9, 9]);
    wake = () => a.close(w);
    expect(take(a, r, 10).length).toBe(0);
    expect(sched.blocked).toEqual(["pipe read", "pipe read"]);
  });
});
