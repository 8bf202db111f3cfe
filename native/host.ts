/**
 * The host side of conformance: runs scenario scripts on the REAL Linux kernel through the C
 * helper native/host-runner.c, which is compiled on demand with the system C compiler into
 * .cache/native/ (keyed by a hash of the source, built atomically). Where there is no Linux
 * or no compiler, hostAvailability() says so in one line instead of throwing.
 *
 * The line protocol between this file and the helper is documented at the top of
 * host-runner.c and in docs/conformance.md: flag names are resolved here (shm/uapi.ts),
 * bindings are resolved by the helper (only it knows fds and addresses).
 */
import { spawn } from "node:child_process";
import os from "node:os";
import type { Scenario, Step, StepResult } from "../shm/scenario.ts";
import { isHostRunnable } from "../shm/scenario.ts";
import { parseFlags, SIGNO } from "../shm/uapi.ts";
import { buildNative } from "./build.ts";

export type HostAvailability =
  /** compiler: the one that built the helper now, or "cached" for an earlier build. */
  { available: true; binary: string; compiler: string } | { available: false; reason: string };

export class HostRunError extends Error {
  readonly code = "SHM_ERR_HOST";
}

/** Default time a whole scenario may take on the host before the helper is killed. */
export const DEFAULT_HOST_TIMEOUT_MS = 30_000;

/** "Linux 6.18.44 x86_64": the kernel the host results come from. */
export function hostKernelVersion(): string {
  return `${os.type()} ${os.release()} ${os.arch()}`;
}

let availability: Promise<HostAvailability> | undefined;

/**
 * Whether scenarios can run on this host: Linux, a C compiler, and a helper that builds.
 * Builds the helper on first call (cached in .cache/native/ by source hash).
 */
export function hostAvailability(): Promise<HostAvailability> {
  availability ??= buildNative("host-runner", ["-pthread"]).then(
    (b): HostAvailability =>
      b.available ? b : { available: false, reason: `${b.reason}: host conformance skipped` },
  );
  return availability;
}

/** Keys whose values are flag expressions resolved through shm/uapi.ts. */
const FLAG_KEYS = new Set(["flags", "prot", "mode", "advice", "seals", "features"]);
/** Keys whose values are bare tokens passed through as they are. */
const TOKEN_KEYS = new Set(["handler", "child", "to", "step", "data"]);
const TOKEN = /^[A-Za-z0-9_.*,:-]*$/;
const BINDING = /^\$[A-Za-z_][A-Za-z0-9_]*$/;

function encodeValue(step: Step, i: number, key: string, v: unknown): string {
  const where = `step ${i} (${step.op}) ${key}`;
  if (typeof v === "boolean") return v ? "1" : "0";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new HostRunError(`${where}: not a finite number`);
    return String(Math.trunc(v));
  }
  if (typeof v !== "string") throw new HostRunError(`${where}: unsupported value`);
  if (v.startsWith("$")) {
    if (!BINDING.test(v)) throw new HostRunError(`${where}: bad binding ${v}`);
    return v;
  }
  if (key === "name") return v.replace(/[^A-Za-z0-9_.-]/g, "_") || "_";
  if (key === "signal") {
    const n = SIGNO[v as keyof typeof SIGNO];
    if (n === undefined) throw new HostRunError(`${where}: unknown signal ${v}`);
    return String(n);
  }
  if (FLAG_KEYS.has(key)) return String(parseFlags(v));
  if (/^-?(0x[0-9a-f]+|\d+)$/i.test(v)) return String(Number(v));
  if (TOKEN_KEYS.has(key)) {
    if (!TOKEN.test(v)) throw new HostRunError(`${where}: bad token ${JSON.stringify(v)}`);
    return v;
  }
  throw new HostRunError(`${where}: cannot pass ${JSON.stringify(v)} to the host`);
}

/**
 * The helper's input for a scenario: "P a b" then one "S <proc> <op> k=v..." line per step.
 * Throws HostRunError on anything the helper could not run (unknown binding, bad flag name).
 */
export function encodeHostScenario(s: Scenario): string {
  for (const p of s.processes) {
    if (!/^[A-Za-z0-9_.-]+$/.test(p)) throw new HostRunError(`bad process name ${p}`);
  }
  const bound = new Set<string>();
  const lines = [`P ${s.processes.join(" ")}`];
  s.steps.forEach((step, i) => {
    const parts = ["S", step.p, step.op];
    for (const [key, v] of Object.entries(step)) {
      if (key === "p" || key === "op" || v === undefined) continue;
      if (!/^[a-z_]+$/.test(key)) throw new HostRunError(`step ${i}: bad key ${key}`);
      if (key === "as") {
        const names = Array.isArray(v) ? v : [v as string];
        for (const n of names) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) throw new HostRunError(`step ${i}: bad as ${n}`);
        }
        parts.push(`as=${names.join(",")}`);
        continue;
      }
      const enc = encodeValue(step, i, key, v);
      if (enc.startsWith("$") && !bound.has(enc.slice(1))) {
        throw new HostRunError(`step ${i} (${step.op}): ${enc} is not bound by an earlier step`);
      }
      parts.push(`${key}=${enc}`);
    }
    if (step.as !== undefined && !step.async) {
      for (const n of Array.isArray(step.as) ? step.as : [step.as]) bound.add(n);
    }
    lines.push(parts.join(" "));
  });
  return `${lines.join("\n")}\n`;
}

export interface HostRunOptions {
  /** The whole scenario's time limit; the helper (and so every scenario process) is killed. */
  timeoutMs?: number;
}

/**
 * Runs a scenario on the host kernel and returns one result per step.
 * Rejects with HostRunError when the helper is unavailable, the scenario is not host-runnable,
 * or the helper fails or times out.
 */
export async function runOnHost(s: Scenario, opts: HostRunOptions = {}): Promise<StepResult[]> {
  if (!isHostRunnable(s)) {
    throw new HostRunError(`${s.name}: model-only scenario (proposal or model-only op)`);
  }
  const avail = await hostAvailability();
  if (!avail.available) throw new HostRunError(avail.reason);
  const input = encodeHostScenario(s);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HOST_TIMEOUT_MS;
  return new Promise<StepResult[]>((resolve, reject) => {
    const child = spawn(avail.binary, [], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new HostRunError(`${s.name}: cannot start host helper: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const lines = out.split("\n").filter((l) => l.length > 0);
      if (timedOut) {
        reject(
          new HostRunError(
            `${s.name}: host helper timed out after ${timeoutMs} ms (at step ${lines.length})`,
          ),
        );
        return;
      }
      if (code !== 0 || lines.length !== s.steps.length) {
        reject(
          new HostRunError(
            `${s.name}: host helper ${signal ? `killed by ${signal}` : `exited ${code}`} after ${lines.length}/${s.steps.length} steps${err ? `: ${err.trim().split("\n")[0]}` : ""}`,
          ),
        );
        return;
      }
      try {
        resolve(lines.map((l) => JSON.parse(l) as StepResult));
      } catch (e) {
        reject(new HostRunError(`${s.name}: bad helper output: ${(e as Error).message}`));
      }
    });
    child.stdin.on("error", () => {}); // a helper that dies early is reported by "close"
    child.stdin.end(input);
  });
}
