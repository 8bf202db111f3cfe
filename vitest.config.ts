import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Worker-thread and host-kernel suites spawn real threads and processes; on a 2-core
    // machine a generous timeout avoids flakiness without asserting anything about speed.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // SHMLAB_KERNEL_CHECKS=1 runs the kernel's self-check after every syscall (docs/testing.md).
    setupFiles: ["test/setup/kernel-self-check.ts"],
  },
});
