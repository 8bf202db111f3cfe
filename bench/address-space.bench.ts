/**
 * The address space with many mappings (issue 18, finding 5): one mmap + munmap of a page in
 * a process that already holds 30,000 VMAs, against the same in a process holding 100. With
 * a list scanned whole, each call costs time in proportion to the VMAs held; with the
 * gap-augmented tree (shm/address-space.ts) it is logarithmic. Goal: at least half the
 * small address space's rate.
 */
import { Kernel } from "../shm/kernel.ts";
import { MAP, PROT } from "../shm/uapi.ts";
import { type BenchSuite, measureRate } from "./harness.ts";

const PG = 4096;
const ANON = MAP.MAP_PRIVATE | MAP.MAP_ANONYMOUS;

function rateWith(vmas: number): number {
  const k = new Kernel({ memoryLimit: 16 * 1024 * 1024 });
  const p = k.spawn("many-vmas");
  for (let i = 0; i < vmas; i++) p.mmap(0, PG, PROT.PROT_READ, ANON);
  return measureRate(() => {
    const m = p.mmap(0, PG, PROT.PROT_READ, ANON);
    p.munmap(m, PG);
  });
}

const suite: BenchSuite = {
  name: "kernel: address space with many mappings",
  async run() {
    const small = rateWith(100);
    const large = rateWith(30_000);
    return [
      {
        name: "mmap + munmap beside 30,000 VMAs",
        value: large,
        unit: "ops/s",
        baseline: { name: "mmap + munmap beside 100 VMAs", value: small },
        goal: { minRatio: 0.5, text: ">= 0.5 of the small address space" },
      },
    ];
  },
};
export default suite;
