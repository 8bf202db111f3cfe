/**
 * Where a compositor's binary is and which version is installed: the binary's own --version,
 * and the Debian package that owns a library (wlroots, libwayland-server) where the binary
 * does not say. Version strings are what the matrix columns and the JSON reports carry.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, realpathSync } from "node:fs";
import { delimiter, join } from "node:path";

/** The first executable `name` on PATH (plus the sbin dirs, where Debian puts some). */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin"];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch (e) {
      if (!["ENOENT", "EACCES", "ENOTDIR"].includes((e as NodeJS.ErrnoException).code ?? ""))
        throw e;
    }
  }
  return undefined;
}

/** stdout+stderr of a short command, or "" when it cannot run. */
export function output(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 5000 });
  if (r.error) return "";
  return `${r.stdout ?? ""}${r.stderr ?? ""}`;
}

/** "2:21.1.7-3+deb12u13" → "21.1.7": the upstream part of a Debian version. */
export function upstreamVersion(debian: string): string {
  return debian.replace(/^\d+:/, "").replace(/-[^-]*$/, "");
}

/** The upstream version of the Debian package that owns `file`, if dpkg knows it. */
export function packageVersionOf(file: string): string | undefined {
  let real = file;
  try {
    real = realpathSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  for (const f of new Set([file, real, real.replace(/^\/usr\/lib\//, "/lib/")])) {
    const owner = output("dpkg", ["-S", f]).split("\n")[0];
    const m = /^([^:\s]+(?::[a-z0-9]+)?): /.exec(owner);
    if (!m) continue;
    // dpkg-query's own format syntax, not a JS template.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query --showformat
    const v = output("dpkg-query", ["-W", "-f=${Version}", m[1]]).trim();
    if (v && !v.includes("no packages")) return upstreamVersion(v);
  }
  return undefined;
}

/** The file a shared library of `binary` resolves to ("libwlroots" → /lib/.../libwlroots.so.10). */
export function linkedLibrary(binary: string, prefix: string): string | undefined {
  for (const line of output("ldd", [binary]).split("\n")) {
    const m = /^\s*(\S+) => (\S+)/.exec(line);
    if (m?.[1].startsWith(prefix)) return m[2];
  }
  return undefined;
}

/** "libwayland-server 1.21.0": a linked library's package version, or undefined. */
export function libraryVersion(binary: string, prefix: string): string | undefined {
  const lib = linkedLibrary(binary, prefix);
  const v = lib ? packageVersionOf(lib) : undefined;
  return v ? `${prefix} ${v}` : undefined;
}
