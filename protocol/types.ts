/**
 * Static types of the requests' arguments, for compositor code that implements them: the
 * validated argument list of each request, in schema order (see schema.ts). A new_id is
 * the new object's id (the object exists when the handler runs), an object is an id (0 for
 * null), an fd is the server's own fd, an enum is its numeric value.
 *
 * The schema is data so variants can change it at run time; these types describe the base
 * schema, and test/protocol-schema.test.ts checks that every tuple has the schema's arity.
 */
export interface RequestArgs {
  wl_compositor: {
    create_surface: [id: number];
    create_region: [id: number];
  };
  wl_region: {
    destroy: [];
    add: [x: number, y: number, width: number, height: number];
    subtract: [x: number, y: number, width: number, height: number];
  };
  wl_surface: {
    destroy: [];
    attach: [buffer: number, x: number, y: number];
    damage: [x: number, y: number, width: number, height: number];
    frame: [callback: number];
    set_opaque_region: [region: number];
    set_input_region: [region: number];
    commit: [];
    set_buffer_transform: [transform: number];
    set_buffer_scale: [scale: number];
    damage_buffer: [x: number, y: number, width: number, height: number];
  };
  wl_shm: {
    create_pool: [id: number, fd: number, size: number];
    release: [];
  };
  wl_shm_pool: {
    create_buffer: [
      id: number,
      offset: number,
      width: number,
      height: number,
      stride: number,
      format: number,
    ];
    destroy: [];
    resize: [size: number];
  };
  wl_buffer: {
    destroy: [];
  };
}

/** Arity of each tuple above, kept beside the types so a test can hold them to the schema. */
export const REQUEST_ARITY: { [I in keyof RequestArgs]: { [R in keyof RequestArgs[I]]: number } } =
  {
    wl_compositor: { create_surface: 1, create_region: 1 },
    wl_region: { destroy: 0, add: 4, subtract: 4 },
    wl_surface: {
      destroy: 0,
      attach: 3,
      damage: 4,
      frame: 1,
      set_opaque_region: 1,
      set_input_region: 1,
      commit: 0,
      set_buffer_transform: 1,
      set_buffer_scale: 1,
      damage_buffer: 4,
    },
    wl_shm: { create_pool: 3, release: 0 },
    wl_shm_pool: { create_buffer: 6, destroy: 0, resize: 1 },
    wl_buffer: { destroy: 0 },
  };
