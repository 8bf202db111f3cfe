import { describe, expect, it } from "vitest";
import { MAX_OBJECTS, ObjectMap, SERVER_ID_START } from "../protocol/object-map.ts";

describe("object ids follow libwayland's wl_map", () => {
  it("client allocates 1, 2, 3 ... and the server accepts only the next id", () => {
    const c = new ObjectMap<string>("client");
    expect(c.allocate("display")).toBe(1);
    expect(c.allocate("a")).toBe(2);
    const s = new ObjectMap<string>("server");
    s.insertAt(1, "display");
    expect(s.checkNew(2)).toBeNull();
    expect(s.checkNew(3)).toBe("gap");
    expect(s.checkNew(1)).toBe("in-use");
    expect(s.checkNew(0)).toBe("null");
  });

  it("refuses a client new_id in the server range and vice versa", () => {
    const s = new ObjectMap<string>("server");
    expect(s.checkNew(SERVER_ID_START)).toBe("wrong-side");
    expect(s.checkNew(0xffffffff)).toBe("wrong-side");
    const c = new ObjectMap<string>("client");
    expect(c.checkNew(5)).toBe("wrong-side");
    expect(c.checkNew(SERVER_ID_START)).toBeNull();
    expect(c.checkNew(SERVER_ID_START + 1)).toBe("gap");
  });

  it("refuses ids past WL_MAP_MAX_OBJECTS", () => {
    const s = new ObjectMap<string>("server");
    expect(s.checkNew(MAX_OBJECTS + 1)).toBe("too-many");
  });

  it("server side: a destroyed client id may be created again at once", () => {
    const s = new ObjectMap<string>("server");
    s.insertAt(1, "display");
    s.insertPeer(2, "x");
    expect(s.checkNew(2)).toBe("in-use");
    s.destroy(2);
    expect(s.lookup(2)).toBeUndefined();
    expect(s.checkNew(2)).toBeNull();
    expect(s.checkNew(3)).toBeNull();
    expect(s.checkNew(4)).toBe("gap");
  });

  it("client side: a destroyed id is a zombie until delete_id, then reused last-freed-first", () => {
    const c = new ObjectMap<string>("client");
    c.allocate("display");
    const a = c.allocate("a");
    const b = c.allocate("b");
    c.destroy(a);
    c.destroy(b);
    expect(c.isZombie(a)).toBe(true);
    expect(c.lookup(a)).toBeUndefined();
    // not reused while a zombie
    expect(c.allocate("c")).toBe(4);
    expect(c.deleteId(a)).toBe(true);
    expect(c.deleteId(b)).toBe(true);
    expect(c.allocate("d")).toBe(b);
    expect(c.allocate("e")).toBe(a);
    expect(c.allocate("f")).toBe(5);
  });

  it("client side: delete_id for an id that is not a zombie or live is reported", () => {
    const c = new ObjectMap<string>("client");
    c.allocate("display");
    expect(c.deleteId(7)).toBe(false);
    expect(c.deleteId(SERVER_ID_START)).toBe(false);
  });

  it("counts live objects", () => {
    const s = new ObjectMap<string>("server");
    s.insertAt(1, "d");
    s.insertPeer(2, "a");
    s.insertPeer(3, "b");
    s.destroy(2);
    expect(s.size).toBe(2);
    expect([...s.entries()].map(([id]) => id)).toEqual([1, 3]);
  });

  it("server-allocated ids start at 0xff000000 and are reused after destroy", () => {
    const s = new ObjectMap<string>("server");
    const x = s.allocate("x");
    expect(x).toBe(SERVER_ID_START);
    expect(s.allocate("y")).toBe(SERVER_ID_START + 1);
    s.destroy(x);
    expect(s.allocate("z")).toBe(x);
  });
});
