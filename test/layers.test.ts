/**
 * The layers are kept by a check, not by care (DESIGN.md: cli → lab → compositor, client →
 * protocol → shm; shm/ knows nothing of Wayland). Every relative import of every .ts file
 * under the layered folders is resolved to the folder it lands in, and must be allowed.
 * Imports are read with TypeScript's own pre-processor (static, `export ... from`, and
 * dynamic `import()` alike), not with a regular expression.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** What each layer may import (itself included). compositor/ and client/ are siblings. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  shm: ["shm"],
  protocol: ["protocol", "shm"],
  compositor: ["compositor", "protocol", "shm"],
  client: ["client", "protocol", "shm"],
  lab: ["lab", "compositor", "client", "protocol", "shm", "native", "real"],
};

/** Policies are user-space code: no kernel internals (shm/kernel.ts), as PolicyEnv says. */
const POLICY_FORBIDDEN_FILES = ["shm/kernel.ts"];

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** The repository-relative paths a file imports (relative specifiers only). */
function importsOf(file: string, source = readFileSync(join(ROOT, file), "utf8")): string[] {
  const info = ts.preProcessFile(source, true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((s) => s.startsWith("."))
    .map((s) =>
      relative(ROOT, resolve(ROOT, dirname(file), s))
        .split(sep)
        .join("/"),
    );
}

/** Every import that breaks a layer rule, as "from → to". */
function violations(files: { file: string; source?: string }[]): string[] {
  const bad: string[] = [];
  for (const { file, source } of files) {
    const layer = file.split("/")[0];
    const allowed = MAY_IMPORT[layer];
    if (!allowed) continue;
    for (const target of importsOf(file, source)) {
      const to = target.split("/")[0];
      if (!allowed.includes(to)) bad.push(`${file} → ${target}`);
      if (file.startsWith("compositor/policies/") && POLICY_FORBIDDEN_FILES.includes(target))
        bad.push(`${file} → ${target} (kernel internals)`);
    }
  }
  return bad;
}

describe("layers", () => {
  const files = Object.keys(MAY_IMPORT).flatMap((d) => tsFiles(d).map((file) => ({ file })));

  it("reads imports of every kind", () => {
    const src = [
      'import { a } from "../protocol/codec.ts";',
      'import type { B } from "../compositor/policy.ts";',
      'export { c } from "./x.ts";',
      'const m = await import("../lab/run.ts");',
      'import { readFileSync } from "node:fs";',
    ].join("\n");
    expect(importsOf("shm/example.ts", src)).toEqual([
      "protocol/codec.ts",
      "compositor/policy.ts",
      "shm/x.ts",
      "lab/run.ts",
    ]);
  });

  it("flags each forbidden direction the rules name", () => {
    const bad = violations([
      { file: "shm/a.ts", source: 'import "../protocol/codec.ts";' },
      { file: "shm/b.ts", source: 'import "../compositor/compositor.ts";' },
      { file: "protocol/c.ts", source: 'import "../compositor/compositor.ts";' },
      { file: "client/d.ts", source: 'import "../compositor/compositor.ts";' },
      { file: "compositor/policies/e.ts", source: 'import "../../lab/run.ts";' },
      { file: "compositor/policies/f.ts", source: 'import "../../client/client.ts";' },
      {
        file: "compositor/policies/g.ts",
        source: 'import type { Kernel } from "../../shm/kernel.ts";',
      },
      { file: "lab/h.ts", source: 'import "../cli/main.ts";' },
      { file: "client/ok.ts", source: 'import "../protocol/codec.ts"; import "../shm/uapi.ts";' },
    ]);
    expect(bad).toEqual([
      "shm/a.ts → protocol/codec.ts",
      "shm/b.ts → compositor/compositor.ts",
      "protocol/c.ts → compositor/compositor.ts",
      "client/d.ts → compositor/compositor.ts",
      "compositor/policies/e.ts → lab/run.ts",
      "compositor/policies/f.ts → client/client.ts",
      "compositor/policies/g.ts → shm/kernel.ts (kernel internals)",
      "lab/h.ts → cli/main.ts",
    ]);
  });

  it("no file of shm/, protocol/, compositor/, client/ or lab/ imports above its layer", () => {
    expect(files.length).toBeGreaterThan(50);
    expect(violations(files)).toEqual([]);
  });
});
