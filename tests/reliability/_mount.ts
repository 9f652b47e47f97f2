// Real file systems for the fault tests: a size-limited tmpfs that can be
// filled, and a bind mount that can be made read-only. Both need root (the
// suite runs as root, where chmod would prove nothing: root writes anyway).

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function mount(args: string[]): void {
  try {
    execFileSync("mount", args, { stdio: ["ignore", "ignore", "pipe"] });
  } catch (error) {
    // No stand-in is honest here: as root chmod proves nothing, and a file
    // size limit would kill the test runner. The machine must allow mounts.
    throw new Error(
      `Cannot run 'mount ${
        args.join(" ")
      }': the storage fault tests need root with mount permission, as CI has: ${
        String((error as { stderr?: unknown }).stderr ?? error).trim()
      }`,
    );
  }
}

/** A mounted file system under a directory of its own; `unmount()` undoes it. */
export class Mount {
  private constructor(readonly path: string, private readonly cleanup: string[]) {}

  /** Mounts a tmpfs of `bytes` (rounded up to whole pages) on a fresh directory. */
  static tmpfs(bytes: number): Mount {
    const path = mkdtempSync(join(tmpdir(), "tessera-tmpfs-"));
    mount(["-t", "tmpfs", "-o", `size=${bytes},mode=0700`, "tmpfs", path]);
    return new Mount(path, [path]);
  }

  /** Mounts a fresh directory on another with `mount --bind`, writable at first. */
  static bind(): Mount {
    const source = mkdtempSync(join(tmpdir(), "tessera-bind-source-"));
    const path = mkdtempSync(join(tmpdir(), "tessera-bind-"));
    mount(["--bind", source, path]);
    return new Mount(path, [path, source]);
  }

  /** Makes a bind mount read-only (`true`) or writable again (`false`). */
  setReadOnly(readOnly: boolean): void {
    mount(["-o", `remount,${readOnly ? "ro" : "rw"},bind`, this.path]);
  }

  /** Unmounts (lazily if something still holds it) and removes the directories. */
  unmount(): void {
    try {
      execFileSync("umount", [this.path], { stdio: ["ignore", "ignore", "pipe"] });
    } catch {
      execFileSync("umount", ["-l", this.path], { stdio: ["ignore", "ignore", "pipe"] });
    }
    for (const dir of this.cleanup) rmSync(dir, { recursive: true, force: true });
  }
}
