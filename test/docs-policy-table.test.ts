/**
 * docs/policies.md's per-policy table ("Read moments, threads and handlers") against the
 * registry: every registered policy (built-in, versioned, construct) has a row, and the
 * row's read moment, damage, destroyed-buffer and thread columns say what the policy
 * declares (`readRules`) and what its instance does (`readDestroyed`).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { getPolicy, policyNames } from "../compositor/policies/index.ts";
import { type Policy, type PolicyEnv, readRules } from "../compositor/policy.ts";
import { Kernel } from "../shm/kernel.ts";

const DOC = new URL("../docs/policies.md", import.meta.url);

/** The rows of the table whose header has "read moment", by policy name. */
function tableRows(md: string): Map<string, string[]> {
  const lines = md.split("\n");
  const head = lines.findIndex((l) => l.startsWith("|") && l.includes("read moment"));
  expect(head, "the per-policy table is in docs/policies.md").toBeGreaterThan(-1);
  const cols = lines[head].split("|").map((c) => c.trim());
  expect(cols.slice(1, 8)).toEqual([
    "policy",
    "version followed",
    "read moment",
    "damage",
    "destroyed buffer",
    "thread",
    "SIGBUS handler",
  ]);
  const rows = new Map<string, string[]>();
  for (const l of lines.slice(head + 2)) {
    if (!l.startsWith("|")) break;
    const c = l.split("|").map((x) => x.trim());
    const name = /^`([^`]+)`$/.exec(c[1]);
    expect(name, `row names one policy in backquotes: ${l}`).not.toBeNull();
    rows.set(name![1], c.slice(2, 8));
  }
  return rows;
}

/** What the table must say of a policy, from its declarations. */
function expected(p: Policy): { read: RegExp; damage: RegExp; destroyed: string; thread: RegExp } {
  const r = readRules(p);
  const inst = p.create(new Kernel().spawn("compositor"), {
    panic: (why) => {
      throw new Error(why);
    },
    onBlocked: () => {},
  } satisfies PolicyEnv);
  const destroyed =
    r.destroyed === "read"
      ? "kept, read bracketed"
      : r.destroyed === "saved"
        ? "kept, read unbracketed when due"
        : inst.readDestroyed
          ? "kept, read unbracketed"
          : "dropped";
  return {
    // "frame", "frame (render time)", "create_buffer (whole) and commit"...
    read: new RegExp(
      `^${r.readAtCreate ? "create_buffer \\(whole\\) and " : ""}${r.at}( \\(.*\\))?$`,
    ),
    damage: new RegExp(
      `^${r.damage}${r.texture === "buffer" ? " \\(buffer texture\\)" : "( \\(surface texture\\))?"}$`,
    ),
    destroyed,
    thread: new RegExp(
      r.thread === "render" ? `^render; bracket on ${r.bracket}$` : "^main( \\(.*\\))?$",
    ),
  };
}

describe("docs/policies.md per-policy table", () => {
  const rows = tableRows(readFileSync(DOC, "utf8"));
  it("lists every registered policy and nothing else", () => {
    expect([...rows.keys()].sort()).toEqual([...policyNames()].sort());
  });
  for (const name of policyNames()) {
    it(`${name}: read moment, damage, destroyed buffer and thread are what it declares`, () => {
      const row = rows.get(name);
      expect(row, `${name} has a row`).toBeDefined();
      const [version, read, damage, destroyed, thread, handler] = row!;
      const e = expected(getPolicy(name));
      expect(version, "version followed").not.toBe("");
      expect(read).toMatch(e.read);
      expect(damage).toMatch(e.damage);
      expect(destroyed).toBe(e.destroyed);
      expect(thread).toMatch(e.thread);
      expect(handler, "SIGBUS handler").not.toBe("");
    });
  }
});
