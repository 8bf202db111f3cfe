/**
 * A protocol proposal as its designer writes it: a Wayland protocol XML file that adds to
 * or changes interfaces of the base protocol (protocol/xml/), and an optional rules module
 * for the semantics XML cannot state (which fds create_pool accepts, whether a pool may
 * shrink). Together they make a ProtocolVariant, run like the built-in ones.
 *
 * The XML must extend the base the way a new version of a Wayland interface does, since
 * deployed clients keep their opcodes: the base's requests, events and enum entries come
 * first, unchanged and in order; anything new needs a version above the base's and a
 * `since=` above it on new messages. The proposal lists only the interfaces it touches;
 * the others are the base's. An interface the base does not have is an error.
 */
import { readFileSync } from "node:fs";
import { basename, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";
import {
  type ParsedEnum,
  type ParsedInterface,
  type ParsedMessage,
  ProtocolXmlError,
  parseProtocolXml,
} from "./protocol-xml.ts";
import {
  BASE_SCHEMA,
  deepFreeze,
  type InterfaceSpec,
  type Schema,
  withLibwaylandChecks,
} from "./schema.ts";
import {
  DEFAULT_RULES,
  getVariant,
  type ProtocolVariant,
  registerVariant,
  type VariantHook,
  type VariantRules,
  variantNames,
} from "./variant.ts";
import { checkReferences, interfaceOf, messageOf } from "./xml-schema.ts";

/** What a rules module exports by default: the semantics of a proposal. */
export interface ProposalRules {
  readonly description?: string;
  readonly rules?: Partial<VariantRules>;
  /** `"iface.request"` → a check run before the request is handled (variant.ts). */
  readonly hooks?: Readonly<Record<string, VariantHook>>;
}

export const RULES_ERR = "SHMLAB_ERR_PROPOSAL_RULES";

/**
 * The base schema changed by a proposal's XML. Throws ProtocolXmlError at the line of the
 * first element that does not extend the base.
 */
export function proposalSchema(text: string, file: string, base: Schema = BASE_SCHEMA): Schema {
  const parsed = parseProtocolXml(text, file);
  const merged: Record<string, InterfaceSpec> = { ...base.interfaces };
  for (const p of parsed.interfaces) {
    const b = base.interfaces[p.name];
    if (!b)
      throw new ProtocolXmlError(
        file,
        p.line,
        `<interface name="${p.name}">`,
        `unknown interface: a proposal changes interfaces of the base protocol (${Object.keys(base.interfaces).join(", ")})`,
      );
    merged[p.name] = interfaceOf(p);
  }
  // A name that refers to nothing is the more basic mistake: reported first.
  checkReferences(parsed.interfaces, merged);
  for (const p of parsed.interfaces) checkExtends(p, base.interfaces[p.name]);
  return deepFreeze({ interfaces: withLibwaylandChecks(merged) });
}

function checkExtends(p: ParsedInterface, b: InterfaceSpec): void {
  const where = `<interface name="${p.name}">`;
  const fail = (line: number, element: string, reason: string): never => {
    throw new ProtocolXmlError(p.file, line, element, reason);
  };
  if (p.version < b.version)
    fail(p.line, where, `version ${p.version} does not extend the base's version ${b.version}`);
  const bumped = p.version > b.version;
  const messages = (kind: "request" | "event", mine: readonly ParsedMessage[]) => {
    const theirs = kind === "request" ? b.requests : b.events;
    theirs.forEach((m, i) => {
      const q = mine[i];
      if (!q)
        fail(
          p.line,
          where,
          `the base's ${kind} ${m.name} (opcode ${i}) is missing; opcodes must not move`,
        );
      const label = `<${kind} name="${q.name}"> of ${p.name}`;
      if (q.name !== m.name)
        fail(
          q.line,
          label,
          `opcode ${i} is the base's ${kind} ${m.name}; new messages go after the base's`,
        );
      if (!isDeepStrictEqual(messageOf(p.name, q), m))
        fail(
          q.line,
          label,
          `differs from the base's ${m.name} (arguments, since or destructor); change semantics in the rules file, not the signature`,
        );
    });
    for (const q of mine.slice(theirs.length)) {
      const label = `<${kind} name="${q.name}"> of ${p.name}`;
      if (!bumped)
        fail(
          q.line,
          label,
          `a new ${kind} needs ${p.name}'s version raised above the base's ${b.version}`,
        );
      if ((q.since ?? 1) <= b.version)
        fail(q.line, label, `a new ${kind} needs since= above the base's version ${b.version}`);
    }
  };
  messages("request", p.requests);
  messages("event", p.events);
  for (const be of b.enums) {
    const e: ParsedEnum | undefined = p.enums.find((x) => x.name === be.name);
    if (!e) fail(p.line, where, `the base's enum ${be.name} is missing`);
    const label = `<enum name="${be.name}"> of ${p.name}`;
    for (const entry of be.entries) {
      const q = e?.entries.find((x) => x.name === entry.name);
      if (!q || q.value !== entry.value)
        fail(
          e?.line ?? p.line,
          label,
          `the base's entry ${entry.name} = ${entry.value} is missing or changed`,
        );
    }
    if (!bumped && (e?.entries.length ?? 0) > be.entries.length)
      fail(
        e?.line ?? p.line,
        label,
        `new entries need ${p.name}'s version raised above the base's ${b.version}`,
      );
  }
  for (const e of p.enums)
    if (!bumped && !b.enums.some((x) => x.name === e.name))
      fail(
        e.line,
        `<enum name="${e.name}"> of ${p.name}`,
        `a new enum needs ${p.name}'s version raised above the base's ${b.version}`,
      );
}

/**
 * Loads a proposal: its XML (checked against the base) and, if given, its rules module's
 * default export. The variant is named after the files as given, so that the name is also
 * how to load it again (a replay command's `--variant a.xml+a.ts`, parseProposalName).
 */
export async function loadProposal(
  xmlPath: string,
  rulesPath?: string,
  load: ModuleLoader = importModule,
): Promise<ProtocolVariant> {
  const text = readFileSync(xmlPath, "utf8");
  const schema = proposalSchema(text, xmlPath);
  const rules = rulesPath ? await loadRules(rulesPath, load) : {};
  for (const key of Object.keys(rules.hooks ?? {})) {
    const [iface, request] = key.split(".");
    if (!schema.interfaces[iface]?.requests.some((r) => r.name === request))
      throw rulesError(
        rulesPath as string,
        `hook ${key} names no request of the proposal's protocol`,
      );
  }
  return {
    name: proposalName(xmlPath, rulesPath),
    description: rules.description ?? `${basename(xmlPath)} (no rules file: XML changes only)`,
    schema: () => schema,
    rules: rules.rules,
    hooks: rules.hooks,
  };
}

/**
 * The rules are part of a proposal's identity: the same XML with and without them are two
 * variants. "dir/p.xml+dir/p.ts", or "dir/p.xml" without rules.
 */
export function proposalName(xmlPath: string, rulesPath?: string): string {
  return rulesPath ? `${xmlPath}+${rulesPath}` : xmlPath;
}

/** The files a proposal's variant name names, or null if it names no proposal. */
export function parseProposalName(name: string): { xml: string; rules?: string } | null {
  const m = /^(.+\.xml)(?:\+(.+\.[cm]?[jt]s))?$/.exec(name);
  return m ? { xml: m[1], ...(m[2] ? { rules: m[2] } : {}) } : null;
}

/**
 * Loads a module by path, for its exports. The default is import(); a thread without tsx's
 * ESM loader (a piscina worker: lab/compare-worker.ts) passes one that can load .ts there.
 */
export type ModuleLoader = (absolutePath: string) => Promise<{ default?: unknown }>;

const importModule: ModuleLoader = (path) => import(pathToFileURL(path).href);

async function loadRules(path: string, load: ModuleLoader): Promise<ProposalRules> {
  const mod = await load(resolve(path));
  const r = mod.default as ProposalRules | undefined;
  const bad = (why: string) => rulesError(path, why);
  if (!r || typeof r !== "object") throw bad("must `export default` the proposal's rules object");
  for (const k of Object.keys(r))
    if (!["description", "rules", "hooks"].includes(k))
      throw bad(`unknown key ${k} (allowed: description, rules, hooks)`);
  for (const k of Object.keys(r.rules ?? {}))
    if (!Object.hasOwn(DEFAULT_RULES, k))
      throw bad(`unknown rule ${k} (known: ${Object.keys(DEFAULT_RULES).join(", ")})`);
  for (const [k, h] of Object.entries(r.hooks ?? {}))
    if (typeof h !== "function" || !/^\w+\.\w+$/.test(k))
      throw bad(`hook ${k} must be "interface.request": (ctx) => void`);
  return r;
}

function rulesError(path: string, why: string): Error {
  return Object.assign(new Error(`${path}: ${why}`), { code: RULES_ERR });
}

/**
 * Makes a proposal's variant selectable by its name (`dir/p.xml+dir/p.ts`): loaded and
 * registered on first use, so `--variant` and replay commands accept proposals too. Other
 * names are left to the registry (getVariant reports unknown ones).
 */
export async function ensureProposalVariant(
  name: string,
  load: ModuleLoader = importModule,
): Promise<ProtocolVariant | null> {
  const files = parseProposalName(name);
  if (!files) return null;
  if (variantNames().includes(name)) return getVariant(name);
  const v = await loadProposal(files.xml, files.rules, load);
  registerVariant(v);
  return v;
}
