/**
 * The real client's process (native/wl-client.c through real/native-sys.ts): real memfds,
 * seals, truncation and the SIGBUS it gives a store, fork, and fds passed between two
 * helper processes with SCM_RIGHTS.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OP, WlClientProcess, wlClientAvailability } from "../native/wl-client.ts";
import { NativeSys } from "../real/native-sys.ts";
import { ErrnoError, ProcessKilled } from "../shm/errors.ts";
import { FALLOC, MAP, MFD, PROT, SEAL } from "../shm/uapi.ts";

const avail = await wlClientAvailability();
if (!avail.available) console.log(`native wl-client tests skipped: ${avail.reason}`);
const binary = avail.available ? avail.binary : "";

const started: WlClientProcess[] = [];
async function helper(): Promise<WlClientProcess> {
  const p = await WlClientProcess.start(binary);
  started.push(p);
  return p;
}
afterEach(async () => {
  for (const p of started.splice(0)) {
    p.kill();
    await p.exited();
  }
});

describe.skipIf(!avail.available)("native wl-client helper", () => {
  it("creates a sealable memfd, sizes it, and refuses to shrink it once sealed", async () => {
    const sys = NativeSys.of(await helper());
    const fd = sys.memfdCreate("t", MFD.MFD_ALLOW_SEALING);
    sys.ftruncate(fd, 8192);
    expect(sys.fstatSize(fd)).toBe(8192);
    sys.addSeals(fd, SEAL.F_SEAL_SHRINK);
    expect(sys.getSeals(fd) & SEAL.F_SEAL_SHRINK).toBe(SEAL.F_SEAL_SHRINK);
    const e = (() => {
      try {
        sys.ftruncate(fd, 0);
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(ErrnoError);
    expect((e as ErrnoError).code).toBe("EPERM");
    sys.ftruncate(fd, 16384); // growing stays allowed
    expect(sys.fstatSize(fd)).toBe(16384);
  });

  it("without MFD_ALLOW_SEALING, F_ADD_SEALS is EPERM (memfd_create(2))", async () => {
    const sys = NativeSys.of(await helper());
    const fd = sys.memfdCreate("t", 0);
    expect(() => sys.addSeals(fd, SEAL.F_SEAL_SHRINK)).toThrow(/EPERM/);
  });

  it("stores through a shared mapping, reads back with pread, and punches a hole", async () => {
    const sys = NativeSys.of(await helper());
    const fd = sys.memfdCreate("t", 0);
    sys.ftruncate(fd, 8192);
    const addr = sys.mmap(0, 8192, PROT.PROT_READ | PROT.PROT_WRITE, MAP.MAP_SHARED, fd, 0);
    sys.store(addr + 4096, new Uint8Array([1, 2, 3, 4]));
    expect([...sys.pread(fd, 4, 4096)]).toEqual([1, 2, 3, 4]);
    sys.fallocate(fd, FALLOC.FALLOC_FL_PUNCH_HOLE | FALLOC.FALLOC_FL_KEEP_SIZE, 4096, 4096);
    expect([...sys.load(addr + 4096, 4)]).toEqual([0, 0, 0, 0]);
    expect(sys.fstatSize(fd)).toBe(8192);
  });

  it("dies of SIGBUS, with the faulting address, when it stores past a truncated file", async () => {
    const p = await helper();
    const sys = NativeSys.of(p);
    const fd = sys.memfdCreate("t", 0);
    sys.ftruncate(fd, 8192);
    const addr = sys.mmap(0, 8192, PROT.PROT_READ | PROT.PROT_WRITE, MAP.MAP_SHARED, fd, 0);
    sys.ftruncate(fd, 4096);
    let e: unknown;
    try {
      sys.store(addr + 4096 + 8, new Uint8Array([9]));
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(ProcessKilled);
    expect((e as ProcessKilled).signal).toBe("SIGBUS");
    expect((e as ProcessKilled).info?.addr).toBe(addr + 4096 + 8);
    expect(sys.alive).toBe(false);
    await p.exited();
    expect(p.exit?.signal).toBe("SIGBUS");
  });

  it("forks a child that shares the memfd and truncates it for the parent", async () => {
    const sys = NativeSys.of(await helper());
    const fd = sys.memfdCreate("t", 0);
    sys.ftruncate(fd, 65536);
    const child = sys.fork("child");
    expect(child.pid).not.toBe(sys.pid);
    child.ftruncate(fd, 0);
    expect(sys.fstatSize(fd)).toBe(0);
    child.exit();
    expect(child.alive).toBe(false);
    expect(sys.alive).toBe(true);
  });

  it("passes a memfd to another process with SCM_RIGHTS, which reads its contents", async () => {
    const dir = mkdtempSync(join(os.tmpdir(), "shmlab-wlc-test-"));
    try {
      const path = join(dir, "s");
      const a = await helper();
      const b = await helper();
      const got: { bytes: Uint8Array; fds: number[] }[] = [];
      b.onData((bytes, fds) => got.push({ bytes, fds }));
      expect(b.call(OP.LISTEN, [5000], new TextEncoder().encode(path)).status).toBe(0);
      expect(a.call(OP.CONNECT, [], new TextEncoder().encode(path)).status).toBe(0);
      expect(b.readReply().status).toBe(0);
      const sa = NativeSys.of(a);
      const fd = sa.memfdCreate("passed", 0);
      sa.pwrite(fd, new Uint8Array([7, 7, 7]), 100);
      expect(a.call(OP.SEND, [fd], new Uint8Array([1, 0, 0, 0])).vals[0]).toBe(4);
      for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(got.length).toBe(1);
      expect([...got[0].bytes]).toEqual([1, 0, 0, 0]);
      expect(got[0].fds.length).toBe(1);
      const sb = NativeSys.of(b);
      expect(sb.fstatSize(got[0].fds[0])).toBe(103);
      expect([...sb.pread(got[0].fds[0], 3, 100)]).toEqual([7, 7, 7]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a helper gone from outside reports its real signal, never a made-up SIGKILL", async () => {
    const p = await helper();
    const sys = NativeSys.of(p);
    process.kill(p.pid, "SIGTERM");
    await p.exited();
    const e = (() => {
      try {
        sys.memfdCreate("x");
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(ProcessKilled);
    expect((e as ProcessKilled).signal).toBe("SIGTERM");
  });

  it("a helper whose channel closed before its status is known dies of an unknown signal", async () => {
    const p = await helper();
    const sys = NativeSys.of(p);
    p.kill(); // closes the channel at once; the exit status comes later
    expect(() => sys.memfdCreate("x")).toThrow(/killed by unknown/);
    expect((sys.killedBy as ProcessKilled).signal).toBe("unknown");
  });

  it("an unknown syscall name is ENOSYS, not a plain Error", async () => {
    const sys = NativeSys.of(await helper());
    expect(() => sys.syscall("reboot")).toThrow(ErrnoError);
    expect(() => sys.syscall("reboot")).toThrow(/ENOSYS/);
  });

  it("reports an unknown fd as EBADF, not a crash", async () => {
    const sys = NativeSys.of(await helper());
    expect(() => sys.ftruncate(999, 0)).toThrow(/EBADF/);
    expect(sys.alive).toBe(true);
  });
});

describe.skipIf(!avail.available)("native wl-client helper lifetime", () => {
  it("dies with the Node process that started it, even on SIGKILL (no stray helpers)", async () => {
    const { spawn } = await import("node:child_process");
    const script = `
      import { WlClientProcess } from ${JSON.stringify(new URL("../native/wl-client.ts", import.meta.url).pathname)};
      const p = await WlClientProcess.start(${JSON.stringify(binary)});
      console.log(p.pid);
      setInterval(() => {}, 1000);
    `;
    for (const signal of ["SIGINT", "SIGKILL"] as const) {
      const node = spawn(
        process.execPath,
        ["--import", "tsx", "--input-type=module", "-e", script],
        {
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      const pid = await new Promise<number>((resolve) =>
        node.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))),
      );
      expect(pid).toBeGreaterThan(0);
      expect(() => process.kill(pid, 0)).not.toThrow();
      node.kill(signal);
      await new Promise((r) => node.once("exit", r));
      let alive = true;
      for (let i = 0; i < 200 && alive; i++) {
        try {
          process.kill(pid, 0);
          await new Promise((r) => setTimeout(r, 10));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
          alive = false;
        }
      }
      expect(alive, `helper ${pid} outlived node killed by ${signal}`).toBe(false);
    }
  });
});
