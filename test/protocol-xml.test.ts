/**
 * protocol/ is built from Wayland protocol XML: the opcodes are wayland-scanner's, a
 * malformed or inconsistent file is one typed error naming the file, line and element, and
 * the interfaces in the XML are exactly the ones the compositor serves.
 */
import { describe, expect, it } from "vitest";
import { Compositor } from "../compositor/compositor.ts";
import { NEW_ID } from "../protocol/client.ts";
import { ProtocolXmlError, parseProtocolXml } from "../protocol/protocol-xml.ts";
import { BASE_SCHEMA, baseXmlFiles, schemaFromXml } from "../protocol/schema.ts";
import { XDG_INTERFACES } from "../protocol/schema-xdg.ts";

/**
 * The request and event order of each interface in wayland 1.23's protocol/wayland.xml
 * (wayland-scanner numbers opcodes by this order). shmlab may implement a prefix of each
 * list, never skip or reorder one.
 */
const WAYLAND_XML_ORDER: Record<string, { requests: string[]; events: string[] }> = {
  wl_display: { requests: ["sync", "get_registry"], events: ["error", "delete_id"] },
  wl_registry: { requests: ["bind"], events: ["global", "global_remove"] },
  wl_callback: { requests: [], events: ["done"] },
  wl_compositor: { requests: ["create_surface", "create_region"], events: [] },
  wl_shm_pool: { requests: ["create_buffer", "destroy", "resize"], events: [] },
  wl_shm: { requests: ["create_pool", "release"], events: ["format"] },
  wl_buffer: { requests: ["destroy"], events: ["release"] },
  wl_surface: {
    requests: [
      "destroy",
      "attach",
      "damage",
      "frame",
      "set_opaque_region",
      "set_input_region",
      "commit",
      "set_buffer_transform",
      "set_buffer_scale",
      "damage_buffer",
      "offset",
    ],
    events: ["enter", "leave", "preferred_buffer_scale", "preferred_buffer_transform"],
  },
  wl_region: { requests: ["destroy", "add", "subtract"], events: [] },
};

/** The same for wayland-protocols' stable/xdg-shell/xdg-shell.xml. */
const XDG_SHELL_XML_ORDER: Record<string, { requests: string[]; events: string[] }> = {
  xdg_wm_base: {
    requests: ["destroy", "create_positioner", "get_xdg_surface", "pong"],
    events: ["ping"],
  },
  xdg_surface: {
    requests: ["destroy", "get_toplevel", "get_popup", "set_window_geometry", "ack_configure"],
    events: ["configure"],
  },
  xdg_toplevel: {
    requests: [
      "destroy",
      "set_parent",
      "set_title",
      "set_app_id",
      "show_window_menu",
      "move",
      "resize",
      "set_max_size",
      "set_min_size",
      "set_maximized",
      "unset_maximized",
      "set_fullscreen",
      "unset_fullscreen",
      "set_minimized",
    ],
    events: ["configure", "close", "configure_bounds", "wm_capabilities"],
  },
};

const BASE_TEXT = baseXmlFiles().find((f) => f.file.endsWith("wayland.xml"))!.text;

/** The base XML with one interface's element cut out. */
function without(iface: string): string {
  const start = BASE_TEXT.indexOf(`<interface name="${iface}"`);
  const end = BASE_TEXT.indexOf("</interface>", start) + "</interface>".length;
  expect(start).toBeGreaterThan(0);
  return BASE_TEXT.slice(0, start) + BASE_TEXT.slice(end);
}

function xmlError(text: string): ProtocolXmlError {
  try {
    schemaFromXml([{ text, file: "p.xml" }]);
  } catch (e) {
    if (e instanceof ProtocolXmlError) return e;
    throw e;
  }
  throw new Error("no error");
}

const wrap = (body: string) =>
  `<?xml version="1.0"?>\n<protocol name="p">\n<interface name="x_a" version="2">\n${body}\n</interface>\n</protocol>\n`;

describe("protocol XML", () => {
  it("numbers every opcode as wayland-scanner numbers wayland.xml and xdg-shell.xml", () => {
    for (const [name, spec] of Object.entries(BASE_SCHEMA.interfaces)) {
      const real = WAYLAND_XML_ORDER[name];
      expect(real, `${name} is a wayland.xml interface`).toBeDefined();
      expect(spec.requests.map((r) => r.name)).toEqual(
        real.requests.slice(0, spec.requests.length),
      );
      expect(spec.events.map((r) => r.name)).toEqual(real.events.slice(0, spec.events.length));
    }
    for (const [name, spec] of Object.entries(XDG_INTERFACES)) {
      const real = XDG_SHELL_XML_ORDER[name];
      expect(real, `${name} is an xdg-shell.xml interface`).toBeDefined();
      expect(spec.requests.map((r) => r.name)).toEqual(
        real.requests.slice(0, spec.requests.length),
      );
      expect(spec.events.map((r) => r.name)).toEqual(real.events.slice(0, spec.events.length));
    }
    // The numbers the issue names, spelled out.
    const op = (i: string, r: string) =>
      BASE_SCHEMA.interfaces[i].requests.findIndex((x) => x.name === r);
    expect([
      op("wl_surface", "destroy"),
      op("wl_surface", "attach"),
      op("wl_surface", "damage"),
      op("wl_surface", "frame"),
      op("wl_surface", "commit"),
      op("wl_surface", "damage_buffer"),
    ]).toEqual([0, 1, 2, 3, 6, 9]);
  });

  it("reads allow-null, enum=, since, destructors and the untyped new_id of bind", () => {
    const { wl_surface, wl_shm, wl_shm_pool, wl_registry } = BASE_SCHEMA.interfaces;
    expect(wl_surface.requests[1].args[0]).toEqual({
      name: "buffer",
      type: "object",
      interface: "wl_buffer",
      nullable: true,
    });
    expect(wl_shm_pool.requests[0].args[5]).toEqual({
      name: "format",
      type: "enum",
      enum: "wl_shm.format",
    });
    // enum="format" inside wl_shm is wl_shm's own enum.
    expect(wl_shm.events[0].args[0].enum).toBe("wl_shm.format");
    expect(wl_registry.requests[0].args.map((a) => `${a.name}:${a.type}`)).toEqual([
      "name:uint",
      "interface:string",
      "version:uint",
      "id:new_id",
    ]);
    expect(wl_surface.requests[9]).toMatchObject({ name: "damage_buffer", since: 4 });
  });

  it("reads bitfields and deprecated-since", () => {
    const s = schemaFromXml([
      {
        file: "p.xml",
        text: wrap(`<enum name="caps" bitfield="true"><entry name="a" value="1"/><entry name="b" value="0x2" since="2"/></enum>
<request name="old" deprecated-since="2"/>`),
      },
    ]);
    expect(s.interfaces.x_a.enums[0]).toEqual({
      name: "caps",
      bitfield: true,
      entries: [
        { name: "a", value: 1 },
        { name: "b", value: 2, since: 2 },
      ],
    });
    expect(s.interfaces.x_a.requests[0]).toEqual({ name: "old", args: [], deprecatedSince: 2 });
  });

  describe("a malformed or inconsistent file is one error naming the line and element", () => {
    const cases: [string, string, RegExp][] = [
      [
        "unclosed tag",
        wrap(`<request name="r">\n<arg name="a" type="int"/>`),
        /^p\.xml:4: <request name="r"> of x_a: opened here and never closed \(line 6 closes an outer tag\)$/,
      ],
      [
        "unknown arg type",
        wrap(`<request name="r">\n<arg name="a" type="int64"/></request>`),
        /^p\.xml:5: <arg name="a"> of x_a\.r: unknown arg type "int64"/,
      ],
      [
        "duplicate message name",
        wrap(`<request name="r"/>\n<request name="r"/>`),
        /^p\.xml:5: <request name="r"> of x_a: duplicate request name \(first at line 4\)$/,
      ],
      [
        "missing interface",
        wrap(`<request name="r">\n<arg name="o" type="object" interface="x_missing"/></request>`),
        /^p\.xml:5: <arg name="o"> of x_a\.r: interface x_missing is not defined/,
      ],
      [
        "enum value clash",
        wrap(`<enum name="e">\n<entry name="a" value="1"/>\n<entry name="b" value="0x1"/></enum>`),
        /^p\.xml:6: <entry name="b"> of x_a\.e: value 0x1 clashes with entry a \(line 5\)$/,
      ],
      [
        "missing enum",
        wrap(`<request name="r">\n<arg name="f" type="uint" enum="nope"/></request>`),
        /^p\.xml:5: <arg name="f"> of x_a\.r: enum x_a\.nope is not defined$/,
      ],
      [
        "since above the interface version",
        wrap(`<request name="r" since="3"/>`),
        /^p\.xml:4: <request name="r"> of x_a: since=3 is above the interface's version 2$/,
      ],
      [
        "misspelt attribute",
        wrap(`<request name="r">\n<arg name="o" type="object" allow_null="true"/></request>`),
        /^p\.xml:5: <arg name="o"> of x_a\.r: unknown attribute allow_null/,
      ],
      [
        "unclosed at the end of the file",
        `<protocol name="p">\n<interface name="x" version="1">\n`,
        /^p\.xml:2: <interface name="x">: opened here and never closed$/,
      ],
      [
        "a tag closed by its parent's close tag",
        `<protocol name="p"><interface name="x" version="1"></protocol>`,
        /^p\.xml:1: <interface name="x">: opened here and never closed/,
      ],
      [
        "not XML at all",
        `<protocol name="p">\n<interface name=x version="1"/></protocol>`,
        /^p\.xml:2: XML: not well-formed: /,
      ],
    ];
    for (const [what, text, message] of cases) {
      it(what, () => {
        const e = xmlError(text);
        expect(e.code).toBe("SHMLAB_ERR_PROTOCOL_XML");
        expect(e.message).toMatch(message);
        expect(e.message.split("\n")).toHaveLength(1);
      });
    }

    it("the same interface defined in two files", () => {
      expect(() =>
        schemaFromXml([
          { file: "a.xml", text: BASE_TEXT },
          { file: "b.xml", text: BASE_TEXT },
        ]),
      ).toThrow(
        /^b\.xml:\d+: <interface name="wl_display">: defined twice \(first in a\.xml:\d+\)$/,
      );
    });
  });

  it("removing an interface from the XML removes it from the server", async () => {
    const schema = schemaFromXml([{ text: without("wl_compositor"), file: "cut.xml" }]);
    const comp = new Compositor({
      policy: "libwayland",
      server: { variant: { name: "cut", description: "no wl_compositor", schema: () => schema } },
    });
    expect(comp.server.getGlobals().map((g) => g.interface)).toEqual(["wl_shm"]);
    expect(comp.server.impl("wl_compositor")).toBeUndefined();
    const { client } = comp.connectLocal("c");
    const reg = client.request(1, "get_registry", [NEW_ID]);
    const seen: string[] = [];
    client.listen(reg, (e, args) => {
      if (e === "global") seen.push(args[1] as string);
    });
    await client.roundtrip();
    expect(seen).toEqual(["wl_shm"]);
    // The full XML serves both: the removal, not the test, made the difference.
    const full = new Compositor({ policy: "libwayland" });
    expect(full.server.getGlobals().map((g) => g.interface)).toEqual(["wl_compositor", "wl_shm"]);
  });

  it("removing an interface others depend on is an error at the reference", () => {
    const e = xmlError(without("wl_shm"));
    expect(e.message).toMatch(
      /^p\.xml:\d+: <arg name="format"> of wl_shm_pool\.create_buffer: enum wl_shm\.format is not defined$/,
    );
  });

  it("keeps lines of a parsed file for later checks", () => {
    const p = parseProtocolXml(BASE_TEXT, "wayland.xml");
    const shm = p.interfaces.find((i) => i.name === "wl_shm")!;
    const line = BASE_TEXT.split("\n").findIndex((l) => l.includes('<interface name="wl_shm"')) + 1;
    expect(shm.line).toBe(line);
  });
});
