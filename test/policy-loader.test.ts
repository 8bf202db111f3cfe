/**
 * Policies from a user's file: the registry, loadPolicy, and the worked example of
 * docs/policies.md — extracted from the page, written to a temporary file with its
 * imports pointed at this checkout, loaded, and attacked.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import {
  BUILTIN_POLICIES,
  getPolicy,
  loadPolicy,
  policyNames,
} from "../compositor/policies/index.ts";
import { settle, TestClient } from "../compositor/testing.ts";
import { SHM_ERROR } from "../protocol/schema.ts";

const repo = resolve(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "shmlab-policy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function exampleFromDocs(): string {
  const md = readFileSync(join(repo, "docs/policies.md"), "utf8");
  const at = md.indexOf("<!-- example-policy -->");
  const m = /```ts\n([\s\S]*?)```/.exec(md.slice(at));
  if (!m) throw new Error("no example in docs/policies.md");
  return m[1].replaceAll('from "./', `from "${repo}/`);
}

describe("policy registry and loader", () => {
  it("lists the twelve built-ins, each naming its source", () => {
    expect(policyNames().slice(0, 12)).toEqual(BUILTIN_POLICIES.map((p) => p.name));
    expect(BUILTIN_POLICIES).toHaveLength(12);
    for (const p of BUILTIN_POLICIES) expect(p.source.length).toBeGreaterThan(10);
    expect(() => getPolicy("nope")).toThrow(/known: none, libwayland/);
  });

  it("loads a built-in by name", async () => {
    expect(await loadPolicy("kwin")).toBe(getPolicy("kwin"));
  });

  it("refuses a file that exports no Policy", async () => {
    const f = join(dir, "bad.ts");
    writeFileSync(f, "export default { name: 'x' };\n");
    await expect(loadPolicy(f)).rejects.toThrow(/does not export a Policy/);
  });

  it("loads docs/policies.md's worked example and runs the truncation attack on it", async () => {
    const f = join(dir, "my-policy.ts");
    writeFileSync(f, exampleFromDocs());
    const policy = await loadPolicy(f);
    expect(policy.name).toBe("fstat-then-read");
    const comp = new Compositor({ policy });
    const c = await TestClient.connect(comp);
    const w = await c.window(32, 32);
    expect(comp.frame().buffersRead).toBe(1);
    c.proc.ftruncate(w.fd, 12);
    c.show(w.surface, w.buffer, 32, 32);
    await settle();
    const s = comp.frame();
    await settle();
    expect(s.signals).toBe(0); // the fstat caught it before any load
    expect(c.error).toMatchObject({ objectId: w.buffer, code: SHM_ERROR.invalid_fd });
    expect(comp.alive).toBe(true);
  });
});
