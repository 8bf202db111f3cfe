/**
 * From parsed protocol XML (protocol-xml.ts) to the schema's tables (schema.ts types),
 * with the checks that need every file at once: an interface named by an argument must
 * exist, and so must an enum named by `enum=`.
 *
 * Two translations follow wayland-scanner and libwayland:
 *   - an int/uint argument with `enum=` becomes an "enum" argument of that enum, qualified
 *     with the interface when the XML leaves it bare (`enum="format"` in wl_shm);
 *   - a new_id without `interface=` (wl_registry.bind) is marshalled as three items,
 *     signature "sun": the interface's name, the version asked for, and the id.
 */
import {
  type ParsedArg,
  type ParsedEnum,
  type ParsedInterface,
  type ParsedMessage,
  ProtocolXmlError,
} from "./protocol-xml.ts";
import type { ArgSpec, EnumEntry, EnumSpec, InterfaceSpec, MessageSpec } from "./schema.ts";

export function argsOf(iface: string, args: readonly ParsedArg[]): ArgSpec[] {
  const out: ArgSpec[] = [];
  for (const a of args) {
    if (a.type === "new_id" && !a.interface) {
      out.push({ name: "interface", type: "string" }, { name: "version", type: "uint" });
      out.push({ name: a.name, type: "new_id" });
      continue;
    }
    const spec: ArgSpec = {
      name: a.name,
      type: a.enum ? "enum" : (a.type as ArgSpec["type"]),
      ...(a.interface ? { interface: a.interface } : {}),
      ...(a.allowNull ? { nullable: true } : {}),
      ...(a.enum ? { enum: a.enum.includes(".") ? a.enum : `${iface}.${a.enum}` } : {}),
    };
    out.push(spec);
  }
  return out;
}

export function messageOf(iface: string, m: ParsedMessage): MessageSpec {
  return {
    name: m.name,
    args: argsOf(iface, m.args),
    ...(m.since !== undefined ? { since: m.since } : {}),
    ...(m.destructor ? { destructor: true } : {}),
    ...(m.deprecatedSince !== undefined ? { deprecatedSince: m.deprecatedSince } : {}),
  };
}

export function enumOf(e: ParsedEnum): EnumSpec {
  const entries: EnumEntry[] = e.entries.map((x) => ({
    name: x.name,
    value: x.value,
    ...(x.since !== undefined ? { since: x.since } : {}),
    ...(x.deprecatedSince !== undefined ? { deprecatedSince: x.deprecatedSince } : {}),
  }));
  return { name: e.name, entries, ...(e.bitfield ? { bitfield: true } : {}) };
}

export function interfaceOf(p: ParsedInterface): InterfaceSpec {
  return {
    name: p.name,
    version: p.version,
    requests: p.requests.map((m) => messageOf(p.name, m)),
    events: p.events.map((m) => messageOf(p.name, m)),
    enums: p.enums.map(enumOf),
  };
}

/**
 * Every `interface=` and `enum=` of `parsed` must name something in `all` (the whole
 * protocol the run will speak), or an interface the caller declares `outside` it (an
 * extension naming wl_seat, which shmlab does not model). Throws ProtocolXmlError at the
 * argument's line.
 */
export function checkReferences(
  parsed: readonly ParsedInterface[],
  all: Readonly<Record<string, InterfaceSpec>>,
  outside: readonly string[] = [],
): void {
  for (const p of parsed) {
    for (const m of [...p.requests, ...p.events]) {
      for (const a of m.args) {
        const label = `<arg name="${a.name}"> of ${p.name}.${m.name}`;
        if (a.interface && !Object.hasOwn(all, a.interface) && !outside.includes(a.interface))
          throw new ProtocolXmlError(
            p.file,
            a.line,
            label,
            `interface ${a.interface} is not defined (known: ${Object.keys(all).join(", ")})`,
          );
        if (a.enum) {
          const q = a.enum.includes(".") ? a.enum : `${p.name}.${a.enum}`;
          const [i, e] = q.split(".");
          if (!Object.hasOwn(all, i) || !all[i].enums.some((x) => x.name === e))
            throw new ProtocolXmlError(p.file, a.line, label, `enum ${q} is not defined`);
        }
      }
    }
  }
}

/** Builds the interface table of several files, rejecting an interface defined twice. */
export function interfacesOf(parsed: readonly ParsedInterface[]): Record<string, InterfaceSpec> {
  const out: Record<string, InterfaceSpec> = {};
  const where = new Map<string, ParsedInterface>();
  for (const p of parsed) {
    const first = where.get(p.name);
    if (first)
      throw new ProtocolXmlError(
        p.file,
        p.line,
        `<interface name="${p.name}">`,
        `defined twice (first in ${first.file}:${first.line})`,
      );
    where.set(p.name, p);
    out[p.name] = interfaceOf(p);
  }
  checkReferences(parsed, out);
  return out;
}
