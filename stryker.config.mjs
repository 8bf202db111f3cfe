// Mutation testing (issue 13): `npm run mutate`, not in CI — it is slow. Each mutant is a
// one-token change to a rule file; a mutant that no test notices ("survived") is a rule
// nothing pins. See docs/testing.md for the measured scores and how to read a run.
//
// Sized for a shared 2-core machine: one test runner at a time, per-test coverage (only
// the tests that reach a mutant run against it), incremental (a rerun only tests mutants
// whose code or covering tests changed; the state lives in .cache/, never committed).
// Narrow a run while working: `npm run mutate -- --mutate protocol/codec.ts`.
// The kernel's self-check after every syscall (docs/testing.md) runs in the mutation runs
// too: a mutant that breaks refcounts, the reverse map or the page tables' bookkeeping
// breaks a Linux invariant, and the check says so even when no test looks at that memory.
process.env.SHMLAB_KERNEL_CHECKS ??= "1";

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  plugins: ["@stryker-mutator/vitest-runner", "./test/stryker/ignorers.mjs"],
  // Code with no observable effect — the text beside an errno (Linux returns the errno
  // alone), the shmem inode's write-only statistics — is reported "Ignored", with the
  // reason, instead of counting as survivors (test/stryker/ignorers.mjs, docs/testing.md).
  ignorers: ["errno-text", "invariant-detail", "file-counters", "memory-equivalent"],
  vitest: { configFile: "vitest.config.ts", related: false },
  coverageAnalysis: "perTest",
  // Static mutants (module-level initialisers: the validation profiles, DEFAULT_LIMITS) are
  // not re-evaluated between runs by this runner: every one "survived", even where a test
  // checks the very value (DEFAULT_LIMITS.maxSyscallFrameBytes). They are left out rather
  // than counted as rules nothing pins; docs/testing.md says how many.
  ignoreStatic: true,
  concurrency: 1,
  incremental: true,
  incrementalFile: ".cache/stryker/incremental.json",
  tempDirName: ".cache/stryker/tmp",
  cleanTempDir: "always",
  // A mutant that loops forever is "timed out" (counted as detected) after this.
  timeoutMS: 30_000,
  timeoutFactor: 3,
  reporters: ["clear-text", "progress-append-only", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/index.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  thresholds: { high: 85, low: 70, break: null },
  // The rule files (issue 13, item 3).
  mutate: [
    "protocol/codec.ts",
    "protocol/validate.ts",
    "compositor/validation.ts",
    "compositor/policies/*.ts",
    "shm/syscalls/*.ts",
    "shm/fault.ts",
    "shm/truncate.ts",
    "lab/fuzz/invariants.ts",
    "lab/verdict.ts",
  ],
  // The suites that pin those rules. The whole suite would also work, but its worker-thread,
  // host-kernel and browser suites add minutes per mutant and pin no rule the unit suites
  // miss; a survivor here is a rule the unit suites do not pin.
  testFiles: [
    "test/protocol-codec.test.ts",
    "test/protocol-validate.test.ts",
    "test/validation.test.ts",
    "test/syscalls-files.test.ts",
    "test/syscall-names.test.ts",
    "test/pipes.test.ts",
    "test/syscalls-memory.test.ts",
    "test/truncate.test.ts",
    "test/inode-eviction.test.ts",
    "test/signals.test.ts",
    "test/fork.test.ts",
    "test/gup.test.ts",
    "test/pfnmap.test.ts",
    "test/droppable.test.ts",
    "test/userfaultfd.test.ts",
    "test/kernel-scenarios.test.ts",
    "test/kernel-self-check.test.ts",
    "test/policy-attacks.test.ts",
    "test/policy-libwayland-wlcs.test.ts",
    "test/proposals.test.ts",
    "test/fuzz-invariants.test.ts",
    "test/fuzz-invariants-frame.test.ts",
    "test/verdict.test.ts",
    "test/oracle-live.test.ts",
    "test/policy-libwayland-handler.test.ts",
    "test/policy-wlroots-rules.test.ts",
    "test/policy-kwin-rules.test.ts",
    "test/policy-smithay-rules.test.ts",
    "test/policy-xorg-busfault-rules.test.ts",
    "test/policy-seals-required-rules.test.ts",
    "test/policy-proposals-mapping-rules.test.ts",
    "test/policy-copy-pread-rules.test.ts",
    "test/page-fault-rules.test.ts",
    "test/memory-syscall-rules.test.ts",
    "test/memory-refusals.test.ts",
    "test/policy-userfaultfd-handler.test.ts",
    "test/policy-versions.test.ts",
    "test/policy-variants.test.ts",
    "test/policy-libwayland-kept-buffer.test.ts",
    "test/policy-behaviours.test.ts",
    "test/compositor-read-moments.test.ts",
    "test/policy-common-mapping-rules.test.ts",
    "test/policy-droppable-cache-rules.test.ts",
    "test/policy-hyprland-shm-rules.test.ts",
    "test/policy-own-handler-rules.test.ts",
    "test/policy-version-models-rules.test.ts",
  ],
};
