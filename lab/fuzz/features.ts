/**
 * Feedback: what a case reached, as a set of feature names it either hits or not.
 *
 * Read from what the run records anyway — nothing in shm/ or compositor/ is instrumented
 * for the fuzzer:
 *
 *   - the kernel's event stream (`Kernel.events`: ftruncate, SIGBUS/SIGSEGV with si_code,
 *     kills, seals, punch-hole, mmap/mremap/munmap, fork, uffd faults, pins, reclaim), each
 *     tagged with who made it (compositor, honest, hostile, a forked child) and bucketed
 *     detail: a truncation's direction, whether it lands on a page edge or at 0, and the
 *     seals the file carried at that moment (folded from the `add-seals` events before it);
 *   - edges between consecutive kernel events (AFL's idea: `ftruncate:shrink → SIGBUS` is a
 *     path, not two unrelated facts), and hit counts in AFL's buckets (1, 2, 3, 4-7, ...);
 *   - what each action got (`ok`, an errno, a local refusal);
 *   - protocol errors (interface, code, message with the numbers taken out), the
 *     policy's notices (its begin/end-access decisions, handler rescues, deferred resizes,
 *     X errors), the compositor's death, each client's end, the verdict cell and the
 *     hostile clients' outcomes;
 *   - the broken invariant, if any.
 *
 * Deterministic: a case's features are a function of its run, which is a function of the
 * case. Cheap: one pass over lists the run keeps anyway (docs/fuzz.md has the cost).
 */
import type { Compositor } from "../../compositor/compositor.ts";
import type { Kernel, KernelEvent } from "../../shm/kernel.ts";
import type { Process } from "../../shm/process.ts";
import { SEAL } from "../../shm/uapi.ts";
import type { RunRecord } from "../record.ts";
import type { ActionResult } from "./behaviour.ts";

export interface FeatureSources {
  kernel: Kernel;
  comp: Compositor;
  /** Client labels -> honest? (from the run's roster) */
  honest: ReadonlyMap<string, boolean>;
  actions: readonly { label: string; results: readonly ActionResult[] }[];
  record: RunRecord | null;
  /** `${invariant} @ ${place}` of the failure, if any. */
  failure: string | null;
}

/** AFL's hit-count buckets: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+. */
export function bucket(n: number): string {
  if (n <= 3) return String(n);
  if (n < 8) return "4-7";
  if (n < 16) return "8-15";
  if (n < 32) return "16-31";
  if (n < 128) return "32-127";
  return "128+";
}

/** Numbers out of a message, so "size 4096" and "size 8192" are one feature. */
export function shape(s: string): string {
  return s.replace(/0x[0-9a-f]+/gi, "#").replace(/-?\d+/g, "#");
}

const PG = 4096;

function sizeClass(to: number): string {
  if (to === 0) return "0";
  if (to % PG === 0) return "page";
  return to < PG ? "sub-page" : "odd";
}

/** The kernel's events as features (and the seals each file had at the time). */
function kernelFeatures(
  events: readonly KernelEvent[],
  roleOf: (pid: number) => string,
  add: (f: string) => void,
  count: (k: string) => void,
): void {
  const seals = new Map<number, number>();
  let prev = "start";
  for (const e of events) {
    const role = roleOf(e.pid);
    const d = e.detail;
    let key: string;
    switch (e.kind) {
      case "ftruncate": {
        const from = Number(d.from);
        const to = Number(d.to);
        const dir = to < from ? "shrink" : to > from ? "grow" : "same";
        const s = seals.get(Number(d.ino)) ?? 0;
        key = `ftruncate:${dir}:${sizeClass(to)}`;
        add(`k:${role}:${key}:seals=${s}`);
        break;
      }
      case "add-seals":
        seals.set(Number(d.ino), Number(d.seals));
        key = `add-seals:${d.seals}`;
        break;
      case "SIGBUS":
      case "SIGSEGV":
        key = `${e.kind}:${d.code}`;
        break;
      case "killed":
        key = `killed:${d.signal}:${shape(String(d.reason))}`;
        break;
      case "punch-hole":
        key = `punch:${Number(d.offset) % PG === 0 && Number(d.length) % PG === 0 ? "aligned" : "partial"}`;
        break;
      case "mmap":
        key = `mmap:${d.shared ? "shared" : "private"}${d.pfnmap ? ":pfnmap" : ""}`;
        break;
      case "uffd-fault":
        key = `uffd-fault:${d.write ? "write" : "read"}`;
        break;
      case "pin":
        key = `pin:${d.write ? "write" : "read"}`;
        break;
      default:
        key = e.kind;
    }
    const k = `${role}:${key}`;
    add(`k:${k}`);
    count(`k:${k}`);
    // Honest bystanders' events interleave by the scheduler's choice: background, not a path.
    if (role === "honest") continue;
    add(`e:${prev}>${k}`);
    prev = k;
  }
}

/** The seals that decide whether a mapping can lose its pages: shrink, grow, write. */
const SIZE_SEALS = SEAL.F_SEAL_SHRINK | SEAL.F_SEAL_GROW | SEAL.F_SEAL_WRITE;

/**
 * The compositor's shared file mappings where the run ended, against their files: whether
 * each reaches past the file's end (its next read there is a SIGBUS), with the file's
 * size-relevant seals. The kernel's events do not say it: an in-place mremap (a
 * wl_shm_pool.resize that grows) emits none, and a mapping goes past its file as often by
 * the mapping growing as by the file shrinking. A pool that outgrew a sealed file is a
 * state one request short of a read past its end (libwayland's shm_pool_resize never
 * recomputes sigbus_is_impossible), so reaching it is worth keeping for its own sake.
 */
function mappingFeatures(proc: Process, add: (f: string) => void): void {
  if (!proc.alive) return;
  for (const v of proc.mm.vmas) {
    const f = v.file;
    if (!f) continue;
    // The page holding the file's last byte reads fine to its end (filemap_fault checks
    // the page index against i_size rounded up): only whole pages past it fault.
    const end = v.pgoff * PG + (v.end - v.start);
    const pages = Math.ceil(f.size / PG) * PG;
    const state = end <= pages ? "within" : f.size === 0 ? "past-eof:empty" : "past-eof";
    const kind = v.flags.shared ? "shared" : "private";
    add(`m:comp:map:${kind}:${state}:seals=${f.seals & SIZE_SEALS}`);
  }
}

/** Every feature the case reached. */
export function caseFeatures(src: FeatureSources): Set<string> {
  const out = new Set<string>();
  const counts = new Map<string, number>();
  const add = (f: string) => {
    out.add(f);
  };
  const count = (k: string) => {
    counts.set(k, (counts.get(k) ?? 0) + 1);
  };
  const compPid = src.comp.proc.pid;
  const roles = new Map<number, string>();
  const roleOf = (pid: number): string => {
    let r = roles.get(pid);
    if (r !== undefined) return r;
    if (pid === compPid) r = "comp";
    else if (pid === 0) r = "kernel";
    else {
      const name = src.kernel.processes.get(pid)?.name ?? "";
      const base = name.replace(/-child$/, "");
      const honest = src.honest.get(base);
      r = `${honest ? "honest" : honest === false ? "hostile" : "other"}${base !== name ? "-child" : ""}`;
    }
    roles.set(pid, r);
    return r;
  };
  kernelFeatures(src.kernel.events ?? [], roleOf, add, count);
  mappingFeatures(src.comp.proc, add);

  // What each action got. (Not which action followed which: that is the program's text,
  // which blind generation varies for free; the kernel edges above are what it did.)
  for (const a of src.actions) {
    for (const r of a.results) {
      const res = r.result === "ok" ? "ok" : shape(r.result);
      add(`a:${r.k}:${res}`);
      count(`a:${r.k}:${res === "ok" ? "ok" : "fail"}`);
    }
  }
  for (const e of src.comp.errors) {
    const f = `err:${e.interface}:${e.code}:${shape(e.message)}`;
    add(f);
    count("err");
  }
  for (const n of src.comp.notices) {
    add(`notice:${shape(n.what)}`);
    count(`notice:${shape(n.what)}`);
  }
  const rec = src.record;
  if (rec) {
    add(`cell:${rec.cell}`);
    const d = rec.compositor.death;
    if (d) add(`death:${d.signal}:${shape(d.reason)}:${d.fault ?? "-"}`);
    for (const c of rec.clients) {
      const who = c.honest ? "honest" : "hostile";
      add(`client:${who}:${shape(c.state)}:${c.closedBy ?? "open"}`);
      if (c.hostileOutcome) add(`outcome:${c.hostileOutcome.kind}`);
      if (c.honestResult) add(`honest:${c.honestResult.pixels}`);
    }
    const cost = rec.cost;
    add(`cost:faults:${bucket(cost.faults)}`);
    add(`cost:signals:${bucket(cost.signals)}`);
    add(`cost:zero:${bucket(cost.zeroPages)}`);
    if (cost.uffdFaults) add(`cost:uffd:${bucket(cost.uffdFaults)}`);
  }
  if (src.failure) add(`fail:${src.failure}`);
  for (const [k, n] of counts) add(`n:${k}:${bucket(n)}`);
  return out;
}
