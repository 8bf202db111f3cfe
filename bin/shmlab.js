#!/usr/bin/env node
// The `shmlab` command, and `npm start`. The sources are TypeScript and a fresh clone needs no
// build step (npm does not run install scripts here): tsx compiles them. But registering
// tsx's loader costs about 0.33 s of start-up on its own (its hooks thread, then every import
// through it; docs/performance.md), a sixth of `npm start`. So the command runs from one
// JavaScript bundle of cli/main.ts, made by esbuild at the first start of each source version
// (lab/worker-bundle.ts, under .cache/cli/) and found again by the hash of every source it
// holds (a few milliseconds per start), with no loader hooks at all. tsx still runs the
// sources where that bundle cannot be had (with a note saying why), where an argument names
// a TypeScript file the command will import (a policy, a behaviour, a proposal's rules: only
// tsx loads .ts), and with SHMLAB_CLI_BUNDLE=0 (bin/cli-entry.js).
import { pathToFileURL } from "node:url";
import { cliEntry } from "./cli-entry.js";

const entry = await cliEntry(process.argv.slice(2), process.cwd(), process.env);
if (entry.note?.startsWith("command bundle unavailable"))
  process.stderr.write(`shmlab: ${entry.note}: running the sources through tsx\n`);
await import(pathToFileURL(entry.file).href);
