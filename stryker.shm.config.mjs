// Mutation testing of the kernel's rule files alone (issue 13 item 3), with the kernel suites
// only: `npx stryker run stryker.shm.config.mjs --mutate shm/syscalls/memory.ts`.
// mmap runs in nearly every test of the project, so with the main config's testFiles each
// mutant of memory.ts ran the policy, fuzz and oracle suites too (an estimated 2 h): they
// reach mmap only through the kernel suites' own syscalls and pin no memory rule of their
// own. test/address-space.test.ts is left out too: its two tests (65,530 VMAs, a random
// history) take ~50 s, run against every mutant of mmap; memory-syscall-rules.test.ts holds
// the same vm.max_map_count rules with a small sysctl. Everything else (ignorers, timeouts,
// self-checks) is the main config's.
import base from "./stryker.config.mjs";

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  ...base,
  mutate: ["shm/syscalls/*.ts", "shm/fault.ts", "shm/truncate.ts", "shm/loader-image.ts"],
  incrementalFile: ".cache/stryker/incremental-shm.json",
  htmlReporter: { fileName: "reports/mutation/shm/index.html" },
  jsonReporter: { fileName: "reports/mutation/shm/mutation.json" },
  testFiles: [
    "test/syscalls-files.test.ts",
    "test/syscall-names.test.ts",
    "test/pipes.test.ts",
    "test/syscalls-memory.test.ts",
    "test/vma-merge.test.ts",
    "test/user-access.test.ts",
    "test/truncate.test.ts",
    "test/inode-eviction.test.ts",
    "test/signals.test.ts",
    "test/fork.test.ts",
    "test/gup.test.ts",
    "test/pfnmap.test.ts",
    "test/droppable.test.ts",
    "test/userfaultfd.test.ts",
    "test/userfault-vs-uffd.test.ts",
    "test/kernel-scenarios.test.ts",
    "test/kernel-self-check.test.ts",
    "test/proposals.test.ts",
    "test/page-fault-rules.test.ts",
    "test/memory-syscall-rules.test.ts",
    "test/memory-refusals.test.ts",
    "test/loader-image.test.ts",
  ],
};
