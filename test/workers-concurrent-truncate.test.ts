/**
 * Real concurrency: a worker thread's ftruncate, issued while this thread is in the middle
 * of a long multi-page read of the same file, is executed between two pages of that read
 * (ServingScheduler serves waiting syscalls at the kernel's preemption points), and the
 * read takes SIGBUS at a page after where it started — as on a multi-core machine.
 */
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { type Kernel, Kernel as KernelClass, type Scheduler } from "../shm/kernel.ts";
import type { Process } from "../shm/process.ts";
import { RemoteKernelHost, ServingScheduler } from "../shm/remote-kernel.ts";
import { MAP, PAGE_SIZE, PROT } from "../shm/uapi.ts";

const PAGES = 8192; // 32 MiB: long enough that the worker wakes up while it is being read

const SCRIPT = `
const { workerData, parentPort } = require("node:worker_threads");
import("tsx/esm/api").then(async (m) => {
  m.register();
  const { RemoteProcess } = await import(${JSON.stringify(new URL("../shm/remote-process.ts", import.meta.url).href)});
  const p = new RemoteProcess(workerData.setup);
  const go = new Int32Array(workerData.go);
  parentPort.postMessage("ready");
  Atomics.wait(go, 0, 0);
  p.ftruncate(workerData.fd, 0);
  parentPort.postMessage("truncated");
});
`;

/** Starts the worker's truncation (it waits for `go`) the moment the reader has read `at` pages. */
class GoAt implements Scheduler {
  loads = 0;
  constructor(
    private readonly inner: ServingScheduler,
    private readonly reader: Process,
    private readonly go: Int32Array,
    private readonly at: number,
  ) {}
  point(p: Process, site: string): void {
    if (p === this.reader && site === "load" && ++this.loads === this.at) {
      Atomics.store(this.go, 0, 1);
      Atomics.notify(this.go, 0);
    }
    this.inner.point();
  }
  block(p: Process, until: () => boolean, what: string): void {
    this.inner.block(p, until, what);
  }
}

async function attempt(): Promise<{ faultPage: number; startedAt: number; served: number }> {
  const kernel: Kernel = new KernelClass({ memoryLimit: 256 * 1024 * 1024 });
  const serving = new ServingScheduler(kernel, 0);
  const owner = kernel.spawn("owner");
  const fd = owner.memfdCreate("pool");
  owner.ftruncate(fd, PAGES * PAGE_SIZE);
  const reader = kernel.spawn("reader");
  const m = reader.mmap(
    0,
    PAGES * PAGE_SIZE,
    PROT.PROT_READ,
    MAP.MAP_SHARED,
    owner.sendFd(fd, reader),
    0,
  );
  reader.load(m, PAGES * PAGE_SIZE); // fault every page in first
  const faults: number[] = [];
  reader.sigaction("SIGBUS", {
    handler: (info, self) => {
      faults.push(info.addr);
      const page = info.addr - (info.addr % PAGE_SIZE);
      self.mmap(
        page,
        PAGE_SIZE,
        PROT.PROT_READ,
        MAP.MAP_FIXED | MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS,
      );
    },
  });
  const client = kernel.spawn("worker-client");
  const clientFd = owner.sendFd(fd, client);
  const host = new RemoteKernelHost(kernel, client);
  const setup = host.setup();
  const go = new SharedArrayBuffer(4);
  const startedAt = 64;
  kernel.scheduler = new GoAt(serving, reader, new Int32Array(go), startedAt);
  const w = new Worker(SCRIPT, {
    eval: true,
    workerData: { setup, go, fd: clientFd },
    transferList: [setup.port],
  });
  const messages: string[] = [];
  const next = (want: string) =>
    new Promise<void>((resolve, reject) => {
      const onMessage = (msg: string) => {
        messages.push(msg);
        if (msg === want) {
          w.off("message", onMessage);
          resolve();
        }
      };
      w.on("message", onMessage);
      w.once("error", reject);
    });
  // Wait until the worker is up and parked on \`go\`: on a loaded machine its start-up (tsx,
  // the imports) takes far longer than any fixed sleep, and a worker that is not yet waiting
  // when the read starts can only truncate after the read is over.
  await next("ready");
  const done = next("truncated");
  reader.load(m, PAGES * PAGE_SIZE);
  await done;
  await w.terminate();
  host.close();
  return {
    faultPage: faults.length ? (faults[0] - m) / PAGE_SIZE : -1,
    startedAt,
    served: serving.served,
  };
}

describe("a worker's truncate during this thread's read", () => {
  it("lands between two pages of the read, which then faults with SIGBUS", async () => {
    const tries: { faultPage: number; startedAt: number; served: number }[] = [];
    for (let i = 0; i < 5; i++) {
      const t = await attempt();
      tries.push(t);
      if (t.faultPage > t.startedAt) break;
    }
    const landed = tries.find((t) => t.faultPage > t.startedAt && t.faultPage < PAGES);
    expect(landed, JSON.stringify(tries)).toBeDefined();
    expect(landed!.served).toBeGreaterThan(0);
  });
});
