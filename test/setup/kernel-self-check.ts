/**
 * With SHMLAB_KERNEL_CHECKS=1, every syscall of every simulated process in the suite is
 * followed by the kernel's self-check (shm/self-check.ts), and a test during which any check
 * fired fails even if the code under test caught the error. Off by default, so that the
 * suite's speed and the benchmarks are those of the plain kernel.
 *
 *   SHMLAB_KERNEL_CHECKS=1 npm test      (npm run test:kernel-checks), "orphan-file"
 *                                        included: issue 18 made the model evict at the
 *                                        last reference ("all" is the same, kept for scripts)
 */
import { afterEach } from "vitest";
import { checkAfterEverySyscall, type KernelInvariantError } from "../../shm/self-check.ts";

const mode = process.env.SHMLAB_KERNEL_CHECKS;
if (mode === "1" || mode === "all") {
  const seen: KernelInvariantError[] = [];
  checkAfterEverySyscall((e) => seen.push(e));
  afterEach(() => {
    const first = seen[0];
    seen.length = 0;
    if (first) throw first;
  });
}
