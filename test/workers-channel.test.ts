/**
 * The worker ↔ kernel channel on its own: a real worker thread drives a process through
 * RemoteProcess while this thread holds the kernel. Syscalls, errnos and deaths come back
 * as the kernel's own types; stores land in physical memory directly.
 */
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { Kernel } from "../shm/kernel.ts";
import { RemoteKernelHost } from "../shm/remote-kernel.ts";

const SCRIPT = `
const { workerData, parentPort } = require("node:worker_threads");
import("tsx/esm/api").then(async (m) => {
  m.register();
  const { RemoteProcess } = await import(${JSON.stringify(new URL("../shm/remote-process.ts", import.meta.url).href)});
  const p = new RemoteProcess(workerData.setup);
  const out = {};
  const fd = p.memfdCreate("pool", 2);
  p.ftruncate(fd, 3 * 4096);
  const a = p.mmap(0, 3 * 4096, 3, 1, fd, 0);
  const bytes = new Uint8Array(3 * 4096);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
  p.store(a, bytes);
  p.store(a, bytes);
  out.stats1 = p.channelStats;
  p.addSeals(fd, 2);
  try { p.ftruncate(fd, 0); } catch (e) { out.errno = [e.name, e.code, e.syscall]; }
  out.pread = Array.from(p.pread(fd, 4, 4096));
  const fd2 = p.memfdCreate("victim", 0);
  p.ftruncate(fd2, 8192);
  const b = p.mmap(0, 8192, 3, 1, fd2, 0);
  p.store(b, new Uint8Array(8192).fill(1));
  const child = p.fork("child");
  out.childPid = child.pid;
  child.ftruncate(fd2, 4096);
  try { p.store(b + 4096, new Uint8Array([9])); } catch (e) { out.killed = [e.name, e.signal, e.reason, e.info && e.info.addr === b + 4096]; }
  out.alive = p.alive;
  out.addr = a;
  parentPort.postMessage(out);
});
`;

describe("RemoteProcess over the kernel channel", () => {
  it("runs syscalls remotely, stores directly, and returns errnos and deaths", async () => {
    const kernel = new Kernel();
    const proc = kernel.spawn("worker-client");
    const host = new RemoteKernelHost(kernel, proc);
    const setup = host.setup();
    const w = new Worker(SCRIPT, { eval: true, workerData: { setup }, transferList: [setup.port] });
    const out = await new Promise<Record<string, unknown>>((resolve, reject) => {
      w.once("message", resolve);
      w.once("error", reject);
    });
    await w.terminate();
    // The pixels are in the file, as the process's own view shows them.
    expect(out.errno).toEqual(["ErrnoError", "EPERM", "ftruncate"]);
    expect(out.pread).toEqual([0, 1, 2, 3].map((k) => ((4096 + k) * 7 + 3) & 0xff));
    const s = out.stats1 as { directPages: number; faultPages: number };
    // The first store faults each page in through the channel; the second goes direct.
    expect(s.faultPages).toBe(3);
    expect(s.directPages).toBe(3);
    expect(proc.counters.bytesUserWritten).toBeGreaterThanOrEqual(2 * 3 * 4096);
    expect(out.killed).toEqual(["ProcessKilled", "SIGBUS", "unhandled", true]);
    expect(out.alive).toBe(false);
    expect(proc.alive).toBe(false);
    const child = kernel.processes.get(out.childPid as number)!;
    expect(child.alive).toBe(true);
    host.close();
    expect(child.alive).toBe(false);
    expect(kernel.frames.epochs[host.slot]).toBe(0);
  });
});
