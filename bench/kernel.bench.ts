/**
 * The user read path: reading an already-mapped, already-faulted 8 MiB range through a
 * simulated mapping, against a plain Uint8Array.set copy of the same bytes out of a
 * SharedArrayBuffer. Goal: at least half of the plain copy's bandwidth.
 */
import { Kernel } from "../shm/kernel.ts";
import { MAP, PROT } from "../shm/uapi.ts";
import { type BenchSuite, measureRate } from "./harness.ts";

const SIZE = 8 * 1024 * 1024;

const suite: BenchSuite = {
  name: "kernel: user read path",
  async run() {
    const k = new Kernel({ memoryLimit: 64 * 1024 * 1024 });
    const p = k.spawn("reader");
    const fd = p.memfdCreate("pool");
    p.ftruncate(fd, SIZE);
    const m = p.mmap(0, SIZE, PROT.PROT_READ | PROT.PROT_WRITE, MAP.MAP_SHARED, fd, 0);
    p.fill(m, SIZE, 0x5a); // fault every page in
    const dst = new Uint8Array(SIZE);
    const mib = SIZE / (1024 * 1024);
    const simulated = measureRate(() => p.loadInto(m, dst), mib);

    const src = new Uint8Array(new SharedArrayBuffer(SIZE)).fill(0x5a);
    const plain = measureRate(() => dst.set(src), mib);
    return [
      {
        name: "read 8 MiB through a simulated mapping",
        value: simulated,
        unit: "MiB/s",
        baseline: { name: "Uint8Array.set from a SharedArrayBuffer", value: plain },
        goal: { minRatio: 0.5, text: ">= 0.5 of the plain copy" },
      },
    ];
  },
};
export default suite;
