/**
 * Protocol review: a proposal written as Wayland XML plus a rules module runs like the
 * built-in variant it restates, a proposal that does not extend the base is an error at
 * its line, and the review's diff and paragraphs come from the runs.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import { type CompareResult, compare } from "../lab/compare.ts";
import { review } from "../lab/review.ts";
import { renderReviewHtml } from "../lab/review-html.ts";
import { NEW_ID } from "../protocol/client.ts";
import { loadProposal, proposalSchema } from "../protocol/proposal.ts";
import { ProtocolXmlError } from "../protocol/protocol-xml.ts";
import { getVariant, type ProtocolVariant, registerVariant } from "../protocol/variant.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const ex = (f: string) => join(repo, "examples/protocols", f);
const shmlab = (...args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", join(repo, "cli/main.ts"), ...args], {
    cwd: repo,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });

const POLICIES = ["none", "libwayland", "wlroots", "seals-required"];
const BEHAVIOURS = [
  "honest-renderer",
  "truncate-after-commit",
  "truncate-during-read",
  "pool-larger-than-file",
  "resize-pool-smaller",
  "seal-then-play",
];

function matrix(variant: string): CompareResult {
  return compare({
    policies: POLICIES,
    behaviours: BEHAVIOURS,
    seed: 1,
    seeds: 1,
    variant,
    kernelFeatures: [],
    frames: 16,
    honest: 2,
  });
}

const cells = (r: CompareResult) => r.cells.map((c) => `${c.policy} × ${c.behaviour}: ${c.text}`);

const loaded = new Map<string, ProtocolVariant>();
async function proposal(xml: string, rules?: string): Promise<ProtocolVariant> {
  const key = `${xml}+${rules}`;
  if (!loaded.has(key)) {
    const v = await loadProposal(ex(xml), rules && ex(rules));
    registerVariant(v);
    loaded.set(key, v);
  }
  return loaded.get(key) as ProtocolVariant;
}

function xmlError(text: string): ProtocolXmlError {
  try {
    proposalSchema(text, "proposal.xml");
  } catch (e) {
    if (e instanceof ProtocolXmlError) return e;
    throw e;
  }
  throw new Error("no error");
}

const shmBody = readFileSync(ex("standard.xml"), "utf8");
/** standard.xml with one edit, as a proposal under test. */
const edited = (from: string, to: string) => {
  expect(shmBody).toContain(from);
  return shmBody.replace(from, to);
};

describe("a proposal in the protocol's own language", () => {
  it("sealed-pools.xml with its rules gives the same cells as the built-in sealed-pools", async () => {
    const v = await proposal("sealed-pools.xml", "sealed-pools.ts");
    const builtIn = matrix("sealed-pools");
    const fromXml = matrix(v.name);
    expect(cells(fromXml)).toEqual(cells(builtIn));
    expect(fromXml.cells.map((c) => c.verdict)).toEqual(builtIn.cells.map((c) => c.verdict));
    // Not vacuous: the rules are what changes the cells.
    expect(cells(matrix("standard"))).not.toEqual(cells(builtIn));
    const bare = await proposal("sealed-pools.xml");
    expect(cells(matrix(bare.name))).toEqual(cells(matrix("standard")));
  }, 120_000);

  it("shrinkable-pools.xml with its rules gives the same cells as the built-in", async () => {
    const v = await proposal("shrinkable-pools.xml", "shrinkable-pools.ts");
    expect(cells(matrix(v.name))).toEqual(cells(matrix("shrinkable-pools")));
  }, 120_000);

  it("standard.xml restates the base: the same schema and no rules", async () => {
    const v = await proposal("standard.xml");
    expect(v.schema?.(getVariant("standard").schema as never)).toBeDefined();
    const s = proposalSchema(shmBody, "standard.xml");
    const { BASE_SCHEMA } = await import("../protocol/schema.ts");
    expect(s).toEqual(BASE_SCHEMA);
  });

  it("checked-pool-size.xml: wl_shm v3 refuses a pool larger than its file; v2 clients as before", async () => {
    const v = await proposal("checked-pool-size.xml", "checked-pool-size.ts");
    for (const [version, expected] of [
      [3, { code: 3, message: /larger than its file/ }],
      [2, null],
    ] as const) {
      const comp = new Compositor({ policy: "libwayland", server: { variant: v } });
      expect(comp.server.getGlobals().find((g) => g.interface === "wl_shm")?.version).toBe(3);
      const { client, proc } = comp.connectLocal("c");
      const reg = client.request(1, "get_registry", [NEW_ID]);
      let name = 0;
      client.listen(reg, (e, args) => {
        if (e === "global" && args[1] === "wl_shm") name = args[0] as number;
      });
      await client.roundtrip();
      const shm = client.request(reg, "bind", [name, "wl_shm", version, NEW_ID]);
      const fd = proc.memfdCreate("p", 0);
      proc.ftruncate(fd, 4096);
      client.request(shm, "create_pool", [NEW_ID, fd, 8192]);
      await client.roundtrip().catch(() => {});
      if (expected) expect(client.error).toMatchObject({ objectId: shm, ...expected });
      else expect(client.error).toBeNull();
    }
  });
});

describe("a proposal must extend the base", () => {
  const cases: [string, string, RegExp][] = [
    [
      "an unknown interface",
      edited(
        '<interface name="wl_shm_pool" version="2">',
        '<interface name="wp_pool" version="2">',
      ),
      /^proposal\.xml:\d+: <interface name="wp_pool">: unknown interface: a proposal changes interfaces of the base protocol/,
    ],
    [
      "a lower version",
      edited(
        '<interface name="wl_shm_pool" version="2">',
        '<interface name="wl_shm_pool" version="1">',
      ),
      /^proposal\.xml:\d+: <interface name="wl_shm_pool">: version 1 does not extend the base's version 2$/,
    ],
    [
      "a new request without a version bump",
      edited(
        '<request name="release" type="destructor" since="2"/>',
        '<request name="release" type="destructor" since="2"/>\n<request name="create_sealed_pool" since="2"/>',
      ),
      /^proposal\.xml:\d+: <request name="create_sealed_pool"> of wl_shm: a new request needs wl_shm's version raised above the base's 2$/,
    ],
    [
      "a request moved before the base's",
      edited(
        '<interface name="wl_shm" version="2">',
        '<interface name="wl_shm" version="3">\n<request name="first" since="3"/>',
      ),
      /^proposal\.xml:\d+: <request name="first"> of wl_shm: opcode 0 is the base's request create_pool; new messages go after the base's$/,
    ],
    [
      "a changed signature",
      edited(
        '<arg name="size" type="int"/>\n    </request>\n    <event',
        '<arg name="size" type="uint"/>\n    </request>\n    <event',
      ),
      /^proposal\.xml:\d+: <request name="create_pool"> of wl_shm: differs from the base's create_pool/,
    ],
    [
      "a changed error value",
      edited('<entry name="invalid_fd" value="2"/>', '<entry name="invalid_fd" value="7"/>'),
      /^proposal\.xml:\d+: <enum name="error"> of wl_shm: the base's entry invalid_fd = 2 is missing or changed$/,
    ],
  ];
  for (const [what, text, message] of cases) {
    it(what, () => {
      const e = xmlError(text);
      expect(e.code).toBe("SHMLAB_ERR_PROTOCOL_XML");
      expect(e.message).toMatch(message);
    });
  }

  it("a version bump with new messages after the base's is accepted", () => {
    const s = proposalSchema(
      edited(
        '<request name="release" type="destructor" since="2"/>',
        `<request name="release" type="destructor" since="2"/>
    <request name="create_sealed_pool" since="3">
      <arg name="id" type="new_id" interface="wl_shm_pool"/>
      <arg name="fd" type="fd"/>
      <arg name="size" type="int"/>
    </request>`,
      ).replace('<interface name="wl_shm" version="2">', '<interface name="wl_shm" version="3">'),
      "proposal.xml",
    );
    expect(s.interfaces.wl_shm.version).toBe(3);
    expect(s.interfaces.wl_shm.requests.map((r) => r.name)).toEqual([
      "create_pool",
      "release",
      "create_sealed_pool",
    ]);
  });

  it("a rules hook must name a request of the protocol", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shmlab-rules-"));
    const rules = join(dir, "r.ts");
    writeFileSync(rules, `export default { hooks: { "wl_shm.create_sealed_pool": () => {} } };\n`);
    await expect(loadProposal(ex("standard.xml"), rules)).rejects.toThrow(
      /hook wl_shm\.create_sealed_pool names no request of the proposal's protocol/,
    );
  });
});

describe("the reviewed diff", () => {
  it("lists the changed cells with both runs and writes a paragraph per changed behaviour from them", async () => {
    const v = await proposal("sealed-pools.xml", "sealed-pools.ts");
    const a = matrix("standard");
    const b = matrix(v.name);
    const r = review(
      a,
      b,
      { name: "standard", description: "" },
      { name: v.name, description: "" },
    );
    const changed = (p: string, beh: string) =>
      r.changes.find((c) => c.policy === p && c.behaviour === beh);
    // none × truncate-after-commit: the compositor died; sealed pools refuse the fd first.
    const c = changed("none", "truncate-after-commit");
    expect(c?.base.verdict).toBe("died");
    expect(c?.proposal.run.clients.at(-1)?.protocolError?.error).toBe("wl_shm.invalid_fd");
    expect(c?.base.run.timeline.some((e) => e.what === "SIGBUS")).toBe(true);
    const tac = r.summaries.find((s) => s.behaviour === "truncate-after-commit");
    expect(tac?.closes).toContain("none");
    expect(tac?.paragraph).toMatch(/closes this attack under/);
    const honest = r.summaries.find((s) => s.behaviour === "honest-renderer");
    expect(honest?.breaks).toEqual(POLICIES.filter((p) => p !== "seals-required"));
    expect(honest?.paragraph).toMatch(/breaks this honest client under 3 policies/);
    // seals-required refused unsealed pools already: the proposal changes nothing there.
    expect(changed("seals-required", "honest-renderer")).toBeUndefined();
    expect(r.changes.length).toBe(
      a.cells.filter((x, i) => x.text !== b.cells[i].text || x.verdict !== b.cells[i].verdict)
        .length,
    );
    const html = renderReviewHtml(r);
    expect(html).toContain('class="pair"');
    expect(html.match(/<details id="change-/g)?.length).toBe(r.changes.length);
  }, 120_000);
});

describe("shmlab review on the command line", () => {
  it("a malformed XML file is one clear error line and exit 2", () => {
    const dir = mkdtempSync(join(tmpdir(), "shmlab-xml-"));
    const bad = join(dir, "bad.xml");
    writeFileSync(
      bad,
      shmBody.replace('<arg name="fd" type="fd"/>', '<arg name="fd" type="file"/>'),
    );
    const r = shmlab("review", "--protocol", bad, "--no-progress");
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(
        /^shmlab: .*bad\.xml:\d+: <arg name="fd"> of wl_shm\.create_pool: unknown arg type "file" .*\[SHMLAB_ERR_PROTOCOL_XML\]$/,
      ),
    ]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    for (const [name, text, message] of [
      [
        "dup.xml",
        shmBody.replace(
          '<request name="destroy" type="destructor"/>',
          '<request name="destroy" type="destructor"/>\n<request name="destroy"/>',
        ),
        /<request name="destroy"> of wl_shm_pool: duplicate request name \(first at line \d+\)/,
      ],
      [
        "missing.xml",
        shmBody.replace('interface="wl_buffer"', 'interface="wl_bufer"'),
        /<arg name="id"> of wl_shm_pool\.create_buffer: interface wl_bufer is not defined/,
      ],
    ] as const) {
      const path = join(dir, name);
      writeFileSync(path, text);
      const r = shmlab("review", "--protocol", path, "--no-progress");
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
    const unclosed = join(dir, "unclosed.xml");
    writeFileSync(unclosed, shmBody.replace("</protocol>", ""));
    const u = shmlab("review", "--protocol", unclosed, "--no-progress");
    expect(u.status).toBe(2);
    expect(u.stderr.trim().split("\n")).toHaveLength(1);
    expect(u.stderr).toMatch(/opened here and never closed/);
  });

  it("--protocol sealed-pools.xml --rules gives the cells --variant sealed-pools gives", () => {
    const sel = [
      "--policies",
      "none,libwayland",
      "--behaviours",
      "honest-renderer,truncate-after-commit",
      "--no-progress",
    ];
    const fromXml = shmlab(
      "review",
      "--protocol",
      "examples/protocols/sealed-pools.xml",
      "--rules",
      "examples/protocols/sealed-pools.ts",
      ...sel,
    );
    const builtIn = shmlab("review", "--variant", "standard", "--variant", "sealed-pools", ...sel);
    expect(fromXml.status).toBe(0);
    expect(builtIn.status).toBe(0);
    const changed = (out: string) =>
      out
        .slice(out.indexOf("Changed cells:"), out.indexOf("Timelines side by side"))
        .trim()
        .split("\n");
    expect(changed(fromXml.stdout)).toEqual(changed(builtIn.stdout));
    // The proposal side's replay command reruns that run, loading the proposal by its name.
    const replay = fromXml.stdout
      .split("\n")
      .find((l) => l.includes("--variant examples/protocols/sealed-pools.xml+"));
    expect(replay).toBeDefined();
    const args = (replay as string)
      .trim()
      .replace(/^npx shmlab /, "")
      .split(" ");
    const rerun = shmlab(...args);
    expect(rerun.status).toBe(0);
    expect(rerun.stdout).toMatch(/→ error-to-client: invalid_fd|→ honest-harmed: refused/);
    // The heading and 3 cells: libwayland × truncate-after-commit is inv_fd either way.
    expect(changed(fromXml.stdout).length).toBe(4);
    expect(fromXml.stdout).toMatch(/3 of 4 cells change/);
  }, 120_000);
});
