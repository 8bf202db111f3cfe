/**
 * Protocol variants: a changed wl_shm (or any interface) for one run, so a protocol change
 * can be judged on the same attacks as the protocol it would replace.
 *
 * A variant is data plus hooks:
 *   - `schema(base)` returns the schema for the run (bump a version, add a request or an
 *     error code); the default is the base schema unchanged;
 *   - `rules` are facts the compositor's policies read ("may a pool shrink?");
 *   - `hooks["iface.request"]` run after a request is validated and before it is handled,
 *     and may refuse it with an error of the sender's interface.
 *
 * Hooks see only a VariantContext: the request, its arguments, a per-object scratch state,
 * and `files.inspect(fd)` (size and seals of an fd the server received). They never import
 * compositor code, so a variant means the same thing under every policy.
 */
import { SEAL } from "../shm/uapi.ts";
import { interfaceError, type ProtocolError } from "./errors.ts";
import { BASE_SCHEMA, type EnumSpec, findEnum, type Schema } from "./schema.ts";

/** What the server can find out about an fd it received, without kernel internals. */
export interface FileInspector {
  /** Size and seals of `fd` in the server's process, or null if it is not open there. */
  inspect(fd: number): { size: number; seals: number } | null;
}

export interface VariantContext {
  /** The connection's id in this server (stable for the connection's life). */
  readonly clientId: number;
  readonly objectId: number;
  /** The version the sender object was bound or created at (a proposal's rule may apply from a version on). */
  readonly version: number;
  readonly interface: string;
  readonly request: string;
  /** Validated arguments in schema order (an fd argument is the server's fd). */
  readonly args: readonly unknown[];
  /** Ids created by this request, in argument order. */
  readonly newIds: readonly number[];
  readonly files: FileInspector;
  /** Scratch state of one object of this client, kept until the object is destroyed. */
  state(objectId: number): Record<string, unknown>;
  /**
   * The error to throw to refuse the request: `error` names an entry of the sender's
   * interface error enum, or of another interface's as "wl_shm.invalid_fd" (posted against
   * the sender, as libwayland's wl_shm.c posts wl_shm errors against a pool).
   */
  refuse(error: string, message: string): ProtocolError;
}

export type VariantHook = (ctx: VariantContext) => void;

export interface VariantRules {
  /** wl_shm_pool.resize may make the pool smaller (wayland.xml: "can only be used to make the pool bigger"). */
  poolsMayShrink: boolean;
  /** Seals (F_SEAL_* bits) an fd must carry for wl_shm.create_pool to accept it. */
  createPoolRequiredSeals: number;
}

export interface ProtocolVariant {
  readonly name: string;
  readonly description: string;
  readonly schema?: (base: Schema) => Schema;
  readonly rules?: Partial<VariantRules>;
  readonly hooks?: Readonly<Record<string, VariantHook>>;
}

export const DEFAULT_RULES: Readonly<VariantRules> = Object.freeze({
  poolsMayShrink: false,
  createPoolRequiredSeals: 0,
});

/** A variant resolved for one run: its schema built, its rules filled in. */
export interface ResolvedVariant {
  readonly name: string;
  readonly description: string;
  readonly schema: Schema;
  readonly rules: Readonly<VariantRules>;
  readonly hooks: Readonly<Record<string, VariantHook>>;
}

export function resolveVariant(v: ProtocolVariant): ResolvedVariant {
  return {
    name: v.name,
    description: v.description,
    schema: v.schema ? v.schema(BASE_SCHEMA) : BASE_SCHEMA,
    rules: Object.freeze({ ...DEFAULT_RULES, ...v.rules }),
    hooks: Object.freeze({ ...v.hooks }),
  };
}

/** Builds the refuse() of a context: resolves an error name to its numeric code. */
export function makeRefuse(schema: Schema, senderInterface: string, objectId: number) {
  return (error: string, message: string): ProtocolError => {
    const dot = error.indexOf(".");
    const iface = dot < 0 ? senderInterface : error.slice(0, dot);
    const name = dot < 0 ? error : error.slice(dot + 1);
    const e: EnumSpec | undefined = findEnum(schema, `${iface}.error`);
    const code = e?.entries.find((x) => x.name === name)?.value;
    if (code === undefined) throw new Error(`variant names unknown error ${iface}.error.${name}`);
    return interfaceError(objectId, code, message);
  };
}

/** Standard Wayland: wl_shm v2 exactly as wayland.xml and libwayland define it. */
export const STANDARD: ProtocolVariant = {
  name: "standard",
  description: "wl_shm version 2 as in wayland.xml: no seal requirement, pools only grow",
};

/**
 * Pools must be sealed against shrinking: wl_shm.create_pool refuses, with
 * wl_shm.invalid_fd, an fd whose file lacks F_SEAL_SHRINK. With that seal the client cannot
 * truncate the pool under the compositor, so the SIGBUS cannot happen; the cost is that
 * clients must create their memfd with MFD_ALLOW_SEALING and seal it.
 */
export const SEALED_POOLS: ProtocolVariant = {
  name: "sealed-pools",
  description: "wl_shm.create_pool refuses an fd not sealed with F_SEAL_SHRINK (wl_shm.invalid_fd)",
  rules: { createPoolRequiredSeals: SEAL.F_SEAL_SHRINK },
  hooks: {
    "wl_shm.create_pool": (ctx) => {
      const fd = ctx.args[1] as number;
      const info = ctx.files.inspect(fd);
      if (!info) throw ctx.refuse("invalid_fd", `fd ${fd} is not open`);
      if ((info.seals & SEAL.F_SEAL_SHRINK) === 0)
        throw ctx.refuse("invalid_fd", "pool fd is not sealed against shrinking (F_SEAL_SHRINK)");
    },
  },
};

/**
 * Pools may shrink: wl_shm_pool.resize to a smaller size is accepted. Mapping a smaller
 * pool is what the attack achieves by ftruncate anyway; this variant lets a design review
 * compare an honest, announced shrink with the silent one.
 */
export const SHRINKABLE_POOLS: ProtocolVariant = {
  name: "shrinkable-pools",
  description:
    "wl_shm_pool.resize may make a pool smaller; buffers beyond the new size become invalid",
  rules: { poolsMayShrink: true },
  hooks: {
    // The pool's size is remembered so the compositor can tell from the rules and the
    // state which buffers a shrink invalidated.
    "wl_shm.create_pool": (ctx) => {
      ctx.state(ctx.newIds[0]).size = ctx.args[2];
    },
    "wl_shm_pool.resize": (ctx) => {
      const size = ctx.args[0] as number;
      if (size < 0) throw ctx.refuse("wl_shm.invalid_fd", `negative pool size ${size}`);
      ctx.state(ctx.objectId).size = size;
    },
  },
};

const registry = new Map<string, ProtocolVariant>(
  [STANDARD, SEALED_POOLS, SHRINKABLE_POOLS].map((v) => [v.name, v]),
);

/** Makes a variant selectable by name (e.g. from a scenario or `--variant`). */
export function registerVariant(v: ProtocolVariant): void {
  if (registry.has(v.name)) throw new Error(`variant ${v.name} already registered`);
  registry.set(v.name, v);
}

export function getVariant(name: string): ProtocolVariant {
  const v = registry.get(name);
  if (!v)
    throw new Error(
      `unknown protocol variant ${JSON.stringify(name)}; known: ${variantNames().join(", ")}`,
    );
  return v;
}

export function variantNames(): string[] {
  return [...registry.keys()];
}

/** An error enum entry a variant adds, e.g. a new wl_shm error code. */
export function withErrorEntry(schema: Schema, iface: string, name: string, value: number): Schema {
  const base = schema.interfaces[iface];
  const errs = findEnum(schema, `${iface}.error`);
  const enums = base.enums.map((e) =>
    e === errs ? { ...e, entries: [...e.entries, { name, value }] } : e,
  );
  if (!errs) enums.push({ name: "error", entries: [{ name, value }] });
  return { interfaces: { ...schema.interfaces, [iface]: { ...base, enums } } };
}
