/**
 * Stopping what a real compositor started (real/registry.ts): a compositor runs in its own
 * process group, and its helpers (weston's desktop-shell, Xwayland) must be signalled too.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { signalGroup } from "../real/registry.ts";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
    return false;
  }
}

describe("signalGroup", () => {
  it("reaches the children of a detached leader, not only the leader", async () => {
    // the leader prints its child's pid, then waits, as a compositor waits on its helpers
    const leader = spawn("sh", ["-c", "sleep 60 & echo $!; wait"], {
      detached: true,
      stdio: ["ignore", "pipe", "ignore"],
    });
    const grandchild = await new Promise<number>((r) =>
      leader.stdout!.once("data", (d: Buffer) => r(Number(d.toString().trim()))),
    );
    const exited = new Promise<void>((r) => leader.once("exit", () => r()));
    try {
      expect(alive(grandchild)).toBe(true);
      signalGroup(leader.pid!, "SIGKILL");
      await exited;
      // SIGKILL of the group is delivered to every member at once; poll only for the reap
      // by init, which a zombie awaits
      for (let i = 0; i < 40 && alive(grandchild); i++) await new Promise((r) => setTimeout(r, 50));
      expect(alive(grandchild)).toBe(false);
    } finally {
      if (alive(grandchild)) process.kill(grandchild, "SIGKILL");
    }
  });

  it("falls back to the pid once the group is gone (no throw on ESRCH)", () => {
    const leader = spawn("true", [], { stdio: "ignore" }); // not detached: no group of its own
    expect(() => signalGroup(leader.pid!, "SIGTERM")).not.toThrow();
  });
});

describe("a Ctrl-C in the middle of the first launch", () => {
  it("waits for the launch to register, then stops it and removes its runtime dir", async () => {
    // The child presses Ctrl-C on itself from inside launch(), after the runtime dir is made
    // and before the compositor is spawned and registered — the moment a Ctrl-C on a loaded
    // machine can land in a command's first launch. Without the armed handler Node dies at
    // once, by the default action, and the dir stays.
    const tmp = mkdtempSync(join(tmpdir(), "shmlab-firstlaunch-"));
    const script = `
      const { launch } = await import(${JSON.stringify(new URL("../real/instance.ts", import.meta.url).href)});
      await launch({
        kind: "weston", version: "test", binary: "/bin/sleep",
        args: () => { process.kill(process.pid, "SIGINT"); return ["60"]; },
        ready: { kind: "socket", name: /^never$/ },
      });`;
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      {
        env: { ...process.env, TMPDIR: tmp },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let err = "";
    child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    try {
      const signal = await new Promise<string | null>((r) => child.on("exit", (_c, s) => r(s)));
      expect(signal, err).toBe("SIGINT");
      expect(readdirSync(tmp).filter((n) => n.startsWith("shmlab-weston-"))).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 20_000);
});
