/**
 * xdg-shell (wayland-protocols stable/xdg-shell/xdg-shell.xml), the interfaces a real
 * client needs so that weston and mutter read its buffer at all: they only composite a
 * surface with a role, and the toplevel role is the one every compositor maps. Built at
 * load from protocol/xml/extensions/xdg-shell.xml, so requests and events are in XML order
 * (their opcodes).
 *
 * Kept apart from schema.ts (the wl_shm core that shmlab's own compositor serves), whose
 * ArgType has no `array`, which xdg_toplevel.configure needs: these are wire.ts specs.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseProtocolXml } from "./protocol-xml.ts";
import { BASE_SCHEMA } from "./schema.ts";
import type { WireInterfaceSpec } from "./wire.ts";
import { checkReferences, interfaceOf } from "./xml-schema.ts";

const FILE = "protocol/xml/extensions/xdg-shell.xml";

/**
 * The interfaces of an extension's XML for the wire codec: arrays allowed, references to
 * the base protocol's interfaces and to `outside` ones (not modelled) allowed.
 */
export function wireInterfacesFromXml(
  text: string,
  file: string,
  outside: readonly string[],
): Record<string, WireInterfaceSpec> {
  const parsed = parseProtocolXml(text, file, { arrays: true }).interfaces;
  const out: Record<string, WireInterfaceSpec> = {};
  // interfaceOf passes `array` through unchanged: the wire codec's WireArgType has it.
  for (const p of parsed) out[p.name] = interfaceOf(p) as WireInterfaceSpec;
  checkReferences(parsed, { ...BASE_SCHEMA.interfaces, ...out } as never, outside);
  return out;
}

export const XDG_INTERFACES: Readonly<Record<string, WireInterfaceSpec>> = wireInterfacesFromXml(
  readFileSync(fileURLToPath(new URL("./xml/extensions/xdg-shell.xml", import.meta.url)), "utf8"),
  FILE,
  // Named by xdg-shell, not used by shmlab's clients.
  ["xdg_positioner", "xdg_popup", "wl_seat", "wl_output"],
);
