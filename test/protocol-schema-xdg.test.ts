/**
 * The hand-transcribed xdg-shell interfaces (protocol/schema-xdg.ts) held to the protocol
 * file itself (protocol/xml/extensions/xdg-shell.xml, read by protocol/protocol-xml.ts):
 * the same messages in the same order (opcodes), the same argument names and wire types,
 * interfaces, nullability, `since`, destructors and error enums.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseProtocolXml } from "../protocol/protocol-xml.ts";
import { XDG_INTERFACES } from "../protocol/schema-xdg.ts";

const FILE = new URL("../protocol/xml/extensions/xdg-shell.xml", import.meta.url);
const parsed = parseProtocolXml(readFileSync(FILE, "utf8"), "xdg-shell.xml", { arrays: true });

describe("xdg-shell schema against xdg-shell.xml", () => {
  for (const [name, spec] of Object.entries(XDG_INTERFACES)) {
    it(`${name}: messages, arguments and error codes as the XML has them`, () => {
      const x = parsed.interfaces.find((i) => i.name === name);
      expect(x, `${name} in xdg-shell.xml`).toBeDefined();
      expect(spec.version).toBe(x!.version);
      for (const kind of ["requests", "events"] as const) {
        const ours = spec[kind].map((m) => ({
          name: m.name,
          since: m.since ?? 1,
          destructor: m.destructor ?? false,
          args: m.args.map((a) => [a.name, a.type, a.interface ?? null, a.nullable ?? false]),
        }));
        const theirs = x![kind].map((m) => ({
          name: m.name,
          since: m.since ?? 1,
          destructor: m.destructor,
          args: m.args.map((a) => [a.name, a.type, a.interface ?? null, a.allowNull]),
        }));
        expect(ours).toEqual(theirs);
      }
      const ourErr = spec.enums
        .find((e) => e.name === "error")
        ?.entries.map((e) => [e.name, e.value]);
      const xmlErr = x!.enums
        .find((e) => e.name === "error")
        ?.entries.map((e) => [e.name, e.value]);
      expect(ourErr).toEqual(xmlErr);
    });
  }
});
