import { describe, expect, it } from "vitest";
import {
  BASE_SCHEMA,
  DISPLAY_ERROR,
  enumValue,
  eventOpcode,
  fixedFromDouble,
  fixedToDouble,
  requestOpcode,
  SHM_ERROR,
} from "../protocol/schema.ts";
import { REQUEST_ARITY } from "../protocol/types.ts";

describe("schema transcribes wayland.xml", () => {
  it("has wl_display's error codes with their exact numbers", () => {
    expect(DISPLAY_ERROR).toEqual({
      invalid_object: 0,
      invalid_method: 1,
      no_memory: 2,
      implementation: 3,
    });
    expect(enumValue(BASE_SCHEMA, "wl_display", "error", "implementation")).toBe(3);
  });

  it("has wl_shm's error codes and formats with their exact numbers", () => {
    expect(SHM_ERROR).toEqual({ invalid_format: 0, invalid_stride: 1, invalid_fd: 2 });
    expect(enumValue(BASE_SCHEMA, "wl_shm", "error", "invalid_fd")).toBe(2);
    expect(enumValue(BASE_SCHEMA, "wl_shm", "format", "argb8888")).toBe(0);
    expect(enumValue(BASE_SCHEMA, "wl_shm", "format", "xrgb8888")).toBe(1);
    // drm_fourcc.h: fourcc_code('X', 'B', '2', '4')
    expect(enumValue(BASE_SCHEMA, "wl_shm", "format", "xbgr8888")).toBe(0x34324258);
    expect(enumValue(BASE_SCHEMA, "wl_shm", "format", "rgb565")).toBe(0x36314752);
  });

  it("numbers opcodes in wayland.xml order", () => {
    expect(requestOpcode(BASE_SCHEMA, "wl_display", "sync")).toBe(0);
    expect(requestOpcode(BASE_SCHEMA, "wl_display", "get_registry")).toBe(1);
    expect(eventOpcode(BASE_SCHEMA, "wl_display", "delete_id")).toBe(1);
    expect(requestOpcode(BASE_SCHEMA, "wl_surface", "attach")).toBe(1);
    expect(requestOpcode(BASE_SCHEMA, "wl_surface", "commit")).toBe(6);
    expect(requestOpcode(BASE_SCHEMA, "wl_surface", "damage_buffer")).toBe(9);
    expect(requestOpcode(BASE_SCHEMA, "wl_shm", "release")).toBe(1);
    expect(requestOpcode(BASE_SCHEMA, "wl_shm_pool", "resize")).toBe(2);
  });

  it("declares wl_shm and wl_shm_pool at version 2 with release since 2", () => {
    expect(BASE_SCHEMA.interfaces.wl_shm.version).toBe(2);
    expect(BASE_SCHEMA.interfaces.wl_shm_pool.version).toBe(2);
    expect(BASE_SCHEMA.interfaces.wl_shm.requests[1]).toMatchObject({
      name: "release",
      since: 2,
      destructor: true,
    });
  });

  it("is frozen so no run can change another run's schema", () => {
    expect(Object.isFrozen(BASE_SCHEMA.interfaces.wl_shm.requests[0].args)).toBe(true);
    expect(() => {
      (BASE_SCHEMA.interfaces.wl_shm as { version: number }).version = 9;
    }).toThrow(TypeError);
  });

  it("converts 24.8 fixed point like wl_fixed_from_double", () => {
    expect(fixedFromDouble(1.5)).toBe(384);
    expect(fixedToDouble(-384)).toBe(-1.5);
  });
});

describe("static request types match the schema", () => {
  it("every typed request has the schema's arity, and every schema request is typed", () => {
    const typed = Object.entries(REQUEST_ARITY).flatMap(([i, rs]) =>
      Object.entries(rs).map(([r, n]) => `${i}.${r}/${n}`),
    );
    const schema = Object.values(BASE_SCHEMA.interfaces)
      .filter((i) => !["wl_display", "wl_registry", "wl_callback"].includes(i.name))
      .flatMap((i) => i.requests.map((r) => `${i.name}.${r.name}/${r.args.length}`));
    expect(typed.sort()).toEqual(schema.sort());
  });
});
