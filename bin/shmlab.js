#!/usr/bin/env node
// The `shmlab` command. The sources are TypeScript run through tsx, so that a fresh clone
// works with no build step (npm does not run install scripts here).
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
