/**
 * Object ids, with the rules of libwayland's wl_map (src/wayland-util.c,
 * src/wayland-private.h). One map per connection end:
 *
 * - ids below WL_SERVER_ID_START (0xff000000) are allocated by the client, ids from it on
 *   by the server; id 0 is the null object and id 1 is always the wl_display;
 * - each side allocates densely: `wl_map_reserve_new` refuses an id in the other side's
 *   range ("if (map->side == WL_MAP_SERVER_SIDE) { errno = EINVAL; ...}"), an id that would
 *   leave a gap ("if (count < i) { errno = EINVAL; ...}"), an id still in use ("if
 *   (start[i].data != NULL) { errno = EINVAL; ...}") and one past WL_MAP_MAX_OBJECTS
 *   (0x00f00000, ENOSPC);
 * - when the server destroys a client-created object it sends wl_display.delete_id and
 *   clears the slot at once (`wl_map_insert_at(&client->objects, 0, id, NULL)`), so the
 *   server accepts the id again immediately; the client keeps the id as a zombie and only
 *   puts it on its free list when delete_id arrives, so it never reuses an id the server
 *   may still be sending events for;
 * - freed ids are reused last-freed-first (`wl_map_insert_new` pops `map->free_list`).
 */

export const SERVER_ID_START = 0xff000000;
export const MAX_OBJECTS = 0x00f00000;
export const CLIENT_ID_MAX = SERVER_ID_START - 1;

export type MapSide = "client" | "server";

/** Why reserveNew refused an id, mirroring the errno wl_map_reserve_new sets. */
export type ReserveFailure =
  | "null" // id 0
  | "wrong-side" // EINVAL: the other side allocates this range
  | "gap" // EINVAL: count < i
  | "in-use" // EINVAL: start[i].data != NULL
  | "too-many"; // ENOSPC: i > WL_MAP_MAX_OBJECTS

interface Slot<T> {
  data: T | null;
  /** Client side only: destroyed locally, waiting for the server's delete_id. */
  zombie: boolean;
}

export class ObjectMap<T> {
  readonly side: MapSide;
  private readonly clientSlots: Slot<T>[] = [];
  private readonly serverSlots: Slot<T>[] = [];
  /** Freed indices of this side's own range, reused last-freed-first. */
  private readonly freeList: number[] = [];
  private live = 0;

  constructor(side: MapSide) {
    this.side = side;
    // libwayland inserts a NULL entry at index 0 of the client range so that the first
    // allocated id is 1 and 0 stays the null object.
    this.clientSlots.push({ data: null, zombie: false });
  }

  /** Live (non-null, non-zombie) objects. */
  get size(): number {
    return this.live;
  }

  private locate(id: number): { slots: Slot<T>[]; index: number } {
    return id < SERVER_ID_START
      ? { slots: this.clientSlots, index: id }
      : { slots: this.serverSlots, index: id - SERVER_ID_START };
  }

  private ownRange(id: number): boolean {
    return this.side === "client" ? id < SERVER_ID_START : id >= SERVER_ID_START;
  }

  lookup(id: number): T | undefined {
    if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff) return undefined;
    // Every message does at least one lookup: no allocation on this path.
    const s = id < SERVER_ID_START ? this.clientSlots[id] : this.serverSlots[id - SERVER_ID_START];
    return s !== undefined && !s.zombie && s.data !== null ? s.data : undefined;
  }

  isZombie(id: number): boolean {
    if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff) return false;
    const { slots, index } = this.locate(id);
    return slots[index]?.zombie === true;
  }

  /**
   * Checks that the peer may create an object with `id` now (wl_map_reserve_new): the id
   * lies in the peer's range, is the next one in sequence or a freed one, and is free.
   * Returns null when it may, else why not. Does not change the map.
   */
  checkNew(id: number): ReserveFailure | null {
    if (id === 0) return "null";
    if (this.ownRange(id)) return "wrong-side";
    const { slots, index } = this.locate(id);
    if (index > MAX_OBJECTS) return "too-many";
    if (slots.length < index) return "gap";
    if (slots.length === index) return null;
    const s = slots[index];
    return s.data !== null || s.zombie ? "in-use" : null;
  }

  /** Inserts a peer-created object after checkNew accepted its id. */
  insertPeer(id: number, data: T): void {
    const why = this.checkNew(id);
    if (why) throw new RangeError(`id ${id} refused: ${why}`);
    const { slots, index } = this.locate(id);
    if (index === slots.length) slots.push({ data, zombie: false });
    else slots[index] = { data, zombie: false };
    this.live++;
  }

  /**
   * Inserts at an exact id without sequence checks: used for the wl_display (id 1) that
   * both ends create implicitly.
   */
  insertAt(id: number, data: T): void {
    const { slots, index } = this.locate(id);
    if (index > slots.length) throw new RangeError(`insertAt(${id}) would leave a gap`);
    const prev = slots[index];
    if (index === slots.length) slots.push({ data, zombie: false });
    else slots[index] = { data, zombie: false };
    if (!prev || prev.data === null || prev.zombie) this.live++;
  }

  /** Allocates an id in this side's own range (wl_map_insert_new). */
  allocate(data: T): number {
    const own = this.side === "client" ? this.clientSlots : this.serverSlots;
    const base = this.side === "client" ? 0 : SERVER_ID_START;
    let index: number;
    if (this.freeList.length > 0) {
      index = this.freeList.pop()!;
      own[index] = { data, zombie: false };
    } else {
      index = own.length;
      if (index > MAX_OBJECTS) throw new RangeError("object map full (WL_MAP_MAX_OBJECTS)");
      own.push({ data, zombie: false });
    }
    this.live++;
    return index + base;
  }

  /**
   * Destroys the object with `id` as seen from this side.
   *
   * Server side, client id: the slot is cleared and the id is accepted again at once (the
   * caller sends delete_id). Server side, server id: the id goes on the free list.
   * Client side, own id: becomes a zombie until delete_id (see deleteId).
   * Client side, server id: cleared (libwayland's client frees server ids on destroy).
   */
  destroy(id: number): void {
    const { slots, index } = this.locate(id);
    const s = slots[index];
    if (!s || s.data === null || s.zombie) return;
    this.live--;
    if (this.side === "client" && id < SERVER_ID_START) {
      s.zombie = true;
      return;
    }
    s.data = null;
    if (this.ownRange(id)) this.freeList.push(index);
  }

  /**
   * Client side: the server's wl_display.delete_id for an id this client allocated. Returns
   * false if the id was not a zombie (or live) of this client: a server bug or attack.
   */
  deleteId(id: number): boolean {
    if (this.side !== "client" || id <= 0 || id >= SERVER_ID_START) return false;
    const s = this.clientSlots[id];
    if (!s || (s.data === null && !s.zombie)) return false;
    if (!s.zombie) this.live--;
    s.data = null;
    s.zombie = false;
    this.freeList.push(id);
    return true;
  }

  /** Every live object, in id order within each range. */
  *entries(): IterableIterator<[number, T]> {
    for (let i = 0; i < this.clientSlots.length; i++) {
      const s = this.clientSlots[i];
      if (s.data !== null && !s.zombie) yield [i, s.data];
    }
    for (let i = 0; i < this.serverSlots.length; i++) {
      const s = this.serverSlots[i];
      if (s.data !== null && !s.zombie) yield [i + SERVER_ID_START, s.data];
    }
  }
}
