/**
 * The protocol's interfaces as data, transcribed from wayland.xml (wayland 1.23): names,
 * versions, requests and events in wire (opcode) order, argument types, and the error and
 * format enums with their exact numeric values. Everything else in protocol/ is driven by
 * these tables, and a variant (variant.ts) may derive a changed copy for one run.
 *
 * Opcodes are positions in the `requests` / `events` arrays, exactly as wayland-scanner
 * numbers them, so a trace read here means the same thing as a WAYLAND_DEBUG trace.
 */

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
}

export interface EnumEntry {
  readonly name: string;
  readonly value: number;
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

const a = (name: string, type: ArgType, extra: Partial<ArgSpec> = {}): ArgSpec => ({
  name,
  type,
  ...extra,
});

/**
 * wl_shm.format: "The format of the buffer. All renderers should support argb8888 and
 * xrgb8888 but any other formats are optional and may not be supported by the particular
 * renderer in use. The drm format codes match the macros defined in drm_fourcc.h, except
 * argb8888 and xrgb8888."
 */
export const SHM_FORMATS: readonly EnumEntry[] = [
  { name: "argb8888", value: 0 },
  { name: "xrgb8888", value: 1 },
  { name: "c8", value: 0x20203843 },
  { name: "rgb332", value: 0x38424752 },
  { name: "rgb565", value: 0x36314752 },
  { name: "xbgr8888", value: 0x34324258 },
  { name: "abgr8888", value: 0x34324241 },
  { name: "xrgb2101010", value: 0x30335258 },
  { name: "argb2101010", value: 0x30335241 },
];

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

const interfaces: Record<string, InterfaceSpec> = {
  wl_display: {
    name: "wl_display",
    version: 1,
    requests: [
      { name: "sync", args: [a("callback", "new_id", { interface: "wl_callback" })] },
      { name: "get_registry", args: [a("registry", "new_id", { interface: "wl_registry" })] },
    ],
    events: [
      {
        name: "error",
        args: [a("object_id", "object"), a("code", "uint"), a("message", "string")],
      },
      { name: "delete_id", args: [a("id", "uint")] },
    ],
    enums: [
      {
        name: "error",
        entries: [
          { name: "invalid_object", value: 0 },
          { name: "invalid_method", value: 1 },
          { name: "no_memory", value: 2 },
          { name: "implementation", value: 3 },
        ],
      },
    ],
  },
  wl_registry: {
    name: "wl_registry",
    version: 1,
    requests: [
      {
        // wayland.xml declares `<arg name="id" type="new_id"/>` with no interface; libwayland
        // marshals such an untyped new_id as three words "sun": interface name, version, id.
        // The schema spells the three out so every wire item has a type.
        name: "bind",
        args: [
          a("name", "uint"),
          a("interface", "string"),
          a("version", "uint"),
          a("id", "new_id"),
        ],
      },
    ],
    events: [
      { name: "global", args: [a("name", "uint"), a("interface", "string"), a("version", "uint")] },
      { name: "global_remove", args: [a("name", "uint")] },
    ],
    enums: [],
  },
  wl_callback: {
    name: "wl_callback",
    version: 1,
    requests: [],
    // `type="destructor"` on the event: the object is gone once done is sent.
    events: [{ name: "done", args: [a("callback_data", "uint")], destructor: true }],
    enums: [],
  },
  wl_compositor: {
    name: "wl_compositor",
    // Version 4 is the first with wl_surface.damage_buffer, which honest clients use.
    version: 4,
    requests: [
      { name: "create_surface", args: [a("id", "new_id", { interface: "wl_surface" })] },
      { name: "create_region", args: [a("id", "new_id", { interface: "wl_region" })] },
    ],
    events: [],
    enums: [],
  },
  wl_region: {
    name: "wl_region",
    version: 1,
    requests: [
      { name: "destroy", args: [], destructor: true },
      {
        name: "add",
        args: [a("x", "int"), a("y", "int"), a("width", "int"), a("height", "int")],
      },
      {
        name: "subtract",
        args: [a("x", "int"), a("y", "int"), a("width", "int"), a("height", "int")],
      },
    ],
    events: [],
    enums: [],
  },
  wl_surface: {
    name: "wl_surface",
    version: 4,
    requests: [
      { name: "destroy", args: [], destructor: true },
      {
        name: "attach",
        args: [
          a("buffer", "object", { interface: "wl_buffer", nullable: true }),
          a("x", "int"),
          a("y", "int"),
        ],
      },
      {
        name: "damage",
        args: [a("x", "int"), a("y", "int"), a("width", "int"), a("height", "int")],
      },
      { name: "frame", args: [a("callback", "new_id", { interface: "wl_callback" })] },
      {
        name: "set_opaque_region",
        args: [a("region", "object", { interface: "wl_region", nullable: true })],
      },
      {
        name: "set_input_region",
        args: [a("region", "object", { interface: "wl_region", nullable: true })],
      },
      { name: "commit", args: [] },
      { name: "set_buffer_transform", args: [a("transform", "int")], since: 2 },
      { name: "set_buffer_scale", args: [a("scale", "int")], since: 3 },
      {
        name: "damage_buffer",
        args: [a("x", "int"), a("y", "int"), a("width", "int"), a("height", "int")],
        since: 4,
      },
    ],
    // enter/leave name a wl_output, which shmlab does not model; no event is ever sent.
    events: [],
    enums: [
      {
        name: "error",
        entries: [
          { name: "invalid_scale", value: 0 },
          { name: "invalid_transform", value: 1 },
          { name: "invalid_size", value: 2 },
          { name: "invalid_offset", value: 3 },
        ],
      },
    ],
  },
  wl_shm: {
    name: "wl_shm",
    version: 2,
    requests: [
      {
        name: "create_pool",
        args: [a("id", "new_id", { interface: "wl_shm_pool" }), a("fd", "fd"), a("size", "int")],
      },
      { name: "release", args: [], since: 2, destructor: true },
    ],
    events: [{ name: "format", args: [a("format", "enum", { enum: "wl_shm.format" })] }],
    enums: [
      {
        name: "error",
        entries: [
          { name: "invalid_format", value: 0 },
          { name: "invalid_stride", value: 1 },
          { name: "invalid_fd", value: 2 },
        ],
      },
      {
        name: "format",
        entries: SHM_FORMATS,
        invalidError: { interface: "wl_shm", error: "invalid_format" },
      },
    ],
  },
  wl_shm_pool: {
    name: "wl_shm_pool",
    version: 2,
    requests: [
      {
        name: "create_buffer",
        args: [
          a("id", "new_id", { interface: "wl_buffer" }),
          a("offset", "int"),
          a("width", "int"),
          a("height", "int"),
          a("stride", "int"),
          a("format", "enum", { enum: "wl_shm.format" }),
        ],
      },
      { name: "destroy", args: [], destructor: true },
      { name: "resize", args: [a("size", "int")] },
    ],
    events: [],
    enums: [],
  },
  wl_buffer: {
    name: "wl_buffer",
    version: 1,
    requests: [{ name: "destroy", args: [], destructor: true }],
    events: [{ name: "release", args: [] }],
    enums: [],
  },
};

export const BASE_SCHEMA: Schema = deepFreeze({ interfaces });

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
