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
  const reader = new Reader(file, opts);
  let tagLine = 1;
  parser.on("error", (err) => reader.malformed(err.message, parser.line, parser.position));
  parser.on("opentagstart", () => {
    tagLine = parser.line;
  });
  parser.on("opentag", (tag) => reader.open(tag, tagLine));
  parser.on("closetag", (tag) => reader.close(tag, parser.position));
  parser.write(text).close();
  return reader.result();
}

/** The attributes of one element, with the checks every element's reader uses. */
class Attrs {
  constructor(
    private readonly tag: SaxesTagPlain,
    readonly line: number,
    readonly label: string,
    private readonly file: string,
  ) {}

  fail(reason: string): never {
    throw new ProtocolXmlError(this.file, this.line, this.label, reason);
  }

  raw(name: string): string | undefined {
    return this.tag.attributes[name];
  }

  need(name: string): string {
    const v = this.raw(name);
    if (v === undefined) this.fail(`missing attribute ${name}`);
    return v;
  }

  ident(re: RegExp = IDENT): string {
    const n = this.need("name");
    if (!re.test(n)) this.fail(`name ${JSON.stringify(n)} is not an identifier`);
    return n;
  }

  /** A decimal or 0x hexadecimal integer, as wayland-scanner reads them. */
  num(name: string, min: number): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const n = /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > 0xffffffff)
      this.fail(`${name}=${JSON.stringify(v)} is not an integer >= ${min}`);
    return n;
  }

  bool(name: string): boolean {
    const v = this.raw(name);
    if (v === undefined) return false;
    if (v !== "true" && v !== "false")
      this.fail(`${name}=${JSON.stringify(v)} must be "true" or "false"`);
    return v === "true";
  }

  /** name, since and deprecated-since, checked against the interface's version. */
  versioned(name: string, max: number): { name: string; since?: number; deprecatedSince?: number } {
    const since = this.num("since", 1);
    const deprecatedSince = this.num("deprecated-since", 1);
    if (since !== undefined && since > max)
      this.fail(`since=${since} is above the interface's version ${max}`);
    if (deprecatedSince !== undefined && deprecatedSince > max)
      this.fail(`deprecated-since=${deprecatedSince} is above the interface's version ${max}`);
    if (deprecatedSince !== undefined && deprecatedSince <= (since ?? 1))
      this.fail(`deprecated-since=${deprecatedSince} is not after since=${since ?? 1}`);
    return {
      name,
      ...(since !== undefined ? { since } : {}),
      ...(deprecatedSince !== undefined ? { deprecatedSince } : {}),
    };
  }
}

type MutableMessage = Omit<ParsedMessage, "args"> & { args: ParsedArg[] };
type MutableEnum = Omit<ParsedEnum, "entries"> & { entries: ParsedEntry[] };

/** saxes's events, turned into the parsed protocol, element by element. */
class Reader {
  private readonly stack: Open[] = [];
  private readonly interfaces: MutableIface[] = [];
  /** Elements closed at one position: how a mismatched close tag shows which was unclosed. */
  private readonly closedHere: { open: Open; position: number }[] = [];
  private protocolName = "";
  private sawRoot = false;
  private iface: MutableIface | null = null;
  private message: MutableMessage | null = null;
  private enumSpec: MutableEnum | null = null;

  constructor(
    private readonly file: string,
    private readonly opts: ParseOptions,
  ) {}

  private fail(line: number, element: string, reason: string): never {
    throw new ProtocolXmlError(this.file, line, element, reason);
  }

  /** A well-formedness error from saxes ("line:column: message"). */
  malformed(message: string, line: number, position: number): never {
    const reason = message.replace(/^\d+:\d+: /, "");
    // An unclosed tag is reported at the end of the file: name where it was opened.
    const unclosed = /^unclosed tag: (\S+)/.exec(reason);
    const open = unclosed && [...this.stack].reverse().find((o) => o.tag.name === unclosed[1]);
    if (open) this.fail(open.line, open.label, "opened here and never closed");
    // A close tag that matches an outer element: saxes first closes the inner ones (at
    // this same position), then reports it. The innermost of those is the unclosed one.
    const inner = this.closedHere.find((c) => c.position === position);
    if (inner && reason.startsWith("unexpected close tag"))
      this.fail(
        inner.open.line,
        inner.open.label,
        `opened here and never closed (line ${line} closes an outer tag)`,
      );
    this.fail(line, "XML", `not well-formed: ${reason}`);
  }

  open(tag: SaxesTagPlain, line: number): void {
    const owner = [this.iface?.name, this.message?.name ?? this.enumSpec?.name]
      .filter(Boolean)
      .join(".");
    const a = new Attrs(tag, line, labelOf(tag, tag.name === "interface" ? "" : owner), this.file);
    const parent = this.stack.at(-1);
    if (!parent) {
      if (tag.name !== "protocol") a.fail("the root element must be <protocol>");
      this.sawRoot = true;
    } else if (!CHILDREN[parent.tag.name]?.includes(tag.name)) {
      a.fail(
        CHILDREN[tag.name]
          ? `not allowed inside <${parent.tag.name}>`
          : `unknown element (wayland.dtd has ${Object.keys(CHILDREN).join(", ")})`,
      );
    }
    for (const k of Object.keys(tag.attributes))
      if (!ATTRS[tag.name].includes(k))
        a.fail(`unknown attribute ${k} (allowed: ${ATTRS[tag.name].join(", ") || "none"})`);
    this.stack.push({ tag, line, label: a.label });
    if (tag.name === "protocol") this.protocolName = a.ident();
    else if (tag.name === "interface") this.readInterface(a);
    else if (tag.name === "request" || tag.name === "event") this.readMessage(tag.name, a);
    else if (tag.name === "arg") this.readArg(a);
    else if (tag.name === "enum") this.readEnum(a);
    else if (tag.name === "entry") this.readEntry(a);
  }

  close(tag: { name: string }, position: number): void {
    const open = this.stack.pop() as Open;
    if (this.closedHere[0]?.position !== position) this.closedHere.length = 0;
    this.closedHere.push({ open, position });
    if (tag.name === "interface") this.iface = null;
    else if (tag.name === "request" || tag.name === "event") this.message = null;
    else if (tag.name === "enum") this.enumSpec = null;
  }

  result(): ParsedProtocol {
    if (!this.sawRoot) this.fail(1, "XML", "no <protocol> element");
    return { name: this.protocolName, file: this.file, interfaces: this.interfaces };
  }

  private readInterface(a: Attrs): void {
    const name = a.ident();
    const version = a.num("version", 1);
    if (version === undefined) a.fail("missing attribute version");
    const first = this.interfaces.find((i) => i.name === name);
    if (first) a.fail(`duplicate interface (first at line ${first.line})`);
    this.iface = {
      name,
      version,
      requests: [],
      events: [],
      enums: [],
      line: a.line,
      file: this.file,
    };
    this.interfaces.push(this.iface);
  }

  private readMessage(kind: "request" | "event", a: Attrs): void {
    const cur = this.iface as MutableIface;
    const name = a.ident();
    const list = kind === "request" ? cur.requests : cur.events;
    const first = list.find((m) => m.name === name);
    if (first) a.fail(`duplicate ${kind} name (first at line ${first.line})`);
    const type = a.raw("type");
    if (type !== undefined && type !== "destructor")
      a.fail(`type=${JSON.stringify(type)}: the only message type is "destructor"`);
    this.message = {
      kind,
      ...a.versioned(name, cur.version),
      destructor: type === "destructor",
      args: [],
      line: a.line,
    };
    list.push(this.message);
  }

  private readArg(a: Attrs): void {
    const m = this.message as MutableMessage;
    const name = a.ident();
    if (m.args.some((x) => x.name === name)) a.fail("duplicate argument name");
    const type = a.need("type");
    if (!(XML_ARG_TYPES as readonly string[]).includes(type))
      a.fail(`unknown arg type ${JSON.stringify(type)} (valid: ${XML_ARG_TYPES.join(", ")})`);
    if (type === "array" && !this.opts.arrays)
      a.fail("arg type array is not supported by shmlab's codec");
    const allowNull = a.bool("allow-null");
    if (allowNull && !["object", "string", "new_id"].includes(type))
      a.fail(`allow-null on a ${type} argument (only object, string, new_id)`);
    const ifaceRef = a.raw("interface");
    if (ifaceRef !== undefined && type !== "object" && type !== "new_id")
      a.fail(`interface= on a ${type} argument (only object and new_id)`);
    if (ifaceRef !== undefined && !IDENT.test(ifaceRef))
      a.fail(`interface=${JSON.stringify(ifaceRef)} is not an identifier`);
    const enumRef = a.raw("enum");
    if (enumRef !== undefined && type !== "int" && type !== "uint")
      a.fail(`enum= on a ${type} argument (only int and uint)`);
    if (
      enumRef !== undefined &&
      !/^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$/.test(enumRef)
    )
      a.fail(`enum=${JSON.stringify(enumRef)} is not "name" or "interface.name"`);
    if (type === "new_id" && !ifaceRef && m.kind === "event")
      a.fail("an event's new_id must name its interface");
    m.args.push({
      name,
      type: type as XmlArgType,
      ...(ifaceRef !== undefined ? { interface: ifaceRef } : {}),
      allowNull,
      ...(enumRef !== undefined ? { enum: enumRef } : {}),
      line: a.line,
    });
  }

  private readEnum(a: Attrs): void {
    const cur = this.iface as MutableIface;
    const name = a.ident();
    const first = cur.enums.find((e) => e.name === name);
    if (first) a.fail(`duplicate enum name (first at line ${first.line})`);
    this.enumSpec = {
      ...a.versioned(name, cur.version),
      bitfield: a.bool("bitfield"),
      entries: [],
      line: a.line,
    };
    cur.enums.push(this.enumSpec);
  }

  private readEntry(a: Attrs): void {
    const e = this.enumSpec as MutableEnum;
    const name = a.ident(ENTRY_IDENT);
    const first = e.entries.find((x) => x.name === name);
    if (first) a.fail(`duplicate entry name (first at line ${first.line})`);
    const value = a.num("value", 0);
    if (value === undefined) a.fail("missing attribute value");
    const clash = e.entries.find((x) => x.value === value);
    if (clash)
      a.fail(`value ${a.raw("value")} clashes with entry ${clash.name} (line ${clash.line})`);
    e.entries.push({ ...a.versioned(name, this.iface?.version ?? 1), value, line: a.line });
  }
}

/** `<arg name="fd"> of wl_shm.create_pool`: the element as a reader finds it in the file. */
function labelOf(tag: SaxesTagPlain, owner: string): string {
  const name = tag.attributes.name;
  const el = name === undefined ? `<${tag.name}>` : `<${tag.name} name="${name}">`;
  return owner ? `${el} of ${owner}` : el;
}
