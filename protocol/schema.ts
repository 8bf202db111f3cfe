/**
 * The protocol's interfaces as data, built at load from the Wayland protocol XML in
 * protocol/xml/ (wayland.xml's subset that shmlab speaks): names, versions, requests and
 * events in wire (opcode) order, argument types, and the error and format enums with their
 * exact numeric values. Everything else in protocol/ is driven by these tables, and a
 * variant (variant.ts) may derive a changed copy for one run, e.g. from a proposal's XML.
 *
 * Opcodes are positions in the `requests` / `events` arrays, exactly as wayland-scanner
 * numbers them, so a trace read here means the same thing as a WAYLAND_DEBUG trace.
 */

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseProtocolXml } from "./protocol-xml.ts";
import { interfacesOf } from "./xml-schema.ts";

export type ArgType = "int" | "uint" | "fixed" | "string" | "object" | "new_id" | "fd" | "enum";

export interface ArgSpec {
  readonly name: string;
  readonly type: ArgType;
  /** For object / new_id: the interface the id must name. Absent on an untyped new_id. */
  readonly interface?: string;
  /** `allow-null="true"` in wayland.xml: object may be 0, string may be null. */
  readonly nullable?: boolean;
  /** For enum args: "iface.enumname" (wayland.xml `enum=` attribute). */
  readonly enum?: string;
}

export interface MessageSpec {
  readonly name: string;
  readonly args: readonly ArgSpec[];
  /** The interface version the message first appeared in (`since=`), default 1. */
  readonly since?: number;
  /** `type="destructor"`: the object is destroyed once the request is handled. */
  readonly destructor?: boolean;
  /** `deprecated-since=`: the version from which the message should no longer be used. */
  readonly deprecatedSince?: number;
}

export interface EnumEntry {
  readonly name: string;
  readonly value: number;
  readonly since?: number;
  readonly deprecatedSince?: number;
}

export interface EnumSpec {
  readonly name: string;
  readonly entries: readonly EnumEntry[];
  readonly bitfield?: boolean;
  /**
   * Which error of which interface a value outside this enum raises, when the argument is
   * validated before dispatch. libwayland's wl_shm.c: `wl_resource_post_error(resource,
   * WL_SHM_ERROR_INVALID_FORMAT, "invalid format 0x%x", format)`. Without it, a bad value is
   * wl_display.invalid_method, as for any other invalid argument.
   */
  readonly invalidError?: { readonly interface: string; readonly error: string };
}

export interface InterfaceSpec {
  readonly name: string;
  readonly version: number;
  readonly requests: readonly MessageSpec[];
  readonly events: readonly MessageSpec[];
  readonly enums: readonly EnumSpec[];
}

export interface Schema {
  readonly interfaces: Readonly<Record<string, InterfaceSpec>>;
}

/** Bytes per pixel of each format above, for stride checks by the compositor. */
export const SHM_FORMAT_BPP: Readonly<Record<number, number>> = {
  0: 4,
  1: 4,
  538982467: 1,
  943867730: 1,
  909199186: 2,
  875709016: 4,
  875708993: 4,
  808669784: 4,
  808669761: 4,
};

/** Where the base protocol's XML files live: every *.xml here is loaded, in name order. */
export const BASE_XML_DIR = fileURLToPath(new URL("./xml/", import.meta.url));

/**
 * Builds a schema from protocol XML texts (one or more files that together name every
 * interface they reference). Throws ProtocolXmlError naming the file, line and element.
 */
export function schemaFromXml(files: readonly { text: string; file: string }[]): Schema {
  const parsed = files.flatMap((f) => parseProtocolXml(f.text, f.file).interfaces);
  return deepFreeze({ interfaces: withLibwaylandChecks(interfacesOf(parsed)) });
}

/** The base protocol's files as (text, file) pairs, file names relative to the repo. */
export function baseXmlFiles(): { text: string; file: string }[] {
  return readdirSync(BASE_XML_DIR)
    .filter((f) => f.endsWith(".xml"))
    .sort()
    .map((f) => ({ text: readFileSync(join(BASE_XML_DIR, f), "utf8"), file: `protocol/xml/${f}` }));
}

/**
 * What libwayland adds to the XML for wl_shm, which the XML cannot say: a format outside
 * the enum is wl_shm.invalid_format (wl_shm.c: `wl_resource_post_error(resource,
 * WL_SHM_ERROR_INVALID_FORMAT, "invalid format 0x%x", format)`), not invalid_method.
 */
export function withLibwaylandChecks(
  interfaces: Readonly<Record<string, InterfaceSpec>>,
): Record<string, InterfaceSpec> {
  const shm = interfaces.wl_shm;
  if (!shm?.enums.some((e) => e.name === "format")) return { ...interfaces };
  const enums = shm.enums.map((e) =>
    e.name === "format"
      ? { ...e, invalidError: { interface: "wl_shm", error: "invalid_format" } }
      : e,
  );
  return { ...interfaces, wl_shm: { ...shm, enums } };
}

/** The protocol shmlab speaks, built from protocol/xml/ when this module loads. */
export const BASE_SCHEMA: Schema = schemaFromXml(baseXmlFiles());

/**
 * wl_shm.format's entries (protocol/xml/wayland.xml): "All renderers should support
 * argb8888 and xrgb8888 but any other formats are optional". DRM fourcc codes, except
 * argb8888 and xrgb8888.
 */
export const SHM_FORMATS: readonly EnumEntry[] =
  findEnum(BASE_SCHEMA, "wl_shm.format")?.entries ?? [];

/** wl_display's error codes, the errors every protocol violation ends as. */
export const DISPLAY_ERROR = {
  invalid_object: 0,
  invalid_method: 1,
  no_memory: 2,
  implementation: 3,
} as const;
export type DisplayErrorName = keyof typeof DISPLAY_ERROR;

export const SHM_ERROR = { invalid_format: 0, invalid_stride: 1, invalid_fd: 2 } as const;

/** The wl_display object: "The core global object ... always has object id 1". */
export const DISPLAY_ID = 1;

export function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

export function getInterface(schema: Schema, name: string): InterfaceSpec | undefined {
  return Object.hasOwn(schema.interfaces, name) ? schema.interfaces[name] : undefined;
}

export function findEnum(schema: Schema, qualified: string): EnumSpec | undefined {
  const dot = qualified.indexOf(".");
  const iface = getInterface(schema, qualified.slice(0, dot));
  return iface?.enums.find((e) => e.name === qualified.slice(dot + 1));
}

export function enumValue(schema: Schema, iface: string, enumName: string, entry: string): number {
  const e = findEnum(schema, `${iface}.${enumName}`)?.entries.find((x) => x.name === entry);
  if (!e) throw new Error(`schema has no ${iface}.${enumName}.${entry}`);
  return e.value;
}

export function requestOpcode(schema: Schema, iface: string, request: string): number {
  const i = getInterface(schema, iface)?.requests.findIndex((r) => r.name === request) ?? -1;
  if (i < 0) throw new Error(`schema has no request ${iface}.${request}`);
  return i;
}

export function eventOpcode(schema: Schema, iface: string, event: string): number {
  const i = getInterface(schema, iface)?.events.findIndex((r) => r.name === event) ?? -1;
  if (i < 0) throw new Error(`schema has no event ${iface}.${event}`);
  return i;
}

/** Wayland's 24.8 signed fixed point, carried on the wire as its int32 bit pattern. */
export function fixedFromDouble(d: number): number {
  return Math.round(d * 256) | 0;
}
export function fixedToDouble(f: number): number {
  return f / 256;
}
