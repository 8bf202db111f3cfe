/**
 * Wayland protocol XML, read as wayland-scanner reads it: <protocol> holding <interface>s
 * of <request>s, <event>s and <enum>s. This file checks everything one file can tell on
 * its own (well-formedness, element nesting, attribute names and values, argument types,
 * duplicate names, enum value clashes, since= within the interface's version) and keeps
 * each element's line, so that every mistake is reported as `file:line: element: reason`.
 * References between interfaces are resolved later, once every file is known
 * (xml-schema.ts).
 *
 * The parser is saxes: it reports the line of every event, which the consistency checks
 * need, and its well-formedness errors carry line and column.
 */
import { SaxesParser, type SaxesTagPlain } from "saxes";

export const XML_ERR = "SHMLAB_ERR_PROTOCOL_XML";

/** A malformed or inconsistent protocol file: names the file, line and element. */
export class ProtocolXmlError extends Error {
  readonly code = XML_ERR;
  constructor(
    readonly file: string,
    readonly line: number,
    readonly element: string,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${element}: ${reason}`);
    this.name = "ProtocolXmlError";
  }
}

/** wayland-scanner's argument types; `array` is valid XML that shmlab's codec cannot carry. */
export const XML_ARG_TYPES = [
  "int",
  "uint",
  "fixed",
  "string",
  "object",
  "new_id",
  "fd",
  "array",
] as const;
export type XmlArgType = (typeof XML_ARG_TYPES)[number];

export interface ParsedArg {
  readonly name: string;
  readonly type: XmlArgType;
  readonly interface?: string;
  readonly allowNull: boolean;
  readonly enum?: string;
  readonly line: number;
}

export interface ParsedMessage {
  readonly kind: "request" | "event";
  readonly name: string;
  readonly since?: number;
  readonly deprecatedSince?: number;
  readonly destructor: boolean;
  readonly args: readonly ParsedArg[];
  readonly line: number;
}

export interface ParsedEntry {
  readonly name: string;
  readonly value: number;
  readonly since?: number;
  readonly deprecatedSince?: number;
  readonly line: number;
}

export interface ParsedEnum {
  readonly name: string;
  readonly bitfield: boolean;
  readonly since?: number;
  readonly entries: readonly ParsedEntry[];
  readonly line: number;
}

export interface ParsedInterface {
  readonly name: string;
  readonly version: number;
  readonly requests: readonly ParsedMessage[];
  readonly events: readonly ParsedMessage[];
  readonly enums: readonly ParsedEnum[];
  readonly line: number;
  readonly file: string;
}

export interface ParsedProtocol {
  readonly name: string;
  readonly file: string;
  readonly interfaces: readonly ParsedInterface[];
}

/** Which children each element may have, and which attributes (wayland.dtd). */
const CHILDREN: Record<string, readonly string[]> = {
  protocol: ["copyright", "description", "interface"],
  interface: ["description", "request", "event", "enum"],
  request: ["description", "arg"],
  event: ["description", "arg"],
  enum: ["description", "entry"],
  entry: ["description"],
  arg: ["description"],
  description: [],
  copyright: [],
};
const ATTRS: Record<string, readonly string[]> = {
  protocol: ["name"],
  interface: ["name", "version", "frozen"],
  request: ["name", "type", "since", "deprecated-since"],
  event: ["name", "type", "since", "deprecated-since"],
  enum: ["name", "since", "bitfield"],
  entry: ["name", "value", "summary", "since", "deprecated-since"],
  arg: ["name", "type", "summary", "interface", "allow-null", "enum"],
  description: ["summary"],
  copyright: [],
};

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Entry names may start with a digit (wl_output.transform's "90").
const ENTRY_IDENT = /^[A-Za-z0-9_]+$/;

interface Open {
  tag: SaxesTagPlain;
  line: number;
  label: string;
}

type MutableIface = Omit<ParsedInterface, "requests" | "events" | "enums"> & {
  requests: ParsedMessage[];
  events: ParsedMessage[];
  enums: ParsedEnum[];
};

export interface ParseOptions {
  /**
   * Accept `array` arguments: for files read by the binary wire codec (protocol/wire.ts)
   * only, since shmlab's own msgpack codec and validator have no arrays.
   */
  arrays?: boolean;
}

/** Parses one protocol file. Throws ProtocolXmlError on the first problem. */
export function parseProtocolXml(
  text: string,
  file: string,
  opts: ParseOptions = {},
): ParsedProtocol {
  const parser = new SaxesParser<{ xmlns: false; position: true }>({
    xmlns: false,
    position: true,
  });
  const stack: Open[] = [];
  const interfaces: MutableIface[] = [];
  let protocolName = "";
  let tagLine = 1;
  let iface: MutableIface | null = null;
  let message: (Omit<ParsedMessage, "args"> & { args: ParsedArg[] }) | null = null;
  let enumSpec: (Omit<ParsedEnum, "entries"> & { entries: ParsedEntry[] }) | null = null;
  let sawRoot = false;
  const closedHere: { open: Open; position: number }[] = [];

  const fail = (line: number, element: string, reason: string): never => {
    throw new ProtocolXmlError(file, line, element, reason);
  };

  parser.on("error", (err) => {
    // saxes reports "line:column: message"; an unclosed tag is reported at the end of
    // the file, so name the line where the tag was opened instead.
    const reason = err.message.replace(/^\d+:\d+: /, "");
    const unclosed = /^unclosed tag: (\S+)/.exec(reason);
    const open = unclosed && [...stack].reverse().find((o) => o.tag.name === unclosed[1]);
    if (open) fail(open.line, open.label, "opened here and never closed");
    // A close tag that matches an outer element: saxes first closes the inner ones (at
    // this same position), then reports it. The innermost of those is the unclosed one.
    const inner = closedHere.find((c) => c.position === parser.position);
    if (inner && reason.startsWith("unexpected close tag"))
      fail(
        inner.open.line,
        inner.open.label,
        `opened here and never closed (line ${parser.line} closes an outer tag)`,
      );
    fail(parser.line, "XML", `not well-formed: ${reason}`);
  });
  parser.on("opentagstart", () => {
    tagLine = parser.line;
  });
  parser.on("opentag", (tag) => {
    const line = tagLine;
    const owner = [iface?.name, message?.name ?? enumSpec?.name].filter(Boolean).join(".");
    const label = labelOf(tag, tag.name === "interface" ? "" : owner);
    const parent = stack.at(-1);
    if (!parent) {
      if (tag.name !== "protocol") fail(line, label, "the root element must be <protocol>");
      sawRoot = true;
    } else if (!CHILDREN[parent.tag.name]?.includes(tag.name)) {
      fail(
        line,
        label,
        CHILDREN[tag.name]
          ? `not allowed inside <${parent.tag.name}>`
          : `unknown element (wayland.dtd has ${Object.keys(CHILDREN).join(", ")})`,
      );
    }
    for (const a of Object.keys(tag.attributes))
      if (!ATTRS[tag.name].includes(a))
        fail(
          line,
          label,
          `unknown attribute ${a} (allowed: ${ATTRS[tag.name].join(", ") || "none"})`,
        );
    stack.push({ tag, line, label });
    const at = tag.attributes;
    const need = (name: string): string => {
      const v = at[name];
      if (v === undefined) fail(line, label, `missing attribute ${name}`);
      return v as string;
    };
    const ident = (re: RegExp = IDENT) => {
      const n = need("name");
      if (!re.test(n)) fail(line, label, `name ${JSON.stringify(n)} is not an identifier`);
      return n;
    };
    const num = (name: string, min: number): number | undefined => {
      const v = at[name];
      if (v === undefined) return undefined;
      const n = /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v) ? Number(v) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < min || n > 0xffffffff)
        fail(line, label, `${name}=${JSON.stringify(v)} is not an integer >= ${min}`);
      return n;
    };
    const bool = (name: string): boolean => {
      const v = at[name];
      if (v === undefined) return false;
      if (v !== "true" && v !== "false")
        fail(line, label, `${name}=${JSON.stringify(v)} must be "true" or "false"`);
      return v === "true";
    };
    const versioned = (name: string) => {
      const since = num("since", 1);
      const deprecatedSince = num("deprecated-since", 1);
      const max = iface?.version ?? 1;
      if (since !== undefined && since > max)
        fail(line, label, `since=${since} is above the interface's version ${max}`);
      if (deprecatedSince !== undefined && deprecatedSince > max)
        fail(
          line,
          label,
          `deprecated-since=${deprecatedSince} is above the interface's version ${max}`,
        );
      if (deprecatedSince !== undefined && deprecatedSince <= (since ?? 1))
        fail(line, label, `deprecated-since=${deprecatedSince} is not after since=${since ?? 1}`);
      return {
        name,
        ...(since !== undefined ? { since } : {}),
        ...(deprecatedSince !== undefined ? { deprecatedSince } : {}),
      };
    };

    switch (tag.name) {
      case "protocol":
        protocolName = ident();
        break;
      case "interface": {
        const name = ident();
        const version = num("version", 1);
        if (version === undefined) fail(line, label, "missing attribute version");
        const first = interfaces.find((i) => i.name === name);
        if (first) fail(line, label, `duplicate interface (first at line ${first.line})`);
        iface = {
          name,
          version: version as number,
          requests: [],
          events: [],
          enums: [],
          line,
          file,
        };
        interfaces.push(iface);
        break;
      }
      case "request":
      case "event": {
        const cur = iface as MutableIface;
        const name = ident();
        const list = tag.name === "request" ? cur.requests : cur.events;
        const first = list.find((m) => m.name === name);
        if (first) fail(line, label, `duplicate ${tag.name} name (first at line ${first.line})`);
        const type = at.type;
        if (type !== undefined && type !== "destructor")
          fail(line, label, `type=${JSON.stringify(type)}: the only message type is "destructor"`);
        message = {
          kind: tag.name,
          ...versioned(name),
          destructor: type === "destructor",
          args: [],
          line,
        };
        list.push(message as ParsedMessage);
        break;
      }
      case "arg": {
        const m = message as NonNullable<typeof message>;
        const name = ident();
        if (m.args.some((x) => x.name === name)) fail(line, label, "duplicate argument name");
        const type = need("type");
        if (!(XML_ARG_TYPES as readonly string[]).includes(type))
          fail(
            line,
            label,
            `unknown arg type ${JSON.stringify(type)} (valid: ${XML_ARG_TYPES.join(", ")})`,
          );
        if (type === "array" && !opts.arrays)
          fail(line, label, "arg type array is not supported by shmlab's codec");
        const allowNull = bool("allow-null");
        if (allowNull && !["object", "string", "new_id"].includes(type))
          fail(line, label, `allow-null on a ${type} argument (only object, string, new_id)`);
        const ifaceRef = at.interface;
        if (ifaceRef !== undefined && type !== "object" && type !== "new_id")
          fail(line, label, `interface= on a ${type} argument (only object and new_id)`);
        if (ifaceRef !== undefined && !IDENT.test(ifaceRef))
          fail(line, label, `interface=${JSON.stringify(ifaceRef)} is not an identifier`);
        const enumRef = at.enum;
        if (enumRef !== undefined && type !== "int" && type !== "uint")
          fail(line, label, `enum= on a ${type} argument (only int and uint)`);
        if (
          enumRef !== undefined &&
          !/^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$/.test(enumRef)
        )
          fail(line, label, `enum=${JSON.stringify(enumRef)} is not "name" or "interface.name"`);
        if (type === "new_id" && !ifaceRef && m.kind === "event")
          fail(line, label, "an event's new_id must name its interface");
        m.args.push({
          name,
          type: type as XmlArgType,
          ...(ifaceRef !== undefined ? { interface: ifaceRef } : {}),
          allowNull,
          ...(enumRef !== undefined ? { enum: enumRef } : {}),
          line,
        });
        break;
      }
      case "enum": {
        const cur = iface as MutableIface;
        const name = ident();
        const first = cur.enums.find((e) => e.name === name);
        if (first) fail(line, label, `duplicate enum name (first at line ${first.line})`);
        const v = versioned(name);
        enumSpec = { ...v, bitfield: bool("bitfield"), entries: [], line };
        cur.enums.push(enumSpec as ParsedEnum);
        break;
      }
      case "entry": {
        const e = enumSpec as NonNullable<typeof enumSpec>;
        const name = ident(ENTRY_IDENT);
        const first = e.entries.find((x) => x.name === name);
        if (first) fail(line, label, `duplicate entry name (first at line ${first.line})`);
        const value = num("value", 0);
        if (value === undefined) fail(line, label, "missing attribute value");
        const clash = e.entries.find((x) => x.value === value);
        if (clash)
          fail(
            line,
            label,
            `value ${at.value} clashes with entry ${clash.name} (line ${clash.line})`,
          );
        e.entries.push({ ...versioned(name), value: value as number, line });
        break;
      }
    }
  });
  parser.on("closetag", (tag) => {
    const open = stack.pop() as Open;
    if (closedHere[0]?.position !== parser.position) closedHere.length = 0;
    closedHere.push({ open, position: parser.position });
    if (tag.name === "interface") iface = null;
    else if (tag.name === "request" || tag.name === "event") message = null;
    else if (tag.name === "enum") enumSpec = null;
  });
  parser.write(text).close();
  if (!sawRoot) fail(1, "XML", "no <protocol> element");
  return { name: protocolName, file, interfaces };
}

/** `<arg name="fd"> of wl_shm.create_pool`: the element as a reader finds it in the file. */
function labelOf(tag: SaxesTagPlain, owner: string): string {
  const name = tag.attributes.name;
  const el = name === undefined ? `<${tag.name}>` : `<${tag.name} name="${name}">`;
  return owner ? `${el} of ${owner}` : el;
}
