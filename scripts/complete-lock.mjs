#!/usr/bin/env node
// The registry these machines reach serves only the Linux builds of platform packages, so
// npm writes package-lock.json without the other platforms' optional packages, and then
// `npm ci` refuses that lock ("Missing: @biomejs/cli-darwin-x64@ from lock file"). This adds
// an entry (version, os, cpu, optional) for each missing one; npm ci skips them on Linux
// without fetching anything. Run it after every change to the dependencies.
import { readFileSync, writeFileSync } from "node:fs";

const OS = ["android", "darwin", "linux", "win32", "freebsd"];
const CPU = ["arm64", "x64", "arm", "ia32"];
const file = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(file, "utf8"));
const added = [];
for (const [key, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const at = `node_modules/${name}`;
    if (lock.packages[at]) continue;
    const parts = name.split("/").pop().split("-");
    const os = parts.find((p) => OS.includes(p));
    const cpu = parts.find((p) => CPU.includes(p));
    if (!os || !cpu) continue; // not a platform package: leave it to npm
    lock.packages[at] = {
      version,
      cpu: [cpu],
      os: [os],
      ...(parts.includes("musl") ? { libc: ["musl"] } : {}),
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
    };
    added.push(`${name}@${version} (for ${key || "the root"})`);
  }
}
const sorted = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) =>
    a === "" ? -1 : b === "" ? 1 : a.localeCompare(b),
  ),
);
lock.packages = sorted;
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(
  added.length
    ? `added ${added.length} platform entries:\n  ${added.join("\n  ")}`
    : "lock file already complete",
);
