/**
 * Stopping what a real compositor started (real/registry.ts): a compositor runs in its own
 * process group, and its helpers (weston's desktop-shell, Xwayland) must be signalled too.
 */
import { spawn } from "node:child_process";
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
