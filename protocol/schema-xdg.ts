/**
 * xdg-shell (wayland-protocols stable/xdg-shell/xdg-shell.xml), the interfaces a real
 * client needs so that weston and mutter read its buffer at all: they only composite a
 * surface with a role, and the toplevel role is the one every compositor maps. Requests
 * and events are in XML order (their opcodes); xdg_positioner and xdg_popup are named by
 * get_popup / create_positioner but not transcribed, since shmlab never creates them.
 *
 * Kept apart from schema.ts (the wl_shm core that shmlab's own compositor serves), whose
 * ArgType has no `array`, which xdg_toplevel.configure needs.
 */
import type { WireArgSpec, WireInterfaceSpec } from "./wire.ts";

const a = (name: string, type: WireArgSpec["type"], extra: Partial<WireArgSpec> = {}) => ({
  name,
  type,
  ...extra,
});

const xywh = [a("x", "int"), a("y", "int"), a("width", "int"), a("height", "int")];

export const XDG_INTERFACES: Readonly<Record<string, WireInterfaceSpec>> = {
  xdg_wm_base: {
    name: "xdg_wm_base",
    version: 5,
    requests: [
      { name: "destroy", args: [], destructor: true },
      {
        name: "create_positioner",
        args: [a("id", "new_id", { interface: "xdg_positioner" })],
      },
      {
        name: "get_xdg_surface",
        args: [
          a("id", "new_id", { interface: "xdg_surface" }),
          a("surface", "object", { interface: "wl_surface" }),
        ],
      },
      { name: "pong", args: [a("serial", "uint")] },
    ],
    events: [{ name: "ping", args: [a("serial", "uint")] }],
    enums: [
      {
        name: "error",
        entries: [
          { name: "role", value: 0 },
          { name: "defunct_surfaces", value: 1 },
          { name: "not_the_topmost_popup", value: 2 },
          { name: "invalid_popup_parent", value: 3 },
          { name: "invalid_surface_state", value: 4 },
          { name: "invalid_positioner", value: 5 },
          { name: "unresponsive", value: 6 },
        ],
      },
    ],
  },
  xdg_surface: {
    name: "xdg_surface",
    version: 5,
    requests: [
      { name: "destroy", args: [], destructor: true },
      { name: "get_toplevel", args: [a("id", "new_id", { interface: "xdg_toplevel" })] },
      {
        name: "get_popup",
        args: [
          a("id", "new_id", { interface: "xdg_popup" }),
          a("parent", "object", { interface: "xdg_surface", nullable: true }),
          a("positioner", "object", { interface: "xdg_positioner" }),
        ],
      },
      { name: "set_window_geometry", args: xywh },
      { name: "ack_configure", args: [a("serial", "uint")] },
    ],
    events: [{ name: "configure", args: [a("serial", "uint")] }],
    enums: [
      {
        name: "error",
        entries: [
          { name: "not_constructed", value: 1 },
          { name: "already_constructed", value: 2 },
          { name: "unconfigured_buffer", value: 3 },
          { name: "invalid_serial", value: 4 },
          { name: "invalid_size", value: 5 },
          { name: "defunct_role_object", value: 6 },
        ],
      },
    ],
  },
  xdg_toplevel: {
    name: "xdg_toplevel",
    version: 5,
    requests: [
      { name: "destroy", args: [], destructor: true },
      {
        name: "set_parent",
        args: [a("parent", "object", { interface: "xdg_toplevel", nullable: true })],
      },
      { name: "set_title", args: [a("title", "string")] },
      { name: "set_app_id", args: [a("app_id", "string")] },
      {
        name: "show_window_menu",
        args: [
          a("seat", "object", { interface: "wl_seat" }),
          a("serial", "uint"),
          a("x", "int"),
          a("y", "int"),
        ],
      },
      {
        name: "move",
        args: [a("seat", "object", { interface: "wl_seat" }), a("serial", "uint")],
      },
      {
        name: "resize",
        args: [
          a("seat", "object", { interface: "wl_seat" }),
          a("serial", "uint"),
          a("edges", "uint"),
        ],
      },
      { name: "set_max_size", args: [a("width", "int"), a("height", "int")] },
      { name: "set_min_size", args: [a("width", "int"), a("height", "int")] },
      { name: "set_maximized", args: [] },
      { name: "unset_maximized", args: [] },
      {
        name: "set_fullscreen",
        args: [a("output", "object", { interface: "wl_output", nullable: true })],
      },
      { name: "unset_fullscreen", args: [] },
      { name: "set_minimized", args: [] },
    ],
    events: [
      {
        name: "configure",
        args: [a("width", "int"), a("height", "int"), a("states", "array")],
      },
      { name: "close", args: [] },
      { name: "configure_bounds", args: [a("width", "int"), a("height", "int")], since: 4 },
      { name: "wm_capabilities", args: [a("capabilities", "array")], since: 5 },
    ],
    enums: [
      {
        name: "error",
        entries: [
          { name: "invalid_resize_edge", value: 0 },
          { name: "invalid_parent", value: 1 },
          { name: "invalid_size", value: 2 },
        ],
      },
    ],
  },
};
