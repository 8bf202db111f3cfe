/**
 * The screen-capture interfaces a real run uses to check honest pixels, in XML order
 * (opcodes): wl_output (wayland.xml, version 1 events: geometry, mode), weston's
 * weston_screenshooter (weston 10 protocol/weston-screenshooter.xml: shoot(output, buffer),
 * done; offered to clients only with weston --debug) and wlroots' zwlr_screencopy_manager_v1
 * / zwlr_screencopy_frame_v1 (wlr-protocols unstable/wlr-screencopy-unstable-v1.xml,
 * bound at version 1: buffer, flags, ready, failed).
 */
import type { WireArgSpec, WireInterfaceSpec } from "./wire.ts";

const a = (name: string, type: WireArgSpec["type"], extra: Partial<WireArgSpec> = {}) => ({
  name,
  type,
  ...extra,
});

export const CAPTURE_INTERFACES: Readonly<Record<string, WireInterfaceSpec>> = {
  wl_output: {
    name: "wl_output",
    version: 4,
    requests: [{ name: "release", args: [], since: 3, destructor: true }],
    events: [
      {
        name: "geometry",
        args: [
          a("x", "int"),
          a("y", "int"),
          a("physical_width", "int"),
          a("physical_height", "int"),
          a("subpixel", "int"),
          a("make", "string"),
          a("model", "string"),
          a("transform", "int"),
        ],
      },
      {
        name: "mode",
        args: [a("flags", "uint"), a("width", "int"), a("height", "int"), a("refresh", "int")],
      },
      { name: "done", args: [], since: 2 },
      { name: "scale", args: [a("factor", "int")], since: 2 },
      { name: "name", args: [a("name", "string")], since: 4 },
      { name: "description", args: [a("description", "string")], since: 4 },
    ],
    enums: [
      {
        name: "mode",
        entries: [
          { name: "current", value: 1 },
          { name: "preferred", value: 2 },
        ],
        bitfield: true,
      },
    ],
  },
  weston_screenshooter: {
    name: "weston_screenshooter",
    version: 1,
    requests: [
      {
        name: "shoot",
        args: [
          a("output", "object", { interface: "wl_output" }),
          a("buffer", "object", { interface: "wl_buffer" }),
        ],
      },
    ],
    events: [{ name: "done", args: [] }],
    enums: [],
  },
  zwlr_screencopy_manager_v1: {
    name: "zwlr_screencopy_manager_v1",
    version: 3,
    requests: [
      {
        name: "capture_output",
        args: [
          a("frame", "new_id", { interface: "zwlr_screencopy_frame_v1" }),
          a("overlay_cursor", "int"),
          a("output", "object", { interface: "wl_output" }),
        ],
      },
      {
        name: "capture_output_region",
        args: [
          a("frame", "new_id", { interface: "zwlr_screencopy_frame_v1" }),
          a("overlay_cursor", "int"),
          a("output", "object", { interface: "wl_output" }),
          a("x", "int"),
          a("y", "int"),
          a("width", "int"),
          a("height", "int"),
        ],
      },
      { name: "destroy", args: [], destructor: true },
    ],
    events: [],
    enums: [],
  },
  zwlr_screencopy_frame_v1: {
    name: "zwlr_screencopy_frame_v1",
    version: 3,
    requests: [
      { name: "copy", args: [a("buffer", "object", { interface: "wl_buffer" })] },
      { name: "destroy", args: [], destructor: true },
      {
        name: "copy_with_damage",
        args: [a("buffer", "object", { interface: "wl_buffer" })],
        since: 2,
      },
    ],
    events: [
      {
        name: "buffer",
        args: [a("format", "uint"), a("width", "uint"), a("height", "uint"), a("stride", "uint")],
      },
      { name: "flags", args: [a("flags", "uint")] },
      {
        name: "ready",
        args: [a("tv_sec_hi", "uint"), a("tv_sec_lo", "uint"), a("tv_nsec", "uint")],
      },
      { name: "failed", args: [] },
      {
        name: "damage",
        args: [a("x", "uint"), a("y", "uint"), a("width", "uint"), a("height", "uint")],
        since: 2,
      },
      {
        name: "linux_dmabuf",
        args: [a("format", "uint"), a("width", "uint"), a("height", "uint")],
        since: 3,
      },
      { name: "buffer_done", args: [], since: 3 },
    ],
    enums: [{ name: "flags", entries: [{ name: "y_invert", value: 1 }], bitfield: true }],
  },
};
